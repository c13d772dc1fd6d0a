#version 450
#extension GL_GOOGLE_include_directive : require
/* RNG_UNIFORM: 0 = dst; ip[0] = seed, ip[1] = stream, ip[2] = n (host). Bit-identical
 * to ops.def's counter-based hash (uint arithmetic wraps as in C). */
#include "common.glsl"
DECLARE_WG()
BUF_F(0, d)
uint fmix32(uint h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}
void main()
{
    uint seed = uint(IP(0)), stream = uint(IP(1));
    GRID_LOOP(i, UP(2)) {
        uint h = fmix32(i * 0x9E3779B9u + seed);
        h = fmix32(h ^ stream);
        d[OFF(0) + i] = float(h >> 8) * (1.0 / 16777216.0);
    }
}
