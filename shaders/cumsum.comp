#version 450
#extension GL_GOOGLE_include_directive : require
/* CUMSUM: inclusive prefix sum along n of src [outer, n, inner]: 0 = dst, 1 = src,
 * 2 = chunk totals (host scratch). ip[0] = 1 from the end, ip[1] = outer, ip[2] = n,
 * ip[3] = inner.
 * -DCOL: one thread per column, sequential.
 * -DROW: one workgroup per (row, chunk of the scan order), scanning WG elements at a time
 *   in shared memory (Hillis-Steele) with a running carry. Host parameters: ip[4] = G
 *   chunks per row, ip[5] = chunk length, ip[6] = mode:
 *   0: scan; when G > 1 a chunk starts from the inclusive scan of the previous chunks'
 *      totals, read from binding 2 at [row * G + g - 1];
 *   1: only write each chunk's total to binding 2 at [row * G + g].
 * Long rows thus take three passes: totals, a scan of the totals (mode 0 on them), scan. */
#include "common.glsl"
DECLARE_WG()
BUF_F(0, d)
BUF_RF(1, s)
BUF_F(2, part)

#ifdef ROW
shared float buf[2u * WG];
#endif

void main()
{
    bool rev = IP(0) != 0;
    uint outer = UP(1), n = UP(2), inner = UP(3);
    uint rows = outer * inner;
#ifdef ROW
    uint G = max(UP(4), 1u), CH = G > 1u ? UP(5) : n;
    uint mode = UP(6);
    uint lid = gl_LocalInvocationID.x;
    ROW_LOOP(w, rows * G) {
        uint r = w / G, g = w % G;
        uint o = r / inner, i = r % inner;
        uint base = o * n * inner + i;
        uint p0 = g * CH, p1 = min(n, p0 + CH);
        float carry = 0.0;
        if (mode == 0u && G > 1u && g > 0u) carry = part[OFF(2) + r * G + g - 1u];
        for (uint c0 = p0; c0 < p1; c0 += WG) {
            uint pos = c0 + lid;
            uint k = rev ? n - 1u - pos : pos;
            float v = pos < p1 ? s[OFF(1) + base + k * inner] : 0.0;
            uint src = 0u;
            buf[lid] = v;
            barrier();
            for (uint off = 1u; off < WG; off <<= 1) {
                float t = buf[src * WG + lid];
                if (lid >= off) t += buf[src * WG + lid - off];
                buf[(1u - src) * WG + lid] = t;
                src = 1u - src;
                barrier();
            }
            float incl = buf[src * WG + lid];
            float total = buf[src * WG + WG - 1u];
            if (mode == 0u && pos < p1) d[OFF(0) + base + k * inner] = carry + incl;
            carry += total;
            barrier();
        }
        if (mode == 1u && lid == 0u) part[OFF(2) + w] = carry;
    }
#else
    GRID_LOOP(r, rows) {
        uint o = r / inner, i = r % inner;
        uint base = o * n * inner + i;
        precise float acc = 0.0;
        for (uint q = 0u; q < n; ++q) {
            uint k = rev ? n - 1u - q : q;
            acc += s[OFF(1) + base + k * inner];
            d[OFF(0) + base + k * inner] = acc;
        }
    }
#endif
}
