#version 450
#extension GL_GOOGLE_include_directive : require
/* RESIZE_BILINEAR: 0 = y [NC, OH, OW], 1 = x [NC, H, W]; one thread per output.
 * -DBWD: 0 = dx [NC, H, W], 1 = dy [NC, OH, OW]; one thread per input element, summing
 *        the outputs whose interpolation reads it (gather formulation, deterministic).
 * -DNEAREST (4-byte): 0 = y, 1 = x.
 * ip: 0 NC, 1 H, 2 W, 3 OH, 4 OW, 5 align_corners; ip[6] = number of destination
 * elements (host). Coordinates follow ops.def exactly (float ratios, no contraction). */
#include "common.glsl"
DECLARE_WG()
#ifdef NEAREST
BUF_U(0, d)
BUF_RU(1, s)
#else
BUF_F(0, d)
BUF_RF(1, s)
#endif

#ifndef NEAREST
/* source coordinate of output o along an axis of in -> out */
void src_coord(uint o, uint in_, uint out_, bool ac, out uint i0, out uint i1, out float l0, out float l1)
{
    precise float sc;
    if (ac) {
        float r = out_ > 1u ? float(in_ - 1u) / float(out_ - 1u) : 0.0;
        sc = float(o) * r;
    } else {
        float r = float(in_) / float(out_);
        precise float t = r * (float(o) + 0.5);
        sc = max(0.0, t - 0.5);
    }
    uint a = min(uint(int(sc)), in_ - 1u);
    i0 = a;
    i1 = a < in_ - 1u ? a + 1u : a;
    precise float f = sc - float(a);
    l1 = f;
    l0 = 1.0 - f;
}

/* outputs along an axis whose source coordinate may touch input h: [lo, hi] */
void out_range(uint h, uint in_, uint out_, bool ac, out uint lo, out uint hi)
{
    if (in_ == 1u) { lo = 0u; hi = out_ - 1u; return; }
    float r = ac ? float(out_ - 1u) / float(in_ - 1u) : float(out_) / float(in_);
    float a, b;
    if (ac) { a = (float(h) - 1.0) * r; b = (float(h) + 1.0) * r; }
    else { a = (float(h) - 0.5) * r - 0.5; b = (float(h) + 1.5) * r - 0.5; }
    int l = int(floor(a)) - 2, u = int(ceil(b)) + 2;
    lo = uint(max(l, 0));
    hi = uint(clamp(u, 0, int(out_) - 1));
}
#endif

void main()
{
    uint H = UP(1), W = UP(2), OH = UP(3), OW = UP(4);
#ifdef NEAREST
    float ry = float(H) / float(OH), rx = float(W) / float(OW);
    GRID_LOOP(i, UP(6)) {
        uint ow = i % OW, oh = (i / OW) % OH, p = i / (OW * OH);
        precise float fy = float(oh) * ry;
        precise float fx = float(ow) * rx;
        uint h = min(uint(int(floor(fy))), H - 1u), w = min(uint(int(floor(fx))), W - 1u);
        d[OFF(0) + i] = s[OFF(1) + (p * H + h) * W + w];
    }
#else
    bool ac = IP(5) != 0;
#ifndef BWD
    GRID_LOOP(i, UP(6)) {
        uint ow = i % OW, oh = (i / OW) % OH, p = i / (OW * OH);
        uint h0, h1, w0, w1;
        float a0, a1, b0, b1;
        src_coord(oh, H, OH, ac, h0, h1, a0, a1);
        src_coord(ow, W, OW, ac, w0, w1, b0, b1);
        uint base = OFF(1) + p * H * W;
        precise float v = a0 * (b0 * s[base + h0 * W + w0] + b1 * s[base + h0 * W + w1]) +
                          a1 * (b0 * s[base + h1 * W + w0] + b1 * s[base + h1 * W + w1]);
        d[OFF(0) + i] = v;
    }
#else
    GRID_LOOP(i, UP(6)) {
        uint w = i % W, h = (i / W) % H, p = i / (W * H);
        uint lo_h, hi_h, lo_w, hi_w;
        out_range(h, H, OH, ac, lo_h, hi_h);
        out_range(w, W, OW, ac, lo_w, hi_w);
        uint base = OFF(1) + p * OH * OW;
        precise float acc = 0.0;
        for (uint oh = lo_h; oh <= hi_h; ++oh) {
            uint h0, h1;
            float a0, a1;
            src_coord(oh, H, OH, ac, h0, h1, a0, a1);
            float wy = (h0 == h ? a0 : 0.0) + (h1 == h ? a1 : 0.0);
            if (h0 != h && h1 != h) continue;
            precise float row = 0.0;
            for (uint ow = lo_w; ow <= hi_w; ++ow) {
                uint w0, w1;
                float b0, b1;
                src_coord(ow, W, OW, ac, w0, w1, b0, b1);
                if (w0 != w && w1 != w) continue;
                float wx = (w0 == w ? b0 : 0.0) + (w1 == w ? b1 : 0.0);
                row += wx * s[base + oh * OW + ow];
            }
            acc += wy * row;
        }
        d[OFF(0) + i] = acc;
    }
#endif
#endif
}
