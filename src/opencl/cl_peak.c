/* cl_peak.c: PEAK_FMA (kernels in cl/peak.cl). */
#include <stdio.h>

#include "opencl/cl_internal.h"

SEG_CL_KERNEL(seg_cl_peak_fma)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const struct seg_tensor *d = a->dst[0], *s = a->src[0];
    int n = a->ip[1], w = c->peak_vw;
    char name[32];
    snprintf(name, sizeof name, "peak_fma_%d", w);
    return SEG_CL_RUN1(be, "PEAK_FMA", "peak", name, ((size_t)n + (size_t)w - 1) / (size_t)w,
                       SEG_CL_T(d), SEG_CL_T(s), SEG_CL_INT(n), SEG_CL_INT(a->ip[0]),
                       SEG_CL_FLOAT(a->fp[0]), SEG_CL_FLOAT(a->fp[1]));
}
