/* cpu_pointwise.c: fill, cast, binary, expand, unary, where, rng. */
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"

CPU_KERNEL(cpu_fill)
{
    uint32_t *d = CPU_U32(a->dst[0]);
    int64_t n = seg_numel_of(a->dst[0]);
    uint32_t v = (uint32_t)a->ip[0];
    for (int64_t i = 0; i < n; i++)
        d[i] = v;
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_cast)
{
    const struct seg_tensor *s = a->src[0];
    struct seg_tensor *d = a->dst[0];
    int64_t n = seg_numel_of(d);
    for (int64_t i = 0; i < n; i++) {
        double v;
        switch (s->dtype) {
        case SEG_DTYPE_F32: v = CPU_F32(s)[i]; break;
        case SEG_DTYPE_I32: v = CPU_I32(s)[i]; break;
        default: v = ((const uint8_t *)cpu_ptr(s))[i]; break;
        }
        switch (d->dtype) {
        case SEG_DTYPE_F32: CPU_F32(d)[i] = (float)v; break;
        case SEG_DTYPE_I32:
            CPU_I32(d)[i] = s->dtype == SEG_DTYPE_F32 ? (int32_t)CPU_F32(s)[i] : (int32_t)v;
            break;
        default:
            ((uint8_t *)cpu_ptr(d))[i] =
                (uint8_t)(s->dtype == SEG_DTYPE_F32 ? (int32_t)CPU_F32(s)[i] : (int32_t)v);
            break;
        }
    }
    return SEG_STATUS_OK;
}

static inline float binary_fn(int fn, float x, float y)
{
    switch (fn) {
    case SEG_BINARY_ADD: return x + y;
    case SEG_BINARY_SUB: return x - y;
    case SEG_BINARY_MUL: return x * y;
    case SEG_BINARY_DIV: return x / y;
    case SEG_BINARY_POW: return powf(x, y);
    case SEG_BINARY_MAX: return x > y ? x : y;
    case SEG_BINARY_MIN: return x < y ? x : y;
    case SEG_BINARY_EQ: return x == y;
    case SEG_BINARY_NE: return x != y;
    case SEG_BINARY_LT: return x < y;
    case SEG_BINARY_LE: return x <= y;
    case SEG_BINARY_GT: return x > y;
    case SEG_BINARY_GE: return x >= y;
    }
    return 0.0f;
}

CPU_KERNEL(cpu_binary)
{
    const int32_t *sh = &a->ip[1], *sa = &a->ip[5], *sb = &a->ip[9];
    const float *x = CPU_F32(a->src[0]), *y = CPU_F32(a->src[1]);
    float *d = CPU_F32(a->dst[0]);
    int fn = a->ip[0];
    int64_t k = 0;
    for (int i0 = 0; i0 < sh[0]; i0++)
        for (int i1 = 0; i1 < sh[1]; i1++)
            for (int i2 = 0; i2 < sh[2]; i2++) {
                int64_t oa = (int64_t)i0 * sa[0] + (int64_t)i1 * sa[1] + (int64_t)i2 * sa[2];
                int64_t ob = (int64_t)i0 * sb[0] + (int64_t)i1 * sb[1] + (int64_t)i2 * sb[2];
                for (int i3 = 0; i3 < sh[3]; i3++)
                    d[k++] = binary_fn(fn, x[oa + (int64_t)i3 * sa[3]], y[ob + (int64_t)i3 * sb[3]]);
            }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_expand)
{
    const int32_t *sh = &a->ip[1], *ss = &a->ip[5];
    const uint32_t *s = CPU_U32(a->src[0]);
    uint32_t *d = CPU_U32(a->dst[0]);
    int64_t k = 0;
    for (int i0 = 0; i0 < sh[0]; i0++)
        for (int i1 = 0; i1 < sh[1]; i1++)
            for (int i2 = 0; i2 < sh[2]; i2++) {
                int64_t o = (int64_t)i0 * ss[0] + (int64_t)i1 * ss[1] + (int64_t)i2 * ss[2];
                for (int i3 = 0; i3 < sh[3]; i3++)
                    d[k++] = s[o + (int64_t)i3 * ss[3]];
            }
    return SEG_STATUS_OK;
}

static inline float unary_fn(int fn, float x, float p0, float p1)
{
    switch (fn) {
    case SEG_UNARY_NEG: return -x;
    case SEG_UNARY_EXP: return expf(x);
    case SEG_UNARY_LOG: return logf(x);
    case SEG_UNARY_SQRT: return sqrtf(x);
    case SEG_UNARY_ABS: return fabsf(x);
    case SEG_UNARY_RELU: return x > 0.0f ? x : 0.0f;
    case SEG_UNARY_LEAKY_RELU: return x > 0.0f ? x : p0 * x;
    case SEG_UNARY_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case SEG_UNARY_SOFTPLUS: return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
    case SEG_UNARY_TANH: return tanhf(x);
    case SEG_UNARY_AFFINE: return p0 * x + p1;
    case SEG_UNARY_CLAMP: return fminf(fmaxf(x, p0), p1);
    case SEG_UNARY_POWS: return powf(x, p0);
    case SEG_UNARY_SQUARE: return x * x;
    case SEG_UNARY_RECIP: return 1.0f / x;
    }
    return 0.0f;
}

static inline float unary_grad(int fn, float x, float p0, float p1)
{
    switch (fn) {
    case SEG_UNARY_NEG: return -1.0f;
    case SEG_UNARY_EXP: return expf(x);
    case SEG_UNARY_LOG: return 1.0f / x;
    case SEG_UNARY_SQRT: return 0.5f / sqrtf(x);
    case SEG_UNARY_ABS: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    case SEG_UNARY_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case SEG_UNARY_LEAKY_RELU: return x > 0.0f ? 1.0f : p0;
    case SEG_UNARY_SIGMOID: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f - s);
    }
    case SEG_UNARY_SOFTPLUS: return 1.0f / (1.0f + expf(-x));
    case SEG_UNARY_TANH: {
        float t = tanhf(x);
        return 1.0f - t * t;
    }
    case SEG_UNARY_AFFINE: return p0;
    case SEG_UNARY_CLAMP: return (x >= p0 && x <= p1) ? 1.0f : 0.0f;
    case SEG_UNARY_POWS: return p0 * powf(x, p0 - 1.0f);
    case SEG_UNARY_SQUARE: return 2.0f * x;
    case SEG_UNARY_RECIP: return -1.0f / (x * x);
    }
    return 0.0f;
}

CPU_KERNEL(cpu_unary)
{
    const float *x = CPU_F32(a->src[0]);
    float *d = CPU_F32(a->dst[0]);
    int64_t n = seg_numel_of(a->dst[0]);
    for (int64_t i = 0; i < n; i++)
        d[i] = unary_fn(a->ip[0], x[i], a->fp[0], a->fp[1]);
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_unary_bwd)
{
    const float *x = CPU_F32(a->src[0]), *dy = CPU_F32(a->src[1]);
    float *d = CPU_F32(a->dst[0]);
    int64_t n = seg_numel_of(a->dst[0]);
    for (int64_t i = 0; i < n; i++)
        d[i] = dy[i] * unary_grad(a->ip[0], x[i], a->fp[0], a->fp[1]);
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_where)
{
    const float *c = CPU_F32(a->src[0]), *x = CPU_F32(a->src[1]), *y = CPU_F32(a->src[2]);
    float *d = CPU_F32(a->dst[0]);
    int64_t n = seg_numel_of(a->dst[0]);
    for (int64_t i = 0; i < n; i++)
        d[i] = c[i] != 0.0f ? x[i] : y[i];
    return SEG_STATUS_OK;
}

static inline uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

CPU_KERNEL(cpu_rng_uniform)
{
    float *d = CPU_F32(a->dst[0]);
    int64_t n = seg_numel_of(a->dst[0]);
    uint32_t seed = (uint32_t)a->ip[0], stream = (uint32_t)a->ip[1];
    for (int64_t i = 0; i < n; i++) {
        uint32_t h = fmix32((uint32_t)i * 0x9E3779B9u + seed);
        h = fmix32(h ^ stream);
        d[i] = (float)(h >> 8) * (1.0f / 16777216.0f);
    }
    return SEG_STATUS_OK;
}
