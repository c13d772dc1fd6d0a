#version 450
#extension GL_GOOGLE_include_directive : require
/* EXPAND (4-byte): binding 0 = dst, 1 = src. ip as ops.def; ip[9] = numel (host).
 * PERMUTE reuses it: the host turns the permutation into dst shape + source strides. */
#include "common.glsl"
DECLARE_WG()
BUF_U(0, d)
BUF_RU(1, s)
void main()
{
    uint d1 = UP(2), d2 = UP(3), d3 = UP(4);
    GRID_LOOP(i, UP(9)) {
        uint i3 = i % d3, t = i / d3;
        uint i2 = t % d2; t /= d2;
        uint i1 = t % d1;
        uint i0 = t / d1;
        d[OFF(0) + i] = s[OFF(1) + i0 * UP(5) + i1 * UP(6) + i2 * UP(7) + i3 * UP(8)];
    }
}
