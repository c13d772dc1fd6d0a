/* cpu_optim.c: SGD with momentum and Adam, PyTorch's update rules; the non-finite test that
 * gates them. */
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"

CPU_KERNEL(cpu_sgd_step)
{
    float *p = CPU_F32(a->dst[0]), *buf = CPU_F32(a->dst[1]);
    const float *g = CPU_F32(a->src[0]);
    float lr = a->fp[0], mom = a->fp[1], wd = a->fp[2];
    bool first = a->ip[0];
    int64_t n = seg_numel_of(a->dst[0]);
    if (a->src[1] && CPU_F32(a->src[1])[0] != 0.0f)
        return SEG_STATUS_OK;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        buf[i] = first ? gi : mom * buf[i] + gi;
        p[i] -= lr * buf[i];
    }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_adam_step)
{
    float *p = CPU_F32(a->dst[0]), *m = CPU_F32(a->dst[1]), *v = CPU_F32(a->dst[2]);
    const float *g = CPU_F32(a->src[0]);
    float lr = a->fp[0], b1 = a->fp[1], b2 = a->fp[2], eps = a->fp[3], wd = a->fp[4];
    float bc1 = a->fp[5], bc2 = a->fp[6], decay = a->fp[7];
    int64_t n = seg_numel_of(a->dst[0]);
    if (a->src[1] && CPU_F32(a->src[1])[0] != 0.0f)
        return SEG_STATUS_OK;
    for (int64_t i = 0; i < n; i++) {
        p[i] -= decay * p[i];
        float gi = g[i] + wd * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= lr / bc1 * m[i] / (sqrtf(v[i]) / sqrtf(bc2) + eps);
    }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_nonfinite_any)
{
    const float *x = CPU_F32(a->src[0]);
    bool bad = false;
    for (int32_t i = 0; i < a->ip[0]; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        bad |= (u & 0x7F800000u) == 0x7F800000u;
    }
    CPU_F32(a->dst[0])[0] = bad ? 1.0f : 0.0f;
    return SEG_STATUS_OK;
}
