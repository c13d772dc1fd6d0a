#version 450
#extension GL_GOOGLE_include_directive : require
/* Batch normalization over x [N, C, P]; ip[0] = N, ip[1] = C, ip[2] = P, fp[0] = eps.
 * -DSTATS: one workgroup per channel: 0 = mean [C], 1 = var [C] (biased), 2 = x.
 * -DFWD:   one thread per element: 0 = y, 1 = x, 2 = mean, 3 = var, 4 = gamma, 5 = beta;
 *          ip[3] = has gamma, ip[4] = has beta, ip[5] = numel (host).
 * -DBWD:   one workgroup per channel (sums, then dx of that channel): 0 = dx, 1 = dgamma,
 *          2 = dbeta, 3 = x, 4 = dy, 5 = mean, 6 = var, 7 = gamma; ip[3] = batch stats,
 *          ip[4..7] = has dx, dgamma, dbeta, gamma (host). */
#include "common.glsl"
DECLARE_WG()
#if defined(STATS) || defined(BWD)
#include "wg_reduce.glsl"
#endif

#ifdef STATS
BUF_F(0, mean_o)
BUF_F(1, var_o)
BUF_RF(2, x)
void main()
{
    uint N = UP(0), C = UP(1), P = UP(2), M = N * P;
    uint lid = gl_LocalInvocationID.x;
    ROW_LOOP(c, C) {
        seg_kahan acc = seg_kahan(0.0, 0.0);
        for (uint j = lid; j < M; j += WG) kahan_add(acc, x[OFF(2) + ((j / P) * C + c) * P + j % P]);
        float mean = wg_sum(acc.s) / float(M);
        seg_kahan acc2 = seg_kahan(0.0, 0.0);
        for (uint j = lid; j < M; j += WG) {
            float v = x[OFF(2) + ((j / P) * C + c) * P + j % P] - mean;
            kahan_add(acc2, v * v);
        }
        float var = wg_sum(acc2.s) / float(M);
        if (lid == 0u) {
            mean_o[OFF(0) + c] = mean;
            var_o[OFF(1) + c] = var;
        }
    }
}
#endif

#ifdef FWD
BUF_F(0, y)
BUF_RF(1, x)
BUF_RF(2, mean)
BUF_RF(3, var)
BUF_RF(4, gamma)
BUF_RF(5, beta)
void main()
{
    uint C = UP(1), P = UP(2);
    bool hg = IP(3) != 0, hb = IP(4) != 0;
    float eps = FP(0);
    GRID_LOOP(i, UP(5)) {
        uint c = (i / P) % C;
        float v = (x[OFF(1) + i] - mean[OFF(2) + c]) / sqrt(var[OFF(3) + c] + eps);
        if (hg) v = v * gamma[OFF(4) + c];
        if (hb) v = v + beta[OFF(5) + c];
        y[OFF(0) + i] = v;
    }
}
#endif

#ifdef BWD
BUF_F(0, dx)
BUF_F(1, dgamma)
BUF_F(2, dbeta)
BUF_RF(3, x)
BUF_RF(4, dy)
BUF_RF(5, mean)
BUF_RF(6, var)
BUF_RF(7, gamma)
void main()
{
    uint N = UP(0), C = UP(1), P = UP(2), M = N * P;
    bool batch = IP(3) != 0, hdx = IP(4) != 0, hdg = IP(5) != 0, hdb = IP(6) != 0, hg = IP(7) != 0;
    float eps = FP(0);
    uint lid = gl_LocalInvocationID.x;
    ROW_LOOP(c, C) {
        float mu = mean[OFF(5) + c];
        float invstd = 1.0 / sqrt(var[OFF(6) + c] + eps);
        seg_kahan sb = seg_kahan(0.0, 0.0), sg = seg_kahan(0.0, 0.0);
        for (uint j = lid; j < M; j += WG) {
            uint e = ((j / P) * C + c) * P + j % P;
            float g = dy[OFF(4) + e];
            kahan_add(sb, g);
            kahan_add(sg, g * ((x[OFF(3) + e] - mu) * invstd));
        }
        float db = wg_sum(sb.s);
        float dg = wg_sum(sg.s);
        if (lid == 0u) {
            if (hdb) dbeta[OFF(2) + c] = db;
            if (hdg) dgamma[OFF(1) + c] = dg;
        }
        if (hdx) {
            float gm = hg ? gamma[OFF(7) + c] : 1.0;
            float k = gm * invstd;
            float mb = db / float(M), mg = dg / float(M);
            for (uint j = lid; j < M; j += WG) {
                uint e = ((j / P) * C + c) * P + j % P;
                float g = dy[OFF(4) + e];
                if (batch) {
                    float xh = (x[OFF(3) + e] - mu) * invstd;
                    dx[OFF(0) + e] = k * (g - mb - xh * mg);
                } else {
                    dx[OFF(0) + e] = k * g;
                }
            }
        }
    }
}
#endif
