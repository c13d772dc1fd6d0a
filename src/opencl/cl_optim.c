/* cl_optim.c: SGD_STEP, ADAM_STEP and NONFINITE_ANY (kernels in cl/optim.cl). */
#include "opencl/cl_internal.h"

#define PROG "optim"


SEG_CL_KERNEL(seg_cl_sgd_step)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "SGD_STEP", PROG, "sgd_step_f32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->dst[1]), SEG_CL_T(a->src[0]), SEG_CL_INT(n),
                       SEG_CL_FLOAT(a->fp[0]), SEG_CL_FLOAT(a->fp[1]), SEG_CL_FLOAT(a->fp[2]),
                       SEG_CL_INT(a->ip[0] != 0), SEG_CL_OPT(seg_cl_ctx_of(be), a->src[1]));
}

SEG_CL_KERNEL(seg_cl_adam_step)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "ADAM_STEP", PROG, "adam_step_f32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->dst[1]), SEG_CL_T(a->dst[2]), SEG_CL_T(a->src[0]),
                       SEG_CL_INT(n), SEG_CL_FLOAT(a->fp[0]), SEG_CL_FLOAT(a->fp[1]),
                       SEG_CL_FLOAT(a->fp[2]), SEG_CL_FLOAT(a->fp[3]), SEG_CL_FLOAT(a->fp[4]),
                       SEG_CL_FLOAT(a->fp[5]), SEG_CL_FLOAT(a->fp[6]), SEG_CL_FLOAT(a->fp[7]), SEG_CL_OPT(seg_cl_ctx_of(be), a->src[1]));
}

/* One work-group of 64 strides over the tensor and combines in local memory. */
SEG_CL_KERNEL(seg_cl_nonfinite_any)
{
    size_t gws[1] = {64}, lws[1] = {64};
    return SEG_CL_RUN(be, "NONFINITE_ANY", PROG, "nonfinite_any_f32", 1, gws, lws,
                      SEG_CL_T(a->dst[0]), SEG_CL_T(a->src[0]), SEG_CL_INT(a->ip[0]));
}
