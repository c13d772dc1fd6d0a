/* wg_reduce.glsl: workgroup-wide sum / max through shared memory. Include after
 * DECLARE_WG(); every invocation of the workgroup must call these (uniform control flow).
 * WG must be a power of two. */
#ifndef SEGDA_WG_REDUCE_GLSL
#define SEGDA_WG_REDUCE_GLSL

shared float seg_red[WG];

float wg_sum(float v)
{
    uint lid = gl_LocalInvocationID.x;
    seg_red[lid] = v;
    barrier();
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        if (lid < h) seg_red[lid] += seg_red[lid + h];
        barrier();
    }
    float r = seg_red[0];
    barrier();
    return r;
}

float wg_max(float v)
{
    uint lid = gl_LocalInvocationID.x;
    seg_red[lid] = v;
    barrier();
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        if (lid < h) seg_red[lid] = max(seg_red[lid], seg_red[lid + h]);
        barrier();
    }
    float r = seg_red[0];
    barrier();
    return r;
}

/* Kahan-compensated accumulation for per-thread partial sums. */
struct seg_kahan { float s; float c; };
void kahan_add(inout seg_kahan k, float v)
{
    precise float y = v - k.c;
    precise float t = k.s + y;
    k.c = (t - k.s) - y;
    k.s = t;
}

#endif
