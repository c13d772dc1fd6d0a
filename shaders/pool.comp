#version 450
#extension GL_GOOGLE_include_directive : require
/* MAXPOOL2D: 0 = y [N, C, OH, OW], 1 = idx I32, 2 = x [N, C, H, W]; one thread per output.
 * MAXPOOL2D_BWD (-DBWD): 0 = dx [N, C, H, W], 1 = dy, 2 = idx; one thread per input
 * element, summing dy over the windows whose index names it (gather, deterministic).
 * ip as ops.def (0 N, 1 C, 2 H, 3 W, 4 KH, 5 KW, 6 SH, 7 SW, 8 PH, 9 PW, 10 OH, 11 OW);
 * ip[12] = number of threads' elements (host). */
#include "common.glsl"
DECLARE_WG()
#ifndef BWD
BUF_F(0, y)
BUF_I(1, yi)
BUF_RF(2, x)
void main()
{
    int H = IP(2), W = IP(3), KH = IP(4), KW = IP(5), SH = IP(6), SW = IP(7), PH = IP(8), PW = IP(9);
    uint OH = UP(10), OW = UP(11);
    GRID_LOOP(i, UP(12)) {
        int ow = int(i % OW), oh = int((i / OW) % OH);
        uint plane = i / (OW * OH);
        uint xb = OFF(2) + plane * uint(H * W);
        float best = -SEG_INF;
        int bi = -1;
        for (int kh = 0; kh < KH; ++kh) {
            int h = oh * SH - PH + kh;
            if (h < 0 || h >= H) continue;
            for (int kw = 0; kw < KW; ++kw) {
                int w = ow * SW - PW + kw;
                if (w < 0 || w >= W) continue;
                float v = x[xb + uint(h * W + w)];
                if (bi < 0 || v > best || (isnan(v) && !isnan(best))) { best = v; bi = h * W + w; }
            }
        }
        y[OFF(0) + i] = best;
        yi[OFF(1) + i] = bi;
    }
}
#else
BUF_F(0, dx)
BUF_RF(1, dy)
BUF_RI(2, yi)
void main()
{
    int H = IP(2), W = IP(3), KH = IP(4), KW = IP(5), SH = IP(6), SW = IP(7), PH = IP(8), PW = IP(9);
    int OH = IP(10), OW = IP(11);
    GRID_LOOP(i, UP(12)) {
        int w = int(i % uint(W)), h = int((i / uint(W)) % uint(H));
        uint plane = i / uint(W * H);
        uint ob = plane * uint(OH * OW);
        int me = h * W + w;
        /* windows covering h: oh*SH - PH <= h <= oh*SH - PH + KH - 1 */
        int lo_h = max(0, (h + PH - KH + SH) / SH), hi_h = min(OH - 1, (h + PH) / SH);
        int lo_w = max(0, (w + PW - KW + SW) / SW), hi_w = min(OW - 1, (w + PW) / SW);
        if (h + PH - KH + 1 <= 0) lo_h = 0;
        if (w + PW - KW + 1 <= 0) lo_w = 0;
        precise float acc = 0.0;
        for (int oh = lo_h; oh <= hi_h; ++oh)
            for (int ow = lo_w; ow <= hi_w; ++ow) {
                uint o = ob + uint(oh * OW + ow);
                if (yi[OFF(2) + o] == me) acc += dy[OFF(1) + o];
            }
        dx[OFF(0) + i] = acc;
    }
}
#endif
