#version 450
#extension GL_GOOGLE_include_directive : require
/* WHERE: binding 0 = dst, 1 = cond, 2 = a, 3 = b; ip[0] = n (host). */
#include "common.glsl"
DECLARE_WG()
BUF_F(0, d)
BUF_RF(1, c)
BUF_RF(2, a)
BUF_RF(3, b)
void main()
{
    GRID_LOOP(i, UP(0)) d[OFF(0) + i] = c[OFF(1) + i] != 0.0 ? a[OFF(2) + i] : b[OFF(3) + i];
}
