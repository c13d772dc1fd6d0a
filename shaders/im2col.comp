#version 450
#extension GL_GOOGLE_include_directive : require
/* IM2COL: binding 0 = col [N, C*KH*KW, OH*OW], 1 = x [N, C, H, W].
 * COL2IM (-DCOL2IM): 0 = dx [N, C, H, W], 1 = col; gather formulation (one thread per
 * image element, summing the column entries that read it, in a fixed order).
 * ip as ops.def (0 N, 1 C, 2 H, 3 W, 4 KH, 5 KW, 6 SH, 7 SW, 8 PH, 9 PW, 10 DH, 11 DW,
 * 12 OH, 13 OW); ip[14] = number of destination elements (host). */
#include "common.glsl"
DECLARE_WG()
BUF_F(0, d)
BUF_RF(1, s)
void main()
{
    uint C = UP(1), H = UP(2), W = UP(3), KH = UP(4), KW = UP(5);
    int SH = IP(6), SW = IP(7), PH = IP(8), PW = IP(9), DH = IP(10), DW = IP(11);
    uint OH = UP(12), OW = UP(13);
    uint P = OH * OW, R = C * KH * KW;
#ifndef COL2IM
    GRID_LOOP(i, UP(14)) {
        uint p = i % P, t = i / P;
        uint row = t % R, n = t / R;
        uint c = row / (KH * KW), kh = (row / KW) % KH, kw = row % KW;
        int oh = int(p / OW), ow = int(p % OW);
        int h = oh * SH - PH + int(kh) * DH, w = ow * SW - PW + int(kw) * DW;
        float v = 0.0;
        if (h >= 0 && h < int(H) && w >= 0 && w < int(W))
            v = s[OFF(1) + ((n * C + c) * H + uint(h)) * W + uint(w)];
        d[OFF(0) + i] = v;
    }
#else
    GRID_LOOP(i, UP(14)) {
        int w = int(i % W);
        uint t = i / W;
        int h = int(t % H);
        t /= H;
        uint c = t % C, n = t / C;
        precise float acc = 0.0;
        for (uint kh = 0u; kh < KH; ++kh) {
            int hh = h + PH - int(kh) * DH;
            if (hh < 0 || hh % SH != 0) continue;
            int oh = hh / SH;
            if (oh >= int(OH)) continue;
            for (uint kw = 0u; kw < KW; ++kw) {
                int ww = w + PW - int(kw) * DW;
                if (ww < 0 || ww % SW != 0) continue;
                int ow = ww / SW;
                if (ow >= int(OW)) continue;
                uint row = (c * KH + kh) * KW + kw;
                acc += s[OFF(1) + (n * R + row) * P + uint(oh) * OW + uint(ow)];
            }
        }
        d[OFF(0) + i] = acc;
    }
#endif
}
