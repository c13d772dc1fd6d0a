/* cl_pool_resize.c: MAXPOOL2D(_BWD), RESIZE_BILINEAR(_BWD), RESIZE_NEAREST
 * (kernels in cl/pool_resize.cl). */
#include "opencl/cl_internal.h"

#define PROG "pool_resize"

#define POOL_ARGS(ip)                                                                        \
    SEG_CL_INT(ip[0]), SEG_CL_INT(ip[1]), SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]),              \
        SEG_CL_INT(ip[4]), SEG_CL_INT(ip[5]), SEG_CL_INT(ip[6]), SEG_CL_INT(ip[7]),          \
        SEG_CL_INT(ip[8]), SEG_CL_INT(ip[9]), SEG_CL_INT(ip[10]), SEG_CL_INT(ip[11])

SEG_CL_KERNEL(seg_cl_maxpool2d)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "MAXPOOL2D", PROG, "maxpool2d_f32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->dst[1]), SEG_CL_T(a->src[0]), POOL_ARGS(a->ip), SEG_CL_INT(n));
}

SEG_CL_KERNEL(seg_cl_maxpool2d_bwd)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "MAXPOOL2D_BWD", PROG, "maxpool2d_bwd_f32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->src[0]), SEG_CL_T(a->src[1]), POOL_ARGS(a->ip),
                       SEG_CL_INT(n));
}

#define RESIZE_ARGS(ip)                                                                      \
    SEG_CL_INT(ip[0]), SEG_CL_INT(ip[1]), SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]), SEG_CL_INT(ip[4])

SEG_CL_KERNEL(seg_cl_resize_bilinear)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "RESIZE_BILINEAR", PROG, "resize_bilinear_f32", n,
                       SEG_CL_T(a->dst[0]), SEG_CL_T(a->src[0]), RESIZE_ARGS(a->ip),
                       SEG_CL_INT(a->ip[5] != 0), SEG_CL_INT(n));
}

SEG_CL_KERNEL(seg_cl_resize_bilinear_bwd)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "RESIZE_BILINEAR_BWD", PROG, "resize_bilinear_bwd_f32", n,
                       SEG_CL_T(a->dst[0]), SEG_CL_T(a->src[0]), RESIZE_ARGS(a->ip),
                       SEG_CL_INT(a->ip[5] != 0), SEG_CL_INT(n));
}

SEG_CL_KERNEL(seg_cl_resize_nearest)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "RESIZE_NEAREST", PROG, "resize_nearest_u32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->src[0]), RESIZE_ARGS(a->ip), SEG_CL_INT(n));
}
