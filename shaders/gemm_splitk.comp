#version 450
#extension GL_GOOGLE_include_directive : require
/* The sum of a split-K MATMUL (shaders/gemm.comp with ip[11] = S slices):
 * C_b[e] = alpha * sum_s W[(s * batch + b) * MN + e] + beta * C_b[e].
 * binding 0 = C, 1 = W (the slices' partial products). ip[0] batch, ip[1] MN = M * N,
 * ip[2] S, ip[3] the batch stride of C; fp[0] alpha, fp[1] beta (0: C is not read). */
#include "common.glsl"

DECLARE_WG()
BUF_F(0, Cm)
BUF_RF(1, Wm)

void main()
{
    uint batch = UP(0), MN = UP(1), S = UP(2), sc = UP(3);
    float alpha = FP(0), beta = FP(1);
    GRID_LOOP(i, batch * MN) {
        uint b = i / MN, e = i % MN;
        float sum = 0.0;
        for (uint s = 0u; s < S; ++s) sum += Wm[OFF(1) + (s * batch + b) * MN + e];
        uint ci = OFF(0) + b * sc + e;
        float r = alpha * sum;
        if (beta != 0.0) r += beta * Cm[ci];
        Cm[ci] = r;
    }
}
