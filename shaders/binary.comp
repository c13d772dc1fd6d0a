#version 450
#extension GL_GOOGLE_include_directive : require
/* BINARY: binding 0 = dst, 1 = a, 2 = b. ip as ops.def (ip[0] or SPEC_FN = the function);
 * host: ip[13] = numel, ip[14] bit 0 / bit 1 = a / b are read at the element's own index;
 * -DDIRECT: the variant for neither operand broadcast. */
#include "common.glsl"
DECLARE_WG()
DECLARE_FN()
BUF_F(0, d)
BUF_RF(1, a)
BUF_RF(2, b)

float apply(int fn, float x, float y)
{
    switch (fn) {
    case 0: return x + y;
    case 1: return x - y;
    case 2: return x * y;
    case 3: return x / y;
    case 4: return seg_pow(x, y);
    case 5: return x > y ? x : y;
    case 6: return x < y ? x : y;
    case 7: return x == y ? 1.0 : 0.0;
    case 8: return x != y ? 1.0 : 0.0;
    case 9: return x < y ? 1.0 : 0.0;
    case 10: return x <= y ? 1.0 : 0.0;
    case 11: return x > y ? 1.0 : 0.0;
    case 12: return x >= y ? 1.0 : 0.0;
    }
    return 0.0;
}

void main()
{
    int fn = SELECT_FN(0);
#ifdef DIRECT /* no broadcasting: every operand at the element's own index */
    GRID_LOOP(i, UP(13)) d[OFF(0) + i] = apply(fn, a[OFF(1) + i], b[OFF(2) + i]);
#else
    uint d1 = UP(2), d2 = UP(3), d3 = UP(4);
    uint direct = UP(14);
    GRID_LOOP(i, UP(13)) {
        uint i3 = i % d3, t = i / d3;
        uint i2 = t % d2; t /= d2;
        uint i1 = t % d1;
        uint i0 = t / d1;
        uint ia = (direct & 1u) != 0u ? i : i0 * UP(5) + i1 * UP(6) + i2 * UP(7) + i3 * UP(8);
        uint ib = (direct & 2u) != 0u ? i : i0 * UP(9) + i1 * UP(10) + i2 * UP(11) + i3 * UP(12);
        d[OFF(0) + i] = apply(fn, a[OFF(1) + ia], b[OFF(2) + ib]);
    }
#endif
}
