/* cl_norm.c: BATCHNORM_STATS, BATCHNORM, BATCHNORM_BWD (kernels in cl/norm.cl). */
#include "opencl/cl_internal.h"

#define PROG "norm"

/* One work-group per channel. */
static void channel_grid(struct seg_backend *be, const char *name, int C, size_t gws[1],
                         size_t lws[1])
{
    lws[0] = seg_cl_wg_limit(be, PROG, name, (size_t)seg_cl_ctx_of(be)->tuning.red_wg);
    gws[0] = (size_t)C * lws[0];
}

SEG_CL_KERNEL(seg_cl_batchnorm_stats)
{
    const int32_t *ip = a->ip;
    size_t gws[1], lws[1];
    channel_grid(be, "bn_stats_f32", ip[1], gws, lws);
    return SEG_CL_RUN(be, "BATCHNORM_STATS", PROG, "bn_stats_f32", 1, gws, lws,
                      SEG_CL_T(a->dst[0]), SEG_CL_T(a->dst[1]), SEG_CL_T(a->src[0]),
                      SEG_CL_INT(ip[0]), SEG_CL_INT(ip[1]), SEG_CL_INT(ip[2]));
}

SEG_CL_KERNEL(seg_cl_batchnorm)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const int32_t *ip = a->ip;
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "BATCHNORM", PROG, "bn_forward_f32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->src[0]), SEG_CL_T(a->src[1]), SEG_CL_T(a->src[2]),
                       SEG_CL_OPT(c, a->src[3]), SEG_CL_OPT(c, a->src[4]), SEG_CL_INT(ip[1]),
                       SEG_CL_INT(ip[2]), SEG_CL_INT(n), SEG_CL_FLOAT(a->fp[0]));
}

SEG_CL_KERNEL(seg_cl_batchnorm_bwd)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const int32_t *ip = a->ip;
    if (!a->dst[0] && !a->dst[1] && !a->dst[2]) return SEG_STATUS_OK;
    size_t gws[1], lws[1];
    channel_grid(be, "bn_backward_f32", ip[1], gws, lws);
    return SEG_CL_RUN(be, "BATCHNORM_BWD", PROG, "bn_backward_f32", 1, gws, lws,
                      SEG_CL_OPT(c, a->dst[0]), SEG_CL_OPT(c, a->dst[1]),
                      SEG_CL_OPT(c, a->dst[2]), SEG_CL_T(a->src[0]), SEG_CL_T(a->src[1]),
                      SEG_CL_T(a->src[2]), SEG_CL_T(a->src[3]), SEG_CL_OPT(c, a->src[4]),
                      SEG_CL_INT(ip[0]), SEG_CL_INT(ip[1]), SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]),
                      SEG_CL_FLOAT(a->fp[0]));
}
