/* cl_loss.c: CROSS_ENTROPY and CROSS_ENTROPY_BWD (kernels in cl/loss.cl). */
#include "opencl/cl_internal.h"

#define PROG "loss"

SEG_CL_KERNEL(seg_cl_cross_entropy)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const int32_t *ip = a->ip; /* N, C, P, ignore */
    size_t gws[2], lws[2];
    size_t wg = seg_cl_wg_limit(be, PROG, "cross_entropy_f32", (size_t)c->tuning.red_wg);
    seg_cl_row_layout((int)wg, ip[1], ip[2], &lws[0], &lws[1]);
    gws[0] = (size_t)ip[2];
    gws[1] = (size_t)ip[0] * lws[1];
    return SEG_CL_RUN(be, "CROSS_ENTROPY", PROG, "cross_entropy_f32", 2, gws, lws,
                      SEG_CL_T(a->dst[0]), SEG_CL_T(a->src[0]), SEG_CL_T(a->src[1]),
                      SEG_CL_OPT(c, a->src[2]), SEG_CL_INT(ip[0]), SEG_CL_INT(ip[1]),
                      SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]));
}

SEG_CL_KERNEL(seg_cl_cross_entropy_bwd)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const int32_t *ip = a->ip;
    size_t gws[2], lws[2];
    size_t wg = seg_cl_wg_limit(be, PROG, "cross_entropy_bwd_f32", (size_t)c->tuning.red_wg);
    seg_cl_row_layout((int)wg, ip[1], ip[2], &lws[0], &lws[1]);
    gws[0] = (size_t)ip[2];
    gws[1] = (size_t)ip[0] * lws[1];
    return SEG_CL_RUN(be, "CROSS_ENTROPY_BWD", PROG, "cross_entropy_bwd_f32", 2, gws, lws,
                      SEG_CL_T(a->dst[0]), SEG_CL_T(a->src[0]), SEG_CL_T(a->src[1]),
                      SEG_CL_OPT(c, a->src[2]), SEG_CL_T(a->src[3]), SEG_CL_INT(ip[0]),
                      SEG_CL_INT(ip[1]), SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]));
}
