#version 450
#extension GL_GOOGLE_include_directive : require
/* REDUCE / ARGREDUCE (-DARG) over n of src [outer, n, inner] -> dst [outer, inner].
 * binding 0 = dst, 1 = src. ip[0] = fn (REDUCE: SUM MEAN MAX MIN; ARG: 0 argmax, 1 argmin),
 * ip[1] = outer, ip[2] = n, ip[3] = inner.
 * -DCOL: one thread per output, sequential along n (coalesced when inner > 1).
 * -DROW: one workgroup per (output, chunk of n), shared-memory tree. Host parameters:
 *   ip[4] = G chunks per row (1: whole rows), ip[5] = chunk length; the result of chunk g of
 *   row r goes to dst[r * G + g] (a two-pass reduction runs this twice);
 *   ip[6] bit 0 (ARG): candidate indices come from binding 2 (same layout as src) instead
 *   of the position along n; bit 1 (ARG): also write the best value to binding 3;
 *   ip[7] = the count MEAN divides by. */
#include "common.glsl"
DECLARE_WG()
#ifdef ARG
BUF_I(0, d)
#else
BUF_F(0, d)
#endif
BUF_RF(1, s)
#ifdef ARG
BUF_RI(2, idx_in)
BUF_F(3, val_out)
#endif

/* is (v, k) better than (bv, bk) for fn? */
bool better(int fn, float v, int k, float bv, int bk)
{
#ifdef ARG
    bool mx = fn == 0;
#else
    bool mx = fn == 2;
#endif
    if (mx ? v > bv : v < bv) return true;
    return v == bv && k < bk;
}

#ifdef ROW
shared float sv[WG];
#ifdef ARG
shared int sk[WG];
#endif
#endif

void main()
{
    int fn = IP(0);
    uint outer = UP(1), n = UP(2), inner = UP(3);
    uint rows = outer * inner;
#ifndef ARG
    bool is_sum = fn == 0 || fn == 1;
#endif
#ifdef ROW
    uint G = max(UP(4), 1u), CH = G > 1u ? UP(5) : n;
    uint lid = gl_LocalInvocationID.x;
    ROW_LOOP(w, rows * G) {
        uint r = w / G, g = w % G;
        uint o = r / inner, i = r % inner;
        uint base = o * n * inner + i;
        uint k0 = g * CH, k1 = min(n, k0 + CH);
#ifdef ARG
        bool idx_from = (IP(6) & 1) != 0;
        float bv = 0.0; int bk = 0x7FFFFFFF;
        for (uint k = k0 + lid; k < k1; k += WG) {
            float v = s[OFF(1) + base + k * inner];
            int kk = idx_from ? idx_in[OFF(2) + base + k * inner] : int(k);
            if (bk == 0x7FFFFFFF || better(fn, v, kk, bv, bk)) { bv = v; bk = kk; }
        }
        sv[lid] = bv; sk[lid] = bk;
        barrier();
        for (uint h = WG / 2u; h > 0u; h >>= 1) {
            if (lid < h) {
                float v = sv[lid + h]; int k = sk[lid + h];
                if (k != 0x7FFFFFFF && (sk[lid] == 0x7FFFFFFF || better(fn, v, k, sv[lid], sk[lid]))) {
                    sv[lid] = v; sk[lid] = k;
                }
            }
            barrier();
        }
        if (lid == 0u) {
            d[OFF(0) + w] = sk[0] == 0x7FFFFFFF ? 0 : sk[0];
            if ((IP(6) & 2) != 0) val_out[OFF(3) + w] = sv[0];
        }
        barrier();
#else
        float acc;
        if (is_sum) {
            precise float sum = 0.0, comp = 0.0;
            for (uint k = k0 + lid; k < k1; k += WG) {
                precise float y = s[OFF(1) + base + k * inner] - comp;
                precise float t = sum + y;
                comp = (t - sum) - y;
                sum = t;
            }
            acc = sum;
        } else {
            acc = fn == 2 ? -SEG_INF : SEG_INF;
            for (uint k = k0 + lid; k < k1; k += WG) {
                float v = s[OFF(1) + base + k * inner];
                if (better(fn, v, 0, acc, 1)) acc = v;
            }
        }
        sv[lid] = acc;
        barrier();
        for (uint h = WG / 2u; h > 0u; h >>= 1) {
            if (lid < h) {
                float v = sv[lid + h];
                if (is_sum) sv[lid] += v;
                else if (better(fn, v, 0, sv[lid], 1)) sv[lid] = v;
            }
            barrier();
        }
        if (lid == 0u) d[OFF(0) + w] = fn == 1 ? sv[0] / float(UP(7)) : sv[0];
        barrier();
#endif
    }
#else /* COL */
    GRID_LOOP(r, rows) {
        uint o = r / inner, i = r % inner;
        uint base = OFF(1) + o * n * inner + i;
#ifdef ARG
        float bv = s[base]; int bk = 0;
        for (uint k = 1u; k < n; ++k) {
            float v = s[base + k * inner];
            if (better(fn, v, int(k), bv, bk)) { bv = v; bk = int(k); }
        }
        d[OFF(0) + r] = n == 0u ? 0 : bk;
#else
        if (is_sum) {
            precise float sum = 0.0, comp = 0.0;
            for (uint k = 0u; k < n; ++k) {
                precise float y = s[base + k * inner] - comp;
                precise float t = sum + y;
                comp = (t - sum) - y;
                sum = t;
            }
            d[OFF(0) + r] = fn == 1 ? sum / float(n) : sum;
        } else {
            float acc = fn == 2 ? -SEG_INF : SEG_INF;
            for (uint k = 0u; k < n; ++k) {
                float v = s[base + k * inner];
                if (better(fn, v, 0, acc, 1)) acc = v;
            }
            d[OFF(0) + r] = acc;
        }
#endif
    }
#endif
}
