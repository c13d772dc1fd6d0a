#version 450
#extension GL_GOOGLE_include_directive : require
/* PEAK_FMA: binding 0 = dst [n], 1 = src [n]; ip[0] = iterations, ip[1] = n, fp[0] = b,
 * fp[1] = c (ops.def). Eight independent FMA chains per invocation. */
#include "common.glsl"
DECLARE_WG()
#define STEP                                                                             \
    a0 = a0 * b + c; a1 = a1 * b + c; a2 = a2 * b + c; a3 = a3 * b + c;                   \
    a4 = a4 * b + c; a5 = a5 * b + c; a6 = a6 * b + c; a7 = a7 * b + c;
BUF_F(0, d)
BUF_RF(1, s)
void main()
{
    int iters = IP(0);
    float b = FP(0), c = FP(1);
    GRID_LOOP(i, UP(1)) {
        float x = s[OFF(1) + i];
        float a0 = x, a1 = x + 0.125, a2 = x + 0.25, a3 = x + 0.375;
        float a4 = x + 0.5, a5 = x + 0.625, a6 = x + 0.75, a7 = x + 0.875;
        /* a * b + c: the driver fuses it where that is fast (llvmpipe's fma() is slow);
         * unrolled by four to keep the loop overhead out of the measurement */
        int t = 0;
        for (; t + 4 <= iters; t += 4) {
            STEP STEP STEP STEP
        }
        for (; t < iters; ++t) {
            STEP
        }
        precise float sum = ((((((a0 + a1) + a2) + a3) + a4) + a5) + a6) + a7;
        d[OFF(0) + i] = sum;
    }
}
