/* cpu_norm.c: batch normalization (statistics, apply, backward). */
#include <math.h>

#include "cpu/cpu.h"

CPU_KERNEL(cpu_batchnorm_stats)
{
    int64_t n = a->ip[0], c = a->ip[1], p = a->ip[2];
    const float *x = CPU_F32(a->src[0]);
    float *mean = CPU_F32(a->dst[0]), *var = CPU_F32(a->dst[1]);
    double m = (double)n * p;
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < p; i++)
                s += x[(b * c + ch) * p + i];
        double mu = s / m, v = 0.0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < p; i++) {
                double e = x[(b * c + ch) * p + i] - mu;
                v += e * e;
            }
        mean[ch] = (float)mu;
        var[ch] = (float)(v / m);
    }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_batchnorm)
{
    int64_t n = a->ip[0], c = a->ip[1], p = a->ip[2];
    const float *x = CPU_F32(a->src[0]), *mean = CPU_F32(a->src[1]), *var = CPU_F32(a->src[2]);
    const float *gamma = CPU_F32(a->src[3]), *beta = CPU_F32(a->src[4]);
    float *y = CPU_F32(a->dst[0]);
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            float inv = 1.0f / sqrtf(var[ch] + a->fp[0]);
            float g = gamma ? gamma[ch] : 1.0f, bb = beta ? beta[ch] : 0.0f;
            const float *xp = x + (b * c + ch) * p;
            float *yp = y + (b * c + ch) * p;
            for (int64_t i = 0; i < p; i++)
                yp[i] = (xp[i] - mean[ch]) * inv * g + bb;
        }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_batchnorm_bwd)
{
    int64_t n = a->ip[0], c = a->ip[1], p = a->ip[2];
    bool batch_stats = a->ip[3];
    const float *x = CPU_F32(a->src[0]), *dy = CPU_F32(a->src[1]);
    const float *mean = CPU_F32(a->src[2]), *var = CPU_F32(a->src[3]), *gamma = CPU_F32(a->src[4]);
    float *dx = CPU_F32(a->dst[0]), *dgamma = CPU_F32(a->dst[1]), *dbeta = CPU_F32(a->dst[2]);
    double m = (double)n * p;
    for (int64_t ch = 0; ch < c; ch++) {
        double inv = 1.0 / sqrt((double)var[ch] + a->fp[0]);
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < p; i++) {
                int64_t j = (b * c + ch) * p + i;
                sdy += dy[j];
                sdyx += dy[j] * ((x[j] - mean[ch]) * inv);
            }
        if (dgamma)
            dgamma[ch] = (float)sdyx;
        if (dbeta)
            dbeta[ch] = (float)sdy;
        if (!dx)
            continue;
        double g = gamma ? gamma[ch] : 1.0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < p; i++) {
                int64_t j = (b * c + ch) * p + i;
                double xhat = (x[j] - mean[ch]) * inv;
                double v = batch_stats ? dy[j] - sdy / m - xhat * sdyx / m : dy[j];
                dx[j] = (float)(g * inv * v);
            }
    }
    return SEG_STATUS_OK;
}
