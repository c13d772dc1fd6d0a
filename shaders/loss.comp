#version 450
#extension GL_GOOGLE_include_directive : require
/* CROSS_ENTROPY: binding 0 = dst [2, N*P], 1 = logits [N, C, P], 2 = labels I32 [N, P],
 * 3 = weights [C] (when ip[4] = 1).
 * CROSS_ENTROPY_BWD (-DBWD): 0 = dlogits [N, C, P], 1..3 as above, 4 = scale [1].
 * ip[0] = N, ip[1] = C, ip[2] = P, ip[3] = ignore index, ip[4] = has weights (host).
 * One thread per pixel, looping over the classes (coalesced along P). */
#include "common.glsl"
DECLARE_WG()
BUF_F(0, d)
BUF_RF(1, x)
BUF_RI(2, lab)
BUF_RF(3, w)
#ifdef BWD
BUF_RF(4, sc)
#endif

void main()
{
    uint N = UP(0), C = UP(1), P = UP(2);
    int ignore = IP(3);
    bool has_w = IP(4) != 0;
    uint NP = N * P;
    GRID_LOOP(t, NP) {
        uint n = t / P, p = t % P;
        uint base = OFF(1) + n * C * P + p;
        int y = lab[OFF(2) + t];
        bool valid = y != ignore && y >= 0 && uint(y) < C;
        float wy = valid ? (has_w ? w[OFF(3) + uint(y)] : 1.0) : 0.0;
#ifndef BWD
        if (!valid) {
            d[OFF(0) + t] = 0.0;
            d[OFF(0) + NP + t] = 0.0;
            continue;
        }
        float m = -SEG_INF;
        for (uint c = 0u; c < C; ++c) m = max(m, x[base + c * P]);
        precise float sum = 0.0;
        for (uint c = 0u; c < C; ++c) sum += seg_exp(x[base + c * P] - m);
        float nll = -((x[base + uint(y) * P] - m) - seg_log(sum));
        d[OFF(0) + t] = wy * nll;
        d[OFF(0) + NP + t] = wy;
#else
        uint ob = OFF(0) + n * C * P + p;
        if (!valid) {
            for (uint c = 0u; c < C; ++c) d[ob + c * P] = 0.0;
            continue;
        }
        float f = sc[OFF(4)] * wy;
        float m = -SEG_INF;
        for (uint c = 0u; c < C; ++c) m = max(m, x[base + c * P]);
        precise float sum = 0.0;
        for (uint c = 0u; c < C; ++c) sum += seg_exp(x[base + c * P] - m);
        float inv = 1.0 / sum;
        for (uint c = 0u; c < C; ++c) {
            float sm = seg_exp(x[base + c * P] - m) * inv;
            d[ob + c * P] = f * (sm - (c == uint(y) ? 1.0 : 0.0));
        }
#endif
    }
}
