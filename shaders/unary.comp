#version 450
#extension GL_GOOGLE_include_directive : require
/* UNARY: binding 0 = dst, 1 = x. UNARY_BWD (-DBWD): 0 = dx, 1 = x, 2 = dy.
 * ip[0] = fn (or specialization constant SPEC_FN), fp[0], fp[1] = parameters;
 * ip[1] = n (host). */
#include "common.glsl"
DECLARE_WG()
DECLARE_FN()
BUF_F(0, d)
BUF_RF(1, xs)
#ifdef BWD
BUF_RF(2, dys)
#endif

float fwd(int fn, float x, float p0, float p1)
{
    switch (fn) {
    case 0: return -x;
    case 1: return seg_exp(x);
    case 2: return seg_log(x);
    case 3: return sqrt(x);
    case 4: return abs(x);
    case 5: return x > 0.0 ? x : 0.0;
    case 6: return x > 0.0 ? x : p0 * x;
    case 7: return seg_sigmoid(x);
    case 8: return max(x, 0.0) + seg_log1p(seg_exp(-abs(x)));
    case 9: return seg_tanh(x);
    case 10: { precise float r = p0 * x + p1; return r; }
    case 11: return min(max(x, p0), p1);
    case 12: return seg_pow(x, p0);
    case 13: return x * x;
    case 14: return 1.0 / x;
    }
    return 0.0;
}

/* dy * f'(x) */
float bwd(int fn, float x, float dy, float p0, float p1)
{
    switch (fn) {
    case 0: return -dy;
    case 1: return dy * seg_exp(x);
    case 2: return dy / x;
    case 3: return dy / (2.0 * sqrt(x));
    case 4: return x > 0.0 ? dy : (x < 0.0 ? -dy : 0.0);
    case 5: return x > 0.0 ? dy : 0.0;
    case 6: return x > 0.0 ? dy : p0 * dy;
    case 7: { float s = seg_sigmoid(x); return dy * s * (1.0 - s); }
    case 8: return dy * seg_sigmoid(x);
    case 9: { float t = seg_tanh(x); return dy * (1.0 - t * t); }
    case 10: return dy * p0;
    case 11: return (x >= p0 && x <= p1) ? dy : 0.0;
    case 12: return dy * p0 * seg_pow(x, p0 - 1.0);
    case 13: return dy * 2.0 * x;
    case 14: return -dy / (x * x);
    }
    return 0.0;
}

void main()
{
    int fn = SELECT_FN(0);
    float p0 = FP(0), p1 = FP(1);
    GRID_LOOP(i, UP(1)) {
        float x = xs[OFF(1) + i];
#ifdef BWD
        d[OFF(0) + i] = bwd(fn, x, dys[OFF(2) + i], p0, p1);
#else
        d[OFF(0) + i] = fwd(fn, x, p0, p1);
#endif
    }
}
