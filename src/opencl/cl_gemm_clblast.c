/* cl_gemm_clblast.c: MATMUL through CLBlast's C API (row-major, offsets in elements). */
#include <stdio.h>

#include <clblast_c.h>

#include "opencl/cl_internal.h"

static const char *clblast_status_name(CLBlastStatusCode s)
{
    switch (s) {
#define E(x) case x: return #x;
    E(CLBlastSuccess) E(CLBlastOpenCLCompilerNotAvailable) E(CLBlastTempBufferAllocFailure)
    E(CLBlastOpenCLOutOfResources) E(CLBlastOpenCLOutOfHostMemory)
    E(CLBlastOpenCLBuildProgramFailure) E(CLBlastInvalidValue) E(CLBlastInvalidCommandQueue)
    E(CLBlastInvalidMemObject) E(CLBlastInvalidBinary) E(CLBlastInvalidBuildOptions)
    E(CLBlastInvalidProgram) E(CLBlastInvalidProgramExecutable) E(CLBlastInvalidKernelName)
    E(CLBlastInvalidKernelDefinition) E(CLBlastInvalidKernel) E(CLBlastInvalidArgIndex)
    E(CLBlastInvalidArgValue) E(CLBlastInvalidArgSize) E(CLBlastInvalidKernelArgs)
    E(CLBlastInvalidLocalNumDimensions) E(CLBlastInvalidLocalThreadsTotal)
    E(CLBlastInvalidLocalThreadsDim) E(CLBlastInvalidGlobalOffset)
    E(CLBlastInvalidEventWaitList) E(CLBlastInvalidEvent) E(CLBlastInvalidOperation)
    E(CLBlastInvalidBufferSize) E(CLBlastInvalidGlobalWorkSize) E(CLBlastNotImplemented)
    E(CLBlastInvalidMatrixA) E(CLBlastInvalidMatrixB) E(CLBlastInvalidMatrixC)
    E(CLBlastInvalidVectorX) E(CLBlastInvalidVectorY) E(CLBlastInvalidDimension)
    E(CLBlastInvalidLeadDimA) E(CLBlastInvalidLeadDimB) E(CLBlastInvalidLeadDimC)
    E(CLBlastInvalidIncrementX) E(CLBlastInvalidIncrementY) E(CLBlastInsufficientMemoryA)
    E(CLBlastInsufficientMemoryB) E(CLBlastInsufficientMemoryC) E(CLBlastInsufficientMemoryX)
    E(CLBlastInsufficientMemoryY) E(CLBlastInsufficientMemoryTemp)
    E(CLBlastInvalidBatchCount) E(CLBlastInvalidOverrideKernel)
    E(CLBlastMissingOverrideParameter) E(CLBlastInvalidLocalMemUsage)
    E(CLBlastNoHalfPrecision) E(CLBlastNoDoublePrecision) E(CLBlastInvalidVectorScalar)
    E(CLBlastInsufficientMemoryScalar) E(CLBlastDatabaseError) E(CLBlastUnknownError)
    E(CLBlastUnexpectedError)
#undef E
    }
    return "CLBlastUnknownStatus";
}

static enum seg_status clblast_fail(CLBlastStatusCode s, const char *fn, const int32_t *ip)
{
    enum seg_status st = SEG_STATUS_BACKEND;
    if (s == CLBlastTempBufferAllocFailure || s == CLBlastOpenCLOutOfHostMemory)
        st = SEG_STATUS_OUT_OF_MEMORY;
    return seg_error(st,
                     "opencl: %s failed: %s (%d) in op MATMUL (batch=%d M=%d N=%d K=%d "
                     "transA=%d transB=%d strides A=%d B=%d C=%d)",
                     fn, clblast_status_name(s), (int)s, ip[0], ip[1], ip[2], ip[3], ip[4], ip[5],
                     ip[6], ip[7], ip[8]);
}

/* K == 0: C = beta * C over each batch's M x N block. */
static enum seg_status matmul_empty_k(struct seg_backend *be, const struct seg_op_args *a)
{
    const struct seg_tensor *c = a->dst[0];
    const int32_t *ip = a->ip;
    int64_t mn = (int64_t)ip[1] * ip[2];
    for (int b = 0; b < ip[0]; b++) {
        cl_int off = seg_cl_elem_offset(c) + (cl_int)((int64_t)b * ip[8]);
        SEG_CL_TRY(SEG_CL_RUN1(be, "MATMUL", "pointwise", "scale_f32", mn, SEG_CL_MEMT(c),
                               SEG_CL_INT(off), SEG_CL_INT(mn), SEG_CL_FLOAT(a->fp[1])));
        if (ip[8] == 0) break;
    }
    return SEG_STATUS_OK;
}

SEG_CL_KERNEL(seg_cl_matmul)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const int32_t *ip = a->ip;
    const int batch = ip[0], M = ip[1], N = ip[2], K = ip[3];
    const bool ta = ip[4] != 0, tb = ip[5] != 0;
    if (batch <= 0 || M <= 0 || N <= 0) return SEG_STATUS_OK;
    if (K <= 0) return matmul_empty_k(be, a);

    const struct seg_tensor *A = a->src[0], *B = a->src[1];
    struct seg_tensor *C = a->dst[0];
    const size_t lda = ta ? (size_t)M : (size_t)K;
    const size_t ldb = tb ? (size_t)K : (size_t)N;
    const size_t ldc = (size_t)N;
    const size_t aoff = (size_t)seg_cl_elem_offset(A), boff = (size_t)seg_cl_elem_offset(B);
    const size_t coff = (size_t)seg_cl_elem_offset(C);
    const CLBlastTranspose tA = ta ? CLBlastTransposeYes : CLBlastTransposeNo;
    const CLBlastTranspose tB = tb ? CLBlastTransposeYes : CLBlastTransposeNo;
    cl_mem ma = (cl_mem)A->buf.handle, mb = (cl_mem)B->buf.handle, mc = (cl_mem)C->buf.handle;

    CLBlastStatusCode s;
    be->counts.dispatches++;
    if (batch == 1) {
        s = CLBlastSgemm(CLBlastLayoutRowMajor, tA, tB, (size_t)M, (size_t)N, (size_t)K,
                         a->fp[0], ma, aoff, lda, mb, boff, ldb, a->fp[1], mc, coff, ldc,
                         &c->queue, NULL);
        if (s != CLBlastSuccess) return clblast_fail(s, "CLBlastSgemm", ip);
        return SEG_STATUS_OK;
    }
    /* Stride 0 (A or B shared by every batch) is accepted by CLBlast's strided-batched GEMM:
     * it only adds b * stride to the offsets. */
    s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, tA, tB, (size_t)M, (size_t)N, (size_t)K,
                                   a->fp[0], ma, aoff, lda, (size_t)ip[6], mb, boff, ldb,
                                   (size_t)ip[7], a->fp[1], mc, coff, ldc, (size_t)ip[8],
                                   (size_t)batch, &c->queue, NULL);
    if (s == CLBlastSuccess) return SEG_STATUS_OK;
    if (s != CLBlastNotImplemented && s != CLBlastInvalidValue)
        return clblast_fail(s, "CLBlastSgemmStridedBatched", ip);
    /* Fallback: one GEMM per batch. */
    for (int b = 0; b < batch; b++) {
        s = CLBlastSgemm(CLBlastLayoutRowMajor, tA, tB, (size_t)M, (size_t)N, (size_t)K, a->fp[0],
                         ma, aoff + (size_t)b * (size_t)ip[6], lda, mb,
                         boff + (size_t)b * (size_t)ip[7], ldb, a->fp[1], mc,
                         coff + (size_t)b * (size_t)ip[8], ldc, &c->queue, NULL);
        if (s != CLBlastSuccess) return clblast_fail(s, "CLBlastSgemm", ip);
    }
    return SEG_STATUS_OK;
}
