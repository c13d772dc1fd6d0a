#version 450
#extension GL_GOOGLE_include_directive : require
/* FILL: dst[i] = ip[0] (bit pattern). ip[1] = n (host). */
#include "common.glsl"
DECLARE_WG()
BUF_U(0, d)
void main()
{
    uint v = uint(IP(0));
    GRID_LOOP(i, UP(1)) d[OFF(0) + i] = v;
}
