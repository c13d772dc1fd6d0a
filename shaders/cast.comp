#version 450
#extension GL_GOOGLE_include_directive : require
/* CAST: binding 0 = dst, 1 = src, both as raw words.
 * ip[0] = n, ip[1] = src dtype, ip[2] = dst dtype (0 F32, 1 I32, 2 U8) (host). */
#include "common.glsl"
DECLARE_WG()
BUF_U(0, d)
BUF_RU(1, s)

uint src_bits(uint i, uint st)
{
    if (st == 2u) return seg_u8_get(s[OFF(1) + (i >> 2)], i & 3u);
    return s[OFF(1) + i];
}

/* the value of element i as the destination type's bits (U8: the low byte) */
uint convert(uint i, uint st, uint dt)
{
    uint b = src_bits(i, st);
    if (st == dt) return b;
    if (dt == 0u) { /* -> F32 */
        float f = st == 1u ? float(int(b)) : float(b);
        return floatBitsToUint(f);
    }
    if (dt == 1u) { /* -> I32 */
        return st == 0u ? uint(int(uintBitsToFloat(b))) : b;
    }
    /* -> U8 */
    uint v = st == 0u ? uint(int(uintBitsToFloat(b))) : b;
    return v & 0xFFu;
}

void main()
{
    uint n = UP(0), st = UP(1), dt = UP(2);
    if (dt != 2u) {
        GRID_LOOP(i, n) d[OFF(0) + i] = convert(i, st, dt);
    } else {
        uint nw = (n + 3u) >> 2;
        GRID_LOOP(w, nw) {
            uint base = w << 2;
            uint word = (base + 4u <= n) ? 0u : d[OFF(0) + w]; /* keep bytes past the end */
            for (uint k = 0u; k < 4u; ++k) {
                if (base + k < n) {
                    word &= ~(0xFFu << (8u * k));
                    word |= convert(base + k, st, dt) << (8u * k);
                }
            }
            d[OFF(0) + w] = word;
        }
    }
}
