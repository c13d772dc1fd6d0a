/* cl_optim.c: SGD_STEP and ADAM_STEP (kernels in cl/optim.cl). */
#include "opencl/cl_internal.h"

#define PROG "optim"

SEG_CL_KERNEL(seg_cl_sgd_step)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "SGD_STEP", PROG, "sgd_step_f32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->dst[1]), SEG_CL_T(a->src[0]), SEG_CL_INT(n),
                       SEG_CL_FLOAT(a->fp[0]), SEG_CL_FLOAT(a->fp[1]), SEG_CL_FLOAT(a->fp[2]),
                       SEG_CL_INT(a->ip[0] != 0));
}

SEG_CL_KERNEL(seg_cl_adam_step)
{
    int64_t n = seg_numel_of(a->dst[0]);
    return SEG_CL_RUN1(be, "ADAM_STEP", PROG, "adam_step_f32", n, SEG_CL_T(a->dst[0]),
                       SEG_CL_T(a->dst[1]), SEG_CL_T(a->dst[2]), SEG_CL_T(a->src[0]),
                       SEG_CL_INT(n), SEG_CL_FLOAT(a->fp[0]), SEG_CL_FLOAT(a->fp[1]),
                       SEG_CL_FLOAT(a->fp[2]), SEG_CL_FLOAT(a->fp[3]), SEG_CL_FLOAT(a->fp[4]),
                       SEG_CL_FLOAT(a->fp[5]), SEG_CL_FLOAT(a->fp[6]));
}
