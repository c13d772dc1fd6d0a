#version 450
#extension GL_GOOGLE_include_directive : require
/* SORT: bitonic sort of each row of src [rows, n] into 0 = values [rows, n] and
 * 1 = indices I32 [rows, n]; 2 = src. Keys are (value, original index), so ties order by
 * the smaller index. Rows are padded (virtually) to P = a power of two with keys greater
 * than every real key; the all-ascending ("flip") network never moves them, so only the
 * n real slots are ever stored.
 * ip: 0 rows, 1 n, 2 descending, 3 P, 4 stage size k, 5 step distance d, 6 mode (host).
 * -DLOCAL: one workgroup per chunk of CL = min(P, 2*WG) keys in shared memory.
 *          mode 0: load from src, run all stages k <= CL.  mode 1: load from dst, run the
 *          steps d = CL/2 .. 1 of stage k.
 * -DGLOBAL: one compare-exchange per thread for step (k, d), d >= CL; mode 1 = flip step. */
#include "common.glsl"
DECLARE_WG()
BUF_F(0, vals)
BUF_I(1, inds)
BUF_RF(2, src)

bool key_less(float av, int ai, float bv, int bi, int n, bool desc)
{
    if (ai >= n || bi >= n) return ai < bi; /* padding sorts last, in index order */
    if (av == bv) return ai < bi;
    return desc ? av > bv : av < bv;
}

/* positions (i, j), i < j, of comparator t of step (k, d) */
void pair_of(uint t, uint k, uint d, bool flip, out uint i, out uint j)
{
    i = (t / d) * 2u * d + (t % d);
    if (flip) j = (i / k) * k + (k - 1u - (i % k));
    else j = i + d;
}

#ifdef LOCAL
shared float sv[2u * WG];
shared int si[2u * WG];
void main()
{
    uint rows = UP(0), n = UP(1), P = UP(3), kst = UP(4);
    bool desc = IP(2) != 0;
    uint mode = UP(6);
    uint CL = min(P, 2u * WG);
    uint chunks = P / CL;
    uint lid = gl_LocalInvocationID.x;
    int ni = int(n);
    ROW_LOOP(w, rows * chunks) {
        uint row = w / chunks, c0 = (w % chunks) * CL;
        uint rb = row * n;
        for (uint q = lid; q < CL; q += WG) {
            uint pos = c0 + q;
            if (pos < n) {
                if (mode == 0u) { sv[q] = src[OFF(2) + rb + pos]; si[q] = int(pos); }
                else { sv[q] = vals[OFF(0) + rb + pos]; si[q] = inds[OFF(1) + rb + pos]; }
            } else {
                sv[q] = 0.0; si[q] = int(pos);
            }
        }
        barrier();
        uint k_first = mode == 0u ? 2u : kst;
        uint k_last = mode == 0u ? CL : kst;
        for (uint k = k_first; k <= k_last; k <<= 1) {
            uint d0 = mode == 0u ? k / 2u : CL / 2u;
            for (uint d = d0; d > 0u; d >>= 1) {
                bool flip = mode == 0u && d == k / 2u;
                for (uint t = lid; t < CL / 2u; t += WG) {
                    uint i, j;
                    pair_of(t, k, d, flip, i, j);
                    float jv = sv[j], iv = sv[i];
                    int jx = si[j], ix = si[i];
                    if (key_less(jv, jx, iv, ix, ni, desc)) {
                        sv[i] = jv; si[i] = jx;
                        sv[j] = iv; si[j] = ix;
                    }
                }
                barrier();
            }
        }
        for (uint q = lid; q < CL; q += WG) {
            uint pos = c0 + q;
            if (pos < n) {
                vals[OFF(0) + rb + pos] = sv[q];
                inds[OFF(1) + rb + pos] = si[q];
            }
        }
        barrier();
    }
}
#endif

#ifdef GLOBAL
void main()
{
    uint rows = UP(0), n = UP(1), P = UP(3), k = UP(4), d = UP(5);
    bool desc = IP(2) != 0, flip = IP(6) != 0;
    uint half_ = P / 2u;
    int ni = int(n);
    GRID_LOOP(t, rows * half_) {
        uint row = t / half_;
        uint i, j;
        pair_of(t % half_, k, d, flip, i, j);
        if (j >= n) continue;
        uint b = row * n;
        float iv = vals[OFF(0) + b + i], jv = vals[OFF(0) + b + j];
        int ix = inds[OFF(1) + b + i], jx = inds[OFF(1) + b + j];
        if (key_less(jv, jx, iv, ix, ni, desc)) {
            vals[OFF(0) + b + i] = jv; inds[OFF(1) + b + i] = jx;
            vals[OFF(0) + b + j] = iv; inds[OFF(1) + b + j] = ix;
        }
    }
}
#endif
