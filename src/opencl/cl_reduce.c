/* cl_reduce.c: REDUCE, ARGREDUCE, SOFTMAX, SOFTMAX_BWD (kernels in cl/reduce.cl).
 * Each reduces over n of [outer, n, inner]: a work-group covers lx columns of one outer row,
 * ly items per column striding over n and combining in local memory. */
#include "opencl/cl_internal.h"

#define PROG "reduce"

/* gws/lws for the row layout of cl/common.h's SEG_ROW_SETUP. */
static void row_grid(struct seg_backend *be, const char *name, int64_t outer, int64_t n,
                     int64_t inner, size_t gws[2], size_t lws[2])
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    size_t wg = seg_cl_wg_limit(be, PROG, name, (size_t)c->tuning.red_wg);
    seg_cl_row_layout((int)wg, n, inner, &lws[0], &lws[1]);
    gws[0] = (size_t)inner;
    gws[1] = (size_t)outer * lws[1];
}

/* Few long rows (e.g. a reduction to a scalar) would leave most of the device idle with one
 * work-group per row: split n into chunks reduced into scratch [outer, chunks, inner], then
 * reduce that. */
SEG_CL_KERNEL(seg_cl_reduce)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const int32_t *ip = a->ip;
    const int fn = ip[0], outer = ip[1], n = ip[2], inner = ip[3];
    size_t gws[2], lws[2];
    row_grid(be, "reduce_f32", outer, n, inner, gws, lws);
    size_t groups = (size_t)outer * (((size_t)inner + lws[0] - 1) / lws[0]);
    size_t want = (size_t)c->tuning.reduce_split_groups;
    size_t per_item = (size_t)c->tuning.reduce_split_min_items;
    size_t chunks = 1;
    if (groups < want && (size_t)n > lws[1] * per_item * 2) {
        chunks = (want + groups - 1) / groups;
        size_t max_chunks = (size_t)n / (lws[1] * per_item);
        if (chunks > max_chunks) chunks = max_chunks;
    }
    if (chunks <= 1)
        return SEG_CL_RUN(be, "REDUCE", PROG, "reduce_f32", 2, gws, lws, SEG_CL_T(a->dst[0]),
                          SEG_CL_T(a->src[0]), SEG_CL_INT(fn), SEG_CL_INT(outer), SEG_CL_INT(n),
                          SEG_CL_INT(inner), SEG_CL_INT(1), SEG_CL_INT(n), SEG_CL_INT(n));

    const int chunk_len = (int)(((size_t)n + chunks - 1) / chunks);
    chunks = ((size_t)n + (size_t)chunk_len - 1) / (size_t)chunk_len;
    cl_mem scr;
    SEG_CL_TRY(seg_cl_scratch(be, (size_t)outer * chunks * (size_t)inner * sizeof(float), "REDUCE",
                              &scr));
    const int fn1 = fn == SEG_REDUCE_MEAN ? SEG_REDUCE_SUM : fn;
    gws[1] = (size_t)outer * chunks * lws[1];
    SEG_CL_TRY(SEG_CL_RUN(be, "REDUCE", PROG, "reduce_f32", 2, gws, lws, SEG_CL_MEM(scr),
                          SEG_CL_INT(0), SEG_CL_T(a->src[0]), SEG_CL_INT(fn1), SEG_CL_INT(outer),
                          SEG_CL_INT(n), SEG_CL_INT(inner), SEG_CL_INT((int)chunks),
                          SEG_CL_INT(chunk_len), SEG_CL_INT(n)));
    row_grid(be, "reduce_f32", outer, (int64_t)chunks, inner, gws, lws);
    return SEG_CL_RUN(be, "REDUCE", PROG, "reduce_f32", 2, gws, lws, SEG_CL_T(a->dst[0]),
                      SEG_CL_MEM(scr), SEG_CL_INT(0), SEG_CL_INT(fn), SEG_CL_INT(outer),
                      SEG_CL_INT((int)chunks), SEG_CL_INT(inner), SEG_CL_INT(1),
                      SEG_CL_INT((int)chunks), SEG_CL_INT(n));
}

SEG_CL_KERNEL(seg_cl_argreduce)
{
    const int32_t *ip = a->ip;
    size_t gws[2], lws[2];
    row_grid(be, "argreduce_f32", ip[1], ip[2], ip[3], gws, lws);
    return SEG_CL_RUN(be, "ARGREDUCE", PROG, "argreduce_f32", 2, gws, lws, SEG_CL_T(a->dst[0]),
                      SEG_CL_T(a->src[0]), SEG_CL_INT(ip[0] != 0), SEG_CL_INT(ip[1]),
                      SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]));
}

SEG_CL_KERNEL(seg_cl_softmax)
{
    const int32_t *ip = a->ip;
    size_t gws[2], lws[2];
    row_grid(be, "softmax_f32", ip[1], ip[2], ip[3], gws, lws);
    return SEG_CL_RUN(be, "SOFTMAX", PROG, "softmax_f32", 2, gws, lws, SEG_CL_T(a->dst[0]),
                      SEG_CL_T(a->src[0]), SEG_CL_INT(ip[0] != 0), SEG_CL_INT(ip[1]),
                      SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]));
}

SEG_CL_KERNEL(seg_cl_softmax_bwd)
{
    const int32_t *ip = a->ip;
    size_t gws[2], lws[2];
    row_grid(be, "softmax_bwd_f32", ip[1], ip[2], ip[3], gws, lws);
    return SEG_CL_RUN(be, "SOFTMAX_BWD", PROG, "softmax_bwd_f32", 2, gws, lws,
                      SEG_CL_T(a->dst[0]), SEG_CL_T(a->src[0]), SEG_CL_T(a->src[1]),
                      SEG_CL_INT(ip[0] != 0), SEG_CL_INT(ip[1]), SEG_CL_INT(ip[2]),
                      SEG_CL_INT(ip[3]));
}
