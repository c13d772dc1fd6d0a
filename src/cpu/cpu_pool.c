/* cpu_pool.c: max pooling and resizing (bilinear, nearest) with their adjoints. */
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"

CPU_KERNEL(cpu_maxpool2d)
{
    const int32_t *g = a->ip;
    int n = g[0], c = g[1], h = g[2], w = g[3], kh = g[4], kw = g[5], sh = g[6], sw = g[7];
    int ph = g[8], pw = g[9], oh = g[10], ow = g[11];
    const float *x = CPU_F32(a->src[0]);
    float *y = CPU_F32(a->dst[0]);
    int32_t *ix = CPU_I32(a->dst[1]);
    for (int64_t pl = 0; pl < (int64_t)n * c; pl++) {
        const float *xp = x + pl * h * w;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                float best = -INFINITY;
                int32_t bi = -1;
                for (int u = 0; u < kh; u++) {
                    int r = i * sh - ph + u;
                    if (r < 0 || r >= h)
                        continue;
                    for (int v = 0; v < kw; v++) {
                        int q = j * sw - pw + v;
                        if (q < 0 || q >= w)
                            continue;
                        float val = xp[r * w + q];
                        if (bi < 0 || val > best) {
                            best = val;
                            bi = r * w + q;
                        }
                    }
                }
                y[(pl * oh + i) * ow + j] = best;
                ix[(pl * oh + i) * ow + j] = bi;
            }
    }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_maxpool2d_bwd)
{
    const int32_t *g = a->ip;
    int64_t planes = (int64_t)g[0] * g[1], hw = (int64_t)g[2] * g[3], ohw = (int64_t)g[10] * g[11];
    const float *dy = CPU_F32(a->src[0]);
    const int32_t *ix = CPU_I32(a->src[1]);
    float *dx = CPU_F32(a->dst[0]);
    memset(dx, 0, (size_t)(planes * hw) * sizeof *dx);
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t k = 0; k < ohw; k++) {
            int32_t t = ix[pl * ohw + k];
            if (t >= 0 && t < hw)
                dx[pl * hw + t] += dy[pl * ohw + k];
        }
    return SEG_STATUS_OK;
}

/* PyTorch's source coordinate for output index o (see ops.def). */
static void bilinear_src(int o, int in, int out, bool align, int *i0, int *i1, float *l1)
{
    float s;
    if (align)
        s = out > 1 ? (float)o * ((float)(in - 1) / (float)(out - 1)) : 0.0f;
    else {
        s = ((float)in / (float)out) * ((float)o + 0.5f) - 0.5f;
        if (s < 0.0f)
            s = 0.0f;
    }
    int f = (int)s;
    if (f > in - 1)
        f = in - 1;
    *i0 = f;
    *i1 = f < in - 1 ? f + 1 : f;
    *l1 = s - (float)f;
}

CPU_KERNEL(cpu_resize_bilinear)
{
    int64_t nc = a->ip[0];
    int h = a->ip[1], w = a->ip[2], oh = a->ip[3], ow = a->ip[4];
    bool align = a->ip[5];
    const float *x = CPU_F32(a->src[0]);
    float *y = CPU_F32(a->dst[0]);
    for (int i = 0; i < oh; i++) {
        int r0, r1;
        float ly;
        bilinear_src(i, h, oh, align, &r0, &r1, &ly);
        for (int j = 0; j < ow; j++) {
            int c0, c1;
            float lx;
            bilinear_src(j, w, ow, align, &c0, &c1, &lx);
            for (int64_t p = 0; p < nc; p++) {
                const float *xp = x + p * h * w;
                float top = (1.0f - lx) * xp[r0 * w + c0] + lx * xp[r0 * w + c1];
                float bot = (1.0f - lx) * xp[r1 * w + c0] + lx * xp[r1 * w + c1];
                y[(p * oh + i) * ow + j] = (1.0f - ly) * top + ly * bot;
            }
        }
    }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_resize_bilinear_bwd)
{
    int64_t nc = a->ip[0];
    int h = a->ip[1], w = a->ip[2], oh = a->ip[3], ow = a->ip[4];
    bool align = a->ip[5];
    const float *dy = CPU_F32(a->src[0]);
    float *dx = CPU_F32(a->dst[0]);
    memset(dx, 0, (size_t)(nc * h * w) * sizeof *dx);
    for (int i = 0; i < oh; i++) {
        int r0, r1;
        float ly;
        bilinear_src(i, h, oh, align, &r0, &r1, &ly);
        for (int j = 0; j < ow; j++) {
            int c0, c1;
            float lx;
            bilinear_src(j, w, ow, align, &c0, &c1, &lx);
            for (int64_t p = 0; p < nc; p++) {
                float g = dy[(p * oh + i) * ow + j];
                float *xp = dx + p * h * w;
                xp[r0 * w + c0] += (1.0f - ly) * (1.0f - lx) * g;
                xp[r0 * w + c1] += (1.0f - ly) * lx * g;
                xp[r1 * w + c0] += ly * (1.0f - lx) * g;
                xp[r1 * w + c1] += ly * lx * g;
            }
        }
    }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_resize_nearest)
{
    int64_t nc = a->ip[0];
    int h = a->ip[1], w = a->ip[2], oh = a->ip[3], ow = a->ip[4];
    const uint32_t *x = CPU_U32(a->src[0]);
    uint32_t *y = CPU_U32(a->dst[0]);
    float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
    for (int i = 0; i < oh; i++) {
        int r = (int)floorf((float)i * sy);
        r = r < h - 1 ? r : h - 1;
        for (int j = 0; j < ow; j++) {
            int q = (int)floorf((float)j * sx);
            q = q < w - 1 ? q : w - 1;
            for (int64_t p = 0; p < nc; p++)
                y[(p * oh + i) * ow + j] = x[(p * h + r) * w + q];
        }
    }
    return SEG_STATUS_OK;
}
