#version 450
#extension GL_GOOGLE_include_directive : require
/* NONFINITE_ANY: 0 = flag [1] (written), 1 = x. ip[0] = n. One workgroup: each invocation
 * tests a strided share on the raw bits (no driver may fold a NaN test on them), the shares
 * meet in shared memory. */
#include "common.glsl"
DECLARE_WG()
BUF_F(0, flag)
BUF_RF(1, x)
shared uint bad;
void main()
{
    uint l = gl_LocalInvocationID.x;
    if (l == 0) bad = 0u;
    barrier();
    uint b = 0u;
    for (uint i = l; i < UP(0); i += WG)
        b |= (floatBitsToUint(x[OFF(1) + i]) & 0x7F800000u) == 0x7F800000u ? 1u : 0u;
    if (b != 0u) atomicOr(bad, 1u);
    barrier();
    if (l == 0) flag[OFF(0)] = bad != 0u ? 1.0 : 0.0;
}
