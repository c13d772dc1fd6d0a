/* cpu_backend.c: the cpu reference backend: host buffers and the kernel table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu.h"

static const seg_kernel_fn cpu_kernels[SEG_OP_COUNT] = {
    [SEG_OP_FILL] = cpu_fill,
    [SEG_OP_CAST] = cpu_cast,
    [SEG_OP_BINARY] = cpu_binary,
    [SEG_OP_EXPAND] = cpu_expand,
    [SEG_OP_UNARY] = cpu_unary,
    [SEG_OP_UNARY_BWD] = cpu_unary_bwd,
    [SEG_OP_WHERE] = cpu_where,
    [SEG_OP_REDUCE] = cpu_reduce,
    [SEG_OP_ARGREDUCE] = cpu_argreduce,
    [SEG_OP_SOFTMAX] = cpu_softmax,
    [SEG_OP_SOFTMAX_BWD] = cpu_softmax_bwd,
    [SEG_OP_CROSS_ENTROPY] = cpu_cross_entropy,
    [SEG_OP_CROSS_ENTROPY_BWD] = cpu_cross_entropy_bwd,
    [SEG_OP_MATMUL] = cpu_matmul,
    [SEG_OP_IM2COL] = cpu_im2col,
    [SEG_OP_COL2IM] = cpu_col2im,
    [SEG_OP_BATCHNORM_STATS] = cpu_batchnorm_stats,
    [SEG_OP_BATCHNORM] = cpu_batchnorm,
    [SEG_OP_BATCHNORM_BWD] = cpu_batchnorm_bwd,
    [SEG_OP_MAXPOOL2D] = cpu_maxpool2d,
    [SEG_OP_MAXPOOL2D_BWD] = cpu_maxpool2d_bwd,
    [SEG_OP_RESIZE_BILINEAR] = cpu_resize_bilinear,
    [SEG_OP_RESIZE_BILINEAR_BWD] = cpu_resize_bilinear_bwd,
    [SEG_OP_RESIZE_NEAREST] = cpu_resize_nearest,
    [SEG_OP_ONE_HOT] = cpu_one_hot,
    [SEG_OP_GATHER] = cpu_gather,
    [SEG_OP_SCATTER_ADD] = cpu_scatter_add,
    [SEG_OP_SLICE] = cpu_slice,
    [SEG_OP_SLICE_ASSIGN] = cpu_slice_assign,
    [SEG_OP_PERMUTE] = cpu_permute,
    [SEG_OP_SORT] = cpu_sort,
    [SEG_OP_CUMSUM] = cpu_cumsum,
    [SEG_OP_RNG_UNIFORM] = cpu_rng_uniform,
    [SEG_OP_SGD_STEP] = cpu_sgd_step,
    [SEG_OP_ADAM_STEP] = cpu_adam_step,
    [SEG_OP_NONFINITE_ANY] = cpu_nonfinite_any,
    [SEG_OP_PEAK_FMA] = cpu_peak_fma,
    [SEG_OP_CONV2D_DIRECT] = cpu_conv2d_direct,
};
_Static_assert(sizeof cpu_kernels / sizeof cpu_kernels[0] == SEG_OP_COUNT,
               "cpu kernel table must cover ops.def");

static void cpu_destroy(struct seg_backend *be) { free(be); }

static enum seg_status cpu_buf_alloc(struct seg_backend *be, size_t nbytes, struct seg_buf *out)
{
    /* 64-byte alignment for vector loads. */
    void *p = NULL;
    if (posix_memalign(&p, 64, nbytes ? nbytes : 64))
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes", nbytes);
    out->handle = p;
    out->size = nbytes;
    return SEG_STATUS_OK;
}

static void cpu_buf_free(struct seg_backend *be, struct seg_buf *b)
{
    free(b->handle);
    b->handle = NULL;
}

static enum seg_status cpu_buf_write(struct seg_backend *be, struct seg_buf *dst, size_t off,
                                     const void *src, size_t n)
{
    memcpy((char *)dst->handle + off, src, n);
    return SEG_STATUS_OK;
}

static enum seg_status cpu_buf_read(struct seg_backend *be, const struct seg_buf *src, size_t off,
                                    void *dst, size_t n)
{
    memcpy(dst, (const char *)src->handle + off, n);
    return SEG_STATUS_OK;
}

static enum seg_status cpu_buf_copy(struct seg_backend *be, struct seg_buf *dst, size_t doff,
                                    const struct seg_buf *src, size_t soff, size_t n)
{
    memmove((char *)dst->handle + doff, (const char *)src->handle + soff, n);
    return SEG_STATUS_OK;
}

static enum seg_status cpu_sync(struct seg_backend *be) { return SEG_STATUS_OK; }

static const struct seg_backend_iface cpu_iface = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .buf_alloc = cpu_buf_alloc,
    .buf_free = cpu_buf_free,
    .buf_write = cpu_buf_write,
    .buf_read = cpu_buf_read,
    .buf_copy = cpu_buf_copy,
    .sync = cpu_sync,
    .kernels = cpu_kernels,
};

static void cpu_info(struct seg_device_info *d)
{
    memset(d, 0, sizeof *d);
    strcpy(d->backend, "cpu");
    strcpy(d->spec, "cpu");
    strcpy(d->name, "host CPU (OpenBLAS)");
    strcpy(d->vendor, "host");
    strcpy(d->driver, "segda cpu reference");
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    d->memory_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    d->compute_units = ncpu > 0 ? (uint32_t)ncpu : 1;
    d->is_cpu = true;
}

enum seg_status seg_cpu_devices(struct seg_device_info *out, int max, int *count)
{
    *count = 1;
    if (out && max > 0)
        cpu_info(out);
    return SEG_STATUS_OK;
}

enum seg_status seg_cpu_backend_create(struct seg_backend **out)
{
    struct seg_backend *be = calloc(1, sizeof *be);
    if (!be)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "cpu: out of host memory");
    be->iface = &cpu_iface;
    snprintf(be->gemm_kernel, sizeof be->gemm_kernel, "CBLAS sgemm");
    /* the reference: im2col + OpenBLAS, never a timing-dependent choice */
    be->conv_algo = SEG_CONV_ALGO_IM2COL;
    cpu_info(&be->info);
    *out = be;
    return SEG_STATUS_OK;
}
