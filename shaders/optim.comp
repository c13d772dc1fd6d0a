#version 450
#extension GL_GOOGLE_include_directive : require
/* -DSGD:  0 = param, 1 = momentum buffer, 2 = grad, 3 = skip flag. fp[0] lr, fp[1] momentum,
 *         fp[2] wd; ip[0] = first step, ip[1] = n, ip[2] = has buffer, ip[3] = has flag (host).
 * -DADAM: 0 = param, 1 = m, 2 = v, 3 = grad, 4 = skip flag. fp as ops.def; ip[0] = n,
 *         ip[1] = has flag (host).
 * A set skip flag leaves everything unchanged (the trainer's device-side non-finite test).
 * Written in the CPU reference's operation order, without contraction. */
#include "common.glsl"
DECLARE_WG()
#ifdef SGD
BUF_F(0, p)
BUF_F(1, mb)
BUF_RF(2, g)
BUF_RF(3, skip)
void main()
{
    if (IP(3) != 0 && skip[OFF(3)] != 0.0) return;
    float lr = FP(0), mom = FP(1), wd = FP(2);
    bool first = IP(0) != 0, hb = IP(2) != 0;
    GRID_LOOP(i, UP(1)) {
        float pv = p[OFF(0) + i];
        precise float gg = g[OFF(2) + i] + wd * pv;
        precise float b;
        if (!hb || first) b = gg;
        else b = mom * mb[OFF(1) + i] + gg;
        if (hb) mb[OFF(1) + i] = b;
        precise float np = pv - lr * b;
        p[OFF(0) + i] = np;
    }
}
#endif
#ifdef ADAM
BUF_F(0, p)
BUF_F(1, m)
BUF_F(2, v)
BUF_RF(3, g)
BUF_RF(4, skip)
void main()
{
    if (IP(1) != 0 && skip[OFF(4)] != 0.0) return;
    float lr = FP(0), b1 = FP(1), b2 = FP(2), eps = FP(3), wd = FP(4), bc1 = FP(5), bc2 = FP(6), decay = FP(7);
    GRID_LOOP(i, UP(0)) {
        float p0 = p[OFF(0) + i];
        precise float pv = p0 - decay * p0;
        precise float gg = g[OFF(3) + i] + wd * pv;
        precise float mm = b1 * m[OFF(1) + i] + (1.0 - b1) * gg;
        precise float vv = b2 * v[OFF(2) + i] + (1.0 - b2) * gg * gg;
        m[OFF(1) + i] = mm;
        v[OFF(2) + i] = vv;
        precise float den = sqrt(vv) / sqrt(bc2) + eps;
        precise float np = pv - lr / bc1 * mm / den;
        p[OFF(0) + i] = np;
    }
}
#endif
