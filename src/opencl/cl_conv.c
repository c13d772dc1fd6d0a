/* cl_conv.c: IM2COL and COL2IM (kernels in cl/conv.cl); the GEMM is MATMUL. */
#include "opencl/cl_internal.h"

#define PROG "conv"

#define CONV_ARGS(ip)                                                                        \
    SEG_CL_INT(ip[0]), SEG_CL_INT(ip[1]), SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]),              \
        SEG_CL_INT(ip[4]), SEG_CL_INT(ip[5]), SEG_CL_INT(ip[6]), SEG_CL_INT(ip[7]),          \
        SEG_CL_INT(ip[8]), SEG_CL_INT(ip[9]), SEG_CL_INT(ip[10]), SEG_CL_INT(ip[11]),        \
        SEG_CL_INT(ip[12]), SEG_CL_INT(ip[13])

SEG_CL_KERNEL(seg_cl_im2col)
{
    const struct seg_tensor *d = a->dst[0], *s = a->src[0];
    int64_t n = seg_numel_of(d);
    return SEG_CL_RUN1(be, "IM2COL", PROG, "im2col_f32", n, SEG_CL_T(d), SEG_CL_T(s),
                       CONV_ARGS(a->ip), SEG_CL_INT(n));
}

SEG_CL_KERNEL(seg_cl_col2im)
{
    const struct seg_tensor *d = a->dst[0], *s = a->src[0];
    int64_t n = seg_numel_of(d);
    return SEG_CL_RUN1(be, "COL2IM", PROG, "col2im_f32", n, SEG_CL_T(d), SEG_CL_T(s),
                       CONV_ARGS(a->ip), SEG_CL_INT(n));
}

/* Must match the CD_* tile and CDC_TM of cl/conv.cl. */
#define CD_BM 64
#define CD_BN 64
#define CD_LX 16
#define CD_LY 16
#define CDC_TM 16
#define CDC_VW 8
#define CDC_WG 16

/* GPUs: the local-memory tiled implicit GEMM; CPU devices: the barrier-free kernel. */
SEG_CL_KERNEL(seg_cl_conv2d_direct)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const struct seg_tensor *y = a->dst[0], *x = a->src[0], *w = a->src[1], *b = a->src[2];
    const int32_t *ip = a->ip;
    size_t co = (size_t)ip[14];
    if (be->info.is_cpu) {
        size_t lx = seg_cl_wg_limit(be, PROG, "conv2d_direct_cpu_f32", CDC_WG);
        size_t blocks = (size_t)ip[12] * (((size_t)ip[13] + CDC_VW - 1) / CDC_VW);
        size_t gws[3] = {blocks, (co + CDC_TM - 1) / CDC_TM, (size_t)ip[0]}, lws[3] = {lx, 1, 1};
        return SEG_CL_RUN(be, "CONV2D_DIRECT", PROG, "conv2d_direct_cpu_f32", 3, gws, lws, SEG_CL_T(y),
                          SEG_CL_T(x), SEG_CL_T(w), SEG_CL_OPT(c, b), CONV_ARGS(ip), SEG_CL_INT(ip[14]));
    }
    size_t p = (size_t)ip[12] * (size_t)ip[13];
    size_t gws[3] = {(p + CD_BN - 1) / CD_BN * CD_LX, (co + CD_BM - 1) / CD_BM * CD_LY, (size_t)ip[0]};
    size_t lws[3] = {CD_LX, CD_LY, 1};
    return SEG_CL_RUN(be, "CONV2D_DIRECT", PROG, "conv2d_direct_f32", 3, gws, lws, SEG_CL_T(y),
                      SEG_CL_T(x), SEG_CL_T(w), SEG_CL_OPT(c, b), CONV_ARGS(ip), SEG_CL_INT(ip[14]));
}
