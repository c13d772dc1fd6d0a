#version 450
#extension GL_GOOGLE_include_directive : require
/* Index ops, one thread per destination element (grid-stride).
 * -DONE_HOT:  0 = dst F32 [N, C, P], 1 = labels I32 [N, P]; ip 0 N, 1 C, 2 P, 3 numel (host).
 * -DGATHER:   0 = dst [outer, m, inner], 1 = src [outer, n, inner], 2 = idx; ip 0 outer,
 *             1 n, 2 m, 3 inner, 5 numel (host).
 * -DSCATTER:  0 = dst [outer, n, inner], 1 = src [outer, m, inner], 2 = idx; ip as GATHER;
 *             each dst element loops over m (gather formulation, no atomics); host:
 *             ip[6], ip[7] = the range of j summed, ip[8] = 1 adds to dst (chunks of m).
 * -DSCATTER_UNIQUE: one thread per source element, direct writes (dst zero-filled before).
 * -DSLICE / -DSLICE_ASSIGN: 0 = dst, 1 = src; ip 0 outer, 1 n, 2 inner, 3 start, 4 len,
 *             5 = outer*len*inner (host). */
#include "common.glsl"
DECLARE_WG()

#if defined(ONE_HOT)
BUF_F(0, d)
BUF_RI(1, lab)
void main()
{
    uint C = UP(1), P = UP(2);
    GRID_LOOP(i, UP(3)) {
        uint p = i % P, c = (i / P) % C, n = i / (P * C);
        d[OFF(0) + i] = lab[OFF(1) + n * P + p] == int(c) ? 1.0 : 0.0;
    }
}
#elif defined(GATHER)
BUF_U(0, d)
BUF_RU(1, s)
BUF_RI(2, idx)
void main()
{
    uint n = UP(1), m = UP(2), inner = UP(3);
    GRID_LOOP(i, UP(5)) {
        uint ii = i % inner, o = i / (m * inner);
        int k = idx[OFF(2) + i];
        d[OFF(0) + i] = (k >= 0 && uint(k) < n) ? s[OFF(1) + (o * n + uint(k)) * inner + ii] : 0u;
    }
}
#elif defined(SCATTER)
BUF_F(0, d)
BUF_RF(1, s)
BUF_RI(2, idx)
void main()
{
    uint n = UP(1), m = UP(2), inner = UP(3), outer = UP(0);
    GRID_LOOP(i, outer * n * inner) {
        uint ii = i % inner, k = (i / inner) % n, o = i / (n * inner);
        uint b = o * m * inner + ii;
        precise float acc = IP(8) != 0 ? d[OFF(0) + i] : 0.0;
        uint j1 = min(m, UP(7));
        for (uint j = UP(6); j < j1; ++j)
            if (idx[OFF(2) + b + j * inner] == int(k)) acc += s[OFF(1) + b + j * inner];
        d[OFF(0) + i] = acc;
    }
}
#elif defined(SCATTER_UNIQUE)
BUF_F(0, d)
BUF_RF(1, s)
BUF_RI(2, idx)
void main()
{
    uint n = UP(1), m = UP(2), inner = UP(3);
    GRID_LOOP(i, UP(5)) {
        uint ii = i % inner, o = i / (m * inner);
        int k = idx[OFF(2) + i];
        if (k >= 0 && uint(k) < n) d[OFF(0) + (o * n + uint(k)) * inner + ii] = s[OFF(1) + i];
    }
}
#elif defined(SLICE) || defined(SLICE_ASSIGN)
BUF_U(0, d)
BUF_RU(1, s)
void main()
{
    uint n = UP(1), inner = UP(2), start = UP(3), len = UP(4);
    uint li = len * inner;
    GRID_LOOP(i, UP(5)) {
        uint o = i / li, r = i % li;
        uint big = o * n * inner + start * inner + r;
#ifdef SLICE
        d[OFF(0) + i] = s[OFF(1) + big];
#else
        d[OFF(0) + big] = s[OFF(1) + i];
#endif
    }
}
#endif
