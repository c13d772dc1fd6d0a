/* cl_pointwise.c: FILL, CAST, BINARY, EXPAND, UNARY, UNARY_BWD, WHERE, RNG_UNIFORM
 * (kernels in cl/pointwise.cl). */
#include <stdio.h>

#include "opencl/cl_internal.h"

#define PROG "pointwise"

SEG_CL_KERNEL(seg_cl_fill)
{
    const struct seg_tensor *d = a->dst[0];
    int64_t n = seg_numel_of(d);
    return SEG_CL_RUN1(be, "FILL", PROG, "fill_u32", n, SEG_CL_T(d), SEG_CL_INT(n),
                       SEG_CL_UINT((uint32_t)a->ip[0]));
}

static const char *dtype_tag(enum seg_dtype t)
{
    switch (t) {
    case SEG_DTYPE_F32: return "f32";
    case SEG_DTYPE_I32: return "i32";
    case SEG_DTYPE_U8: return "u8";
    }
    return NULL;
}

SEG_CL_KERNEL(seg_cl_cast)
{
    const struct seg_tensor *d = a->dst[0], *s = a->src[0];
    const char *st = dtype_tag(s->dtype), *dt = dtype_tag(d->dtype);
    if (!st || !dt) return seg_error(SEG_STATUS_UNSUPPORTED, "opencl: CAST of an unknown dtype");
    char name[32];
    snprintf(name, sizeof name, "cast_%s_%s", st, dt);
    int64_t n = seg_numel_of(d);
    return SEG_CL_RUN1(be, "CAST", PROG, name, n, SEG_CL_T(d), SEG_CL_T(s), SEG_CL_INT(n));
}

SEG_CL_KERNEL(seg_cl_binary)
{
    const struct seg_tensor *d = a->dst[0], *x = a->src[0], *y = a->src[1];
    const int32_t *ip = a->ip;
    int64_t n = seg_numel_of(d);
    /* Contiguous strides of the dst shape: both operands same-shaped -> flat kernel. */
    int32_t cs[4] = {ip[2] * ip[3] * ip[4], ip[3] * ip[4], ip[4], 1};
    bool flat = true;
    for (int k = 0; k < 4; k++) {
        bool unit = ip[1 + k] == 1; /* a stride on a size-1 dim is never used */
        if (!unit && (ip[5 + k] != cs[k] || ip[9 + k] != cs[k])) flat = false;
    }
    if (flat)
        return SEG_CL_RUN1(be, "BINARY", PROG, "binary_f32_flat", n, SEG_CL_T(d), SEG_CL_T(x),
                           SEG_CL_T(y), SEG_CL_INT(n), SEG_CL_INT(ip[0]));
    return SEG_CL_RUN1(be, "BINARY", PROG, "binary_f32", n, SEG_CL_T(d), SEG_CL_T(x), SEG_CL_T(y),
                       SEG_CL_INT(n), SEG_CL_INT(ip[0]), SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]),
                       SEG_CL_INT(ip[4]), SEG_CL_INT(ip[5]), SEG_CL_INT(ip[6]), SEG_CL_INT(ip[7]),
                       SEG_CL_INT(ip[8]), SEG_CL_INT(ip[9]), SEG_CL_INT(ip[10]),
                       SEG_CL_INT(ip[11]), SEG_CL_INT(ip[12]));
}

SEG_CL_KERNEL(seg_cl_expand)
{
    const struct seg_tensor *d = a->dst[0], *s = a->src[0];
    const int32_t *ip = a->ip;
    int64_t n = seg_numel_of(d);
    return SEG_CL_RUN1(be, "EXPAND", PROG, "expand_u32", n, SEG_CL_T(d), SEG_CL_T(s),
                       SEG_CL_INT(n), SEG_CL_INT(ip[2]), SEG_CL_INT(ip[3]), SEG_CL_INT(ip[4]),
                       SEG_CL_INT(ip[5]), SEG_CL_INT(ip[6]), SEG_CL_INT(ip[7]), SEG_CL_INT(ip[8]));
}

SEG_CL_KERNEL(seg_cl_unary)
{
    const struct seg_tensor *d = a->dst[0], *s = a->src[0];
    int64_t n = seg_numel_of(d);
    return SEG_CL_RUN1(be, "UNARY", PROG, "unary_f32", n, SEG_CL_T(d), SEG_CL_T(s), SEG_CL_INT(n),
                       SEG_CL_INT(a->ip[0]), SEG_CL_FLOAT(a->fp[0]), SEG_CL_FLOAT(a->fp[1]));
}

SEG_CL_KERNEL(seg_cl_unary_bwd)
{
    const struct seg_tensor *d = a->dst[0], *x = a->src[0], *dy = a->src[1];
    int64_t n = seg_numel_of(d);
    return SEG_CL_RUN1(be, "UNARY_BWD", PROG, "unary_bwd_f32", n, SEG_CL_T(d), SEG_CL_T(x),
                       SEG_CL_T(dy), SEG_CL_INT(n), SEG_CL_INT(a->ip[0]), SEG_CL_FLOAT(a->fp[0]),
                       SEG_CL_FLOAT(a->fp[1]));
}

SEG_CL_KERNEL(seg_cl_where)
{
    const struct seg_tensor *d = a->dst[0];
    int64_t n = seg_numel_of(d);
    return SEG_CL_RUN1(be, "WHERE", PROG, "where_f32", n, SEG_CL_T(d), SEG_CL_T(a->src[0]),
                       SEG_CL_T(a->src[1]), SEG_CL_T(a->src[2]), SEG_CL_INT(n));
}

SEG_CL_KERNEL(seg_cl_rng_uniform)
{
    const struct seg_tensor *d = a->dst[0];
    int64_t n = seg_numel_of(d);
    return SEG_CL_RUN1(be, "RNG_UNIFORM", PROG, "rng_uniform_f32", n, SEG_CL_T(d), SEG_CL_INT(n),
                       SEG_CL_UINT((uint32_t)a->ip[0]), SEG_CL_UINT((uint32_t)a->ip[1]));
}
