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
