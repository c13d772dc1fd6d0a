/* cl_index.c: ONE_HOT, GATHER, SCATTER_ADD, SLICE, SLICE_ASSIGN, PERMUTE
 * (kernels in cl/index.cl). */
#include "opencl/cl_internal.h"

#define PROG "index"

SEG_CL_KERNEL(seg_cl_one_hot)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "ONE_HOT", PROG, "one_hot_f32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->src[0]), SEG_CL_INT(a->ip[1]), SEG_CL_INT(a->ip[2]),
                       SEG_CL_INT(n));
}

SEG_CL_KERNEL(seg_cl_gather)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "GATHER", PROG, "gather_u32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->src[0]), SEG_CL_T(a->src[1]), SEG_CL_INT(a->ip[1]),
                       SEG_CL_INT(a->ip[2]), SEG_CL_INT(a->ip[3]), SEG_CL_INT(n));
}

SEG_CL_KERNEL(seg_cl_scatter_add)
{
    const int32_t *ip = a->ip;
    const struct seg_tensor *d = a->dst[0];
    int64_t nd = seg_numel_of(d);
    if (!ip[4])
        return SEG_CL_RUN1(be, "SCATTER_ADD", PROG, "scatter_add_f32", nd, SEG_CL_T(d),
                           SEG_CL_T(a->src[0]), SEG_CL_T(a->src[1]), SEG_CL_INT(ip[1]),
                           SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]), SEG_CL_INT(nd));
    SEG_CL_TRY(SEG_CL_RUN1(be, "SCATTER_ADD", "pointwise", "fill_u32", nd, SEG_CL_T(d),
                           SEG_CL_INT(nd), SEG_CL_UINT(0)));
    int64_t ns = seg_numel_of(a->src[0]);
    return SEG_CL_RUN1(be, "SCATTER_ADD", PROG, "scatter_unique_f32", ns, SEG_CL_T(d),
                       SEG_CL_T(a->src[0]), SEG_CL_T(a->src[1]), SEG_CL_INT(ip[1]),
                       SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]), SEG_CL_INT(ns));
}

/* ip: outer, n, inner, start, len. */
SEG_CL_KERNEL(seg_cl_slice)
{
    const int32_t *ip = a->ip;
    int64_t total = (int64_t)ip[0] * ip[4] * ip[2];
    return SEG_CL_RUN1(be, "SLICE", PROG, "copy_rows_u32", total, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->src[0]), SEG_CL_INT(ip[4]), SEG_CL_INT(0), SEG_CL_INT(ip[1]),
                       SEG_CL_INT(ip[3]), SEG_CL_INT(ip[4]), SEG_CL_INT(ip[2]), SEG_CL_INT(total));
}

SEG_CL_KERNEL(seg_cl_slice_assign)
{
    const int32_t *ip = a->ip;
    int64_t total = (int64_t)ip[0] * ip[4] * ip[2];
    return SEG_CL_RUN1(be, "SLICE_ASSIGN", PROG, "copy_rows_u32", total, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->src[0]), SEG_CL_INT(ip[1]), SEG_CL_INT(ip[3]),
                       SEG_CL_INT(ip[4]), SEG_CL_INT(0), SEG_CL_INT(ip[4]), SEG_CL_INT(ip[2]),
                       SEG_CL_INT(total));
}

SEG_CL_KERNEL(seg_cl_permute)
{
    const int32_t *ip = a->ip;
    int64_t n = seg_numel_of(a->dst[0]);
    int32_t ss[4] = {ip[1] * ip[2] * ip[3], ip[2] * ip[3], ip[3], 1};
    int32_t ds[4], ps[4];
    for (int k = 0; k < 4; k++) {
        int p = ip[4 + k];
        if (p < 0 || p > 3) return seg_error(SEG_STATUS_INVALID, "opencl: PERMUTE perm[%d] = %d", k, p);
        ds[k] = ip[p];
        ps[k] = ss[p];
    }
    return SEG_CL_RUN1(be, "PERMUTE", PROG, "permute_u32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->src[0]), SEG_CL_INT(ds[1]), SEG_CL_INT(ds[2]),
                       SEG_CL_INT(ds[3]), SEG_CL_INT(ps[0]), SEG_CL_INT(ps[1]), SEG_CL_INT(ps[2]),
                       SEG_CL_INT(ps[3]), SEG_CL_INT(n));
}
