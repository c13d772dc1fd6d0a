/* cpu_conv.c: matmul (OpenBLAS) and the im2col / col2im pair convolutions are built on. */
#include <cblas.h>
#include <string.h>

#include "cpu/cpu.h"

CPU_KERNEL(cpu_matmul)
{
    int batch = a->ip[0], m = a->ip[1], n = a->ip[2], k = a->ip[3];
    bool ta = a->ip[4], tb = a->ip[5];
    int64_t sa = a->ip[6], sb = a->ip[7], sc = a->ip[8];
    const float *A = CPU_F32(a->src[0]), *B = CPU_F32(a->src[1]);
    float *C = CPU_F32(a->dst[0]);
    for (int b = 0; b < batch; b++)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    m, n, k, a->fp[0], A + b * sa, ta ? m : k, B + b * sb, tb ? k : n, a->fp[1],
                    C + b * sc, n);
    return SEG_STATUS_OK;
}

struct conv_geom {
    int n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
};

static struct conv_geom geom(const int32_t *ip)
{
    struct conv_geom g = {ip[0], ip[1], ip[2], ip[3], ip[4],  ip[5],  ip[6],
                          ip[7], ip[8], ip[9], ip[10], ip[11], ip[12], ip[13]};
    return g;
}

CPU_KERNEL(cpu_im2col)
{
    struct conv_geom g = geom(a->ip);
    const float *x = CPU_F32(a->src[0]);
    float *col = CPU_F32(a->dst[0]);
    int64_t ohw = (int64_t)g.oh * g.ow;
    for (int n = 0; n < g.n; n++)
        for (int c = 0; c < g.c; c++) {
            const float *xp = x + ((int64_t)n * g.c + c) * g.h * g.w;
            for (int kh = 0; kh < g.kh; kh++)
                for (int kw = 0; kw < g.kw; kw++) {
                    float *row = col + (((int64_t)n * g.c + c) * g.kh * g.kw + kh * g.kw + kw) * ohw;
                    for (int oh = 0; oh < g.oh; oh++) {
                        int ih = oh * g.sh - g.ph + kh * g.dh;
                        float *r = row + (int64_t)oh * g.ow;
                        if (ih < 0 || ih >= g.h) {
                            memset(r, 0, (size_t)g.ow * sizeof *r);
                            continue;
                        }
                        for (int ow = 0; ow < g.ow; ow++) {
                            int iw = ow * g.sw - g.pw + kw * g.dw;
                            r[ow] = (iw >= 0 && iw < g.w) ? xp[(int64_t)ih * g.w + iw] : 0.0f;
                        }
                    }
                }
        }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_col2im)
{
    struct conv_geom g = geom(a->ip);
    const float *col = CPU_F32(a->src[0]);
    float *x = CPU_F32(a->dst[0]);
    int64_t ohw = (int64_t)g.oh * g.ow;
    memset(x, 0, (size_t)g.n * g.c * g.h * g.w * sizeof *x);
    for (int n = 0; n < g.n; n++)
        for (int c = 0; c < g.c; c++) {
            float *xp = x + ((int64_t)n * g.c + c) * g.h * g.w;
            for (int kh = 0; kh < g.kh; kh++)
                for (int kw = 0; kw < g.kw; kw++) {
                    const float *row =
                        col + (((int64_t)n * g.c + c) * g.kh * g.kw + kh * g.kw + kw) * ohw;
                    for (int oh = 0; oh < g.oh; oh++) {
                        int ih = oh * g.sh - g.ph + kh * g.dh;
                        if (ih < 0 || ih >= g.h)
                            continue;
                        for (int ow = 0; ow < g.ow; ow++) {
                            int iw = ow * g.sw - g.pw + kw * g.dw;
                            if (iw >= 0 && iw < g.w)
                                xp[(int64_t)ih * g.w + iw] += row[(int64_t)oh * g.ow + ow];
                        }
                    }
                }
        }
    return SEG_STATUS_OK;
}

/* The first output column whose input column kw0 + ow * sw lies in [0, w), and one past the
 * last (ow0 >= ow1 when none does). */
static void valid_range(int kw0, int sw, int w, int ow, int *ow0, int *ow1)
{
    int lo = kw0 >= 0 ? 0 : (-kw0 + sw - 1) / sw;
    int hi = w - 1 - kw0 < 0 ? 0 : (w - 1 - kw0) / sw + 1;
    *ow0 = lo;
    *ow1 = hi < ow ? hi : ow;
}

CPU_KERNEL(cpu_conv2d_direct)
{
    struct conv_geom g = geom(a->ip);
    int co_n = a->ip[14];
    const float *x = CPU_F32(a->src[0]), *w = CPU_F32(a->src[1]), *bias = CPU_F32(a->src[2]);
    float *y = CPU_F32(a->dst[0]);
    int64_t ohw = (int64_t)g.oh * g.ow, hw = (int64_t)g.h * g.w;
    for (int n = 0; n < g.n; n++)
        for (int co = 0; co < co_n; co++) {
            float *yp = y + ((int64_t)n * co_n + co) * ohw;
            float b0 = bias ? bias[co] : 0.0f;
            for (int64_t i = 0; i < ohw; i++)
                yp[i] = b0;
            for (int c = 0; c < g.c; c++) {
                const float *xp = x + ((int64_t)n * g.c + c) * hw;
                const float *wp = w + ((int64_t)co * g.c + c) * g.kh * g.kw;
                for (int kh = 0; kh < g.kh; kh++)
                    for (int kw = 0; kw < g.kw; kw++) {
                        float wv = wp[kh * g.kw + kw];
                        int ow0, ow1, kw0 = kw * g.dw - g.pw;
                        valid_range(kw0, g.sw, g.w, g.ow, &ow0, &ow1);
                        for (int oh = 0; oh < g.oh; oh++) {
                            int ih = oh * g.sh - g.ph + kh * g.dh;
                            if (ih < 0 || ih >= g.h)
                                continue;
                            const float *xr = xp + (int64_t)ih * g.w;
                            float *yr = yp + (int64_t)oh * g.ow;
                            for (int ow = ow0; ow < ow1; ow++)
                                yr[ow] += wv * xr[kw0 + ow * g.sw];
                        }
                    }
            }
        }
    return SEG_STATUS_OK;
}
