#version 450
#extension GL_GOOGLE_include_directive : require
/* SOFTMAX along n of [outer, n, inner]: binding 0 = dst, 1 = src.
 * SOFTMAX_BWD (-DBWD): 0 = dx, 1 = y, 2 = dy.
 * ip[0] = 1 log_softmax, ip[1] = outer, ip[2] = n, ip[3] = inner.
 * -DROW: one workgroup per row; -DCOL: one thread per (outer, inner) column. */
#include "common.glsl"
DECLARE_WG()
#include "wg_reduce.glsl"
BUF_F(0, d)
BUF_RF(1, s)
#ifdef BWD
BUF_RF(2, g)
#endif

void main()
{
    bool lg = IP(0) != 0;
    uint outer = UP(1), n = UP(2), inner = UP(3);
    uint rows = outer * inner;
#ifdef ROW
    uint lid = gl_LocalInvocationID.x;
    ROW_LOOP(r, rows) {
        uint o = r / inner, i = r % inner;
        uint base = o * n * inner + i;
#ifndef BWD
        float m = -SEG_INF;
        for (uint k = lid; k < n; k += WG) m = max(m, s[OFF(1) + base + k * inner]);
        m = wg_max(m);
        seg_kahan acc = seg_kahan(0.0, 0.0);
        for (uint k = lid; k < n; k += WG) kahan_add(acc, seg_exp(s[OFF(1) + base + k * inner] - m));
        float sum = wg_sum(acc.s);
        float ls = seg_log(sum), inv = 1.0 / sum;
        for (uint k = lid; k < n; k += WG) {
            float x = s[OFF(1) + base + k * inner] - m;
            d[OFF(0) + base + k * inner] = lg ? x - ls : seg_exp(x) * inv;
        }
#else
        seg_kahan acc = seg_kahan(0.0, 0.0);
        for (uint k = lid; k < n; k += WG) {
            float dy = g[OFF(2) + base + k * inner];
            kahan_add(acc, lg ? dy : dy * s[OFF(1) + base + k * inner]);
        }
        float sum = wg_sum(acc.s);
        for (uint k = lid; k < n; k += WG) {
            float y = s[OFF(1) + base + k * inner], dy = g[OFF(2) + base + k * inner];
            d[OFF(0) + base + k * inner] = lg ? dy - seg_exp(y) * sum : y * (dy - sum);
        }
#endif
    }
#else /* COL */
    GRID_LOOP(r, rows) {
        uint o = r / inner, i = r % inner;
        uint base = o * n * inner + i;
#ifndef BWD
        float m = -SEG_INF;
        for (uint k = 0u; k < n; ++k) m = max(m, s[OFF(1) + base + k * inner]);
        seg_kahan acc = seg_kahan(0.0, 0.0);
        for (uint k = 0u; k < n; ++k) kahan_add(acc, seg_exp(s[OFF(1) + base + k * inner] - m));
        float ls = seg_log(acc.s), inv = 1.0 / acc.s;
        for (uint k = 0u; k < n; ++k) {
            float x = s[OFF(1) + base + k * inner] - m;
            d[OFF(0) + base + k * inner] = lg ? x - ls : seg_exp(x) * inv;
        }
#else
        seg_kahan acc = seg_kahan(0.0, 0.0);
        for (uint k = 0u; k < n; ++k) {
            float dy = g[OFF(2) + base + k * inner];
            kahan_add(acc, lg ? dy : dy * s[OFF(1) + base + k * inner]);
        }
        float sum = acc.s;
        for (uint k = 0u; k < n; ++k) {
            float y = s[OFF(1) + base + k * inner], dy = g[OFF(2) + base + k * inner];
            d[OFF(0) + base + k * inner] = lg ? dy - seg_exp(y) * sum : y * (dy - sum);
        }
#endif
    }
#endif
}
