/* pointwise.cl: FILL, CAST, BINARY, EXPAND, UNARY, UNARY_BWD, WHERE, RNG_UNIFORM and the
 * beta-scaling helper of MATMUL. One work-item per destination element. */
#include "common.h"

__kernel void fill_u32(__global uint *d, int doff, int n, uint v)
{
    const int g = SEG_GID();
    if (g < n) d[doff + g] = v;
}

/* d = beta * d (beta == 0 writes 0 even over NaN), for MATMUL with K == 0. */
__kernel void scale_f32(__global float *d, int doff, int n, float beta)
{
    const int g = SEG_GID();
    if (g < n) d[doff + g] = beta == 0.0f ? 0.0f : beta * d[doff + g];
}

/* ---- CAST: f32 i32 u8 in every direction; F32 -> U8 goes through int. ---- */
#define SEG_CAST(NAME, ST, DT, CONV)                                                 \
    __kernel void NAME(__global DT *d, int doff, __global const ST *s, int soff, int n) \
    {                                                                                \
        const int g = SEG_GID();                                                     \
        if (g < n) {                                                                 \
            ST v = s[soff + g];                                                      \
            d[doff + g] = CONV;                                                      \
        }                                                                            \
    }
SEG_CAST(cast_f32_f32, float, float, v)
SEG_CAST(cast_f32_i32, float, int, (int)v)
SEG_CAST(cast_f32_u8, float, uchar, (uchar)((int)v & 0xff))
SEG_CAST(cast_i32_f32, int, float, (float)v)
SEG_CAST(cast_i32_i32, int, int, v)
SEG_CAST(cast_i32_u8, int, uchar, (uchar)(v & 0xff))
SEG_CAST(cast_u8_f32, uchar, float, (float)v)
SEG_CAST(cast_u8_i32, uchar, int, (int)v)
SEG_CAST(cast_u8_u8, uchar, uchar, v)

/* ---- BINARY with 4-D broadcasting ---- */
float seg_binary_apply(int fn, float a, float b)
{
    switch (fn) {
    case SEG_BINARY_ADD: return a + b;
    case SEG_BINARY_SUB: return a - b;
    case SEG_BINARY_MUL: return a * b;
    case SEG_BINARY_DIV: return a / b;
    case SEG_BINARY_POW: return pow(a, b);
    case SEG_BINARY_MAX: return a > b ? a : b;
    case SEG_BINARY_MIN: return a < b ? a : b;
    case SEG_BINARY_EQ: return a == b ? 1.0f : 0.0f;
    case SEG_BINARY_NE: return a != b ? 1.0f : 0.0f;
    case SEG_BINARY_LT: return a < b ? 1.0f : 0.0f;
    case SEG_BINARY_LE: return a <= b ? 1.0f : 0.0f;
    case SEG_BINARY_GT: return a > b ? 1.0f : 0.0f;
    case SEG_BINARY_GE: return a >= b ? 1.0f : 0.0f;
    }
    return 0.0f;
}

/* dst shape [d0, d1, d2, d3] (n = its numel); sa*, sb*: element strides (0 = broadcast). */
__kernel void binary_f32(__global float *d, int doff, __global const float *a, int aoff,
                         __global const float *b, int boff, int n, int fn, int d1, int d2, int d3,
                         int sa0, int sa1, int sa2, int sa3, int sb0, int sb1, int sb2, int sb3)
{
    const int g = SEG_GID();
    if (g >= n) return;
    int r = g;
    const int i3 = r % d3; r /= d3;
    const int i2 = r % d2; r /= d2;
    const int i1 = r % d1;
    const int i0 = r / d1;
    const float va = a[aoff + i0 * sa0 + i1 * sa1 + i2 * sa2 + i3 * sa3];
    const float vb = b[boff + i0 * sb0 + i1 * sb1 + i2 * sb2 + i3 * sb3];
    d[doff + g] = seg_binary_apply(fn, va, vb);
}

/* Same-shape fast path (no index arithmetic). */
__kernel void binary_f32_flat(__global float *d, int doff, __global const float *a, int aoff,
                              __global const float *b, int boff, int n, int fn)
{
    const int g = SEG_GID();
    if (g < n) d[doff + g] = seg_binary_apply(fn, a[aoff + g], b[boff + g]);
}

/* ---- EXPAND (4-byte) ---- */
__kernel void expand_u32(__global uint *d, int doff, __global const uint *s, int soff, int n,
                         int d1, int d2, int d3, int s0, int s1, int s2, int s3)
{
    const int g = SEG_GID();
    if (g >= n) return;
    int r = g;
    const int i3 = r % d3; r /= d3;
    const int i2 = r % d2; r /= d2;
    const int i1 = r % d1;
    const int i0 = r / d1;
    d[doff + g] = s[soff + i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3];
}

/* ---- UNARY / UNARY_BWD ---- */
float seg_sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }

float seg_unary_apply(int fn, float x, float p0, float p1)
{
    switch (fn) {
    case SEG_UNARY_NEG: return -x;
    case SEG_UNARY_EXP: return exp(x);
    case SEG_UNARY_LOG: return log(x);
    case SEG_UNARY_SQRT: return sqrt(x);
    case SEG_UNARY_ABS: return fabs(x);
    case SEG_UNARY_RELU: return x > 0.0f ? x : 0.0f;
    case SEG_UNARY_LEAKY_RELU: return x > 0.0f ? x : p0 * x;
    case SEG_UNARY_SIGMOID: return seg_sigmoid(x);
    case SEG_UNARY_SOFTPLUS: return fmax(x, 0.0f) + log1p(exp(-fabs(x)));
    case SEG_UNARY_TANH: return tanh(x);
    case SEG_UNARY_AFFINE: return p0 * x + p1;
    case SEG_UNARY_CLAMP: return fmin(fmax(x, p0), p1);
    case SEG_UNARY_POWS: return pow(x, p0);
    case SEG_UNARY_SQUARE: return x * x;
    case SEG_UNARY_RECIP: return 1.0f / x;
    }
    return 0.0f;
}

/* f'(x); kinks: relu'(0) = 0, abs'(0) = 0, leaky'(0) = slope, clamp' = 1 on [lo, hi]. */
float seg_unary_deriv(int fn, float x, float p0, float p1)
{
    switch (fn) {
    case SEG_UNARY_NEG: return -1.0f;
    case SEG_UNARY_EXP: return exp(x);
    case SEG_UNARY_LOG: return 1.0f / x;
    case SEG_UNARY_SQRT: return 0.5f / sqrt(x);
    case SEG_UNARY_ABS: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    case SEG_UNARY_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case SEG_UNARY_LEAKY_RELU: return x > 0.0f ? 1.0f : p0;
    case SEG_UNARY_SIGMOID: {
        const float s = seg_sigmoid(x);
        return s * (1.0f - s);
    }
    case SEG_UNARY_SOFTPLUS: return seg_sigmoid(x);
    case SEG_UNARY_TANH: {
        const float t = tanh(x);
        return 1.0f - t * t;
    }
    case SEG_UNARY_AFFINE: return p0;
    case SEG_UNARY_CLAMP: return (x >= p0 && x <= p1) ? 1.0f : 0.0f;
    case SEG_UNARY_POWS: return p0 * pow(x, p0 - 1.0f);
    case SEG_UNARY_SQUARE: return 2.0f * x;
    case SEG_UNARY_RECIP: return -1.0f / (x * x);
    }
    return 0.0f;
}

__kernel void unary_f32(__global float *d, int doff, __global const float *s, int soff, int n,
                        int fn, float p0, float p1)
{
    const int g = SEG_GID();
    if (g < n) d[doff + g] = seg_unary_apply(fn, s[soff + g], p0, p1);
}

__kernel void unary_bwd_f32(__global float *d, int doff, __global const float *x, int xoff,
                            __global const float *dy, int dyoff, int n, int fn, float p0, float p1)
{
    const int g = SEG_GID();
    if (g < n) d[doff + g] = dy[dyoff + g] * seg_unary_deriv(fn, x[xoff + g], p0, p1);
}

/* ---- WHERE ---- */
__kernel void where_f32(__global float *d, int doff, __global const float *c, int coff,
                        __global const float *a, int aoff, __global const float *b, int boff,
                        int n)
{
    const int g = SEG_GID();
    if (g < n) d[doff + g] = c[coff + g] != 0.0f ? a[aoff + g] : b[boff + g];
}

/* ---- RNG_UNIFORM: the counter-based hash of ops.def, bit-identical on every backend ---- */
uint seg_fmix32(uint h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

__kernel void rng_uniform_f32(__global float *d, int doff, int n, uint seed, uint stream)
{
    const int g = SEG_GID();
    if (g >= n) return;
    uint h = seg_fmix32((uint)g * 0x9E3779B9u + seed);
    h = seg_fmix32(h ^ stream);
    d[doff + g] = (float)(h >> 8) * (1.0f / 16777216.0f);
}
