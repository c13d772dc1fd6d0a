/* cpu_index.c: one-hot, gather, scatter-add, slices and permutes. */
#include <string.h>

#include "cpu/cpu.h"

CPU_KERNEL(cpu_one_hot)
{
    int64_t n = a->ip[0], c = a->ip[1], p = a->ip[2];
    const int32_t *y = CPU_I32(a->src[0]);
    float *d = CPU_F32(a->dst[0]);
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t i = 0; i < p; i++)
                d[(b * c + k) * p + i] = y[b * p + i] == k ? 1.0f : 0.0f;
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_gather)
{
    int64_t outer = a->ip[0], n = a->ip[1], m = a->ip[2], inner = a->ip[3];
    const uint32_t *x = CPU_U32(a->src[0]);
    const int32_t *ix = CPU_I32(a->src[1]);
    uint32_t *d = CPU_U32(a->dst[0]);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t q = (o * m + j) * inner + i;
                int32_t k = ix[q];
                d[q] = (k >= 0 && k < n) ? x[(o * n + k) * inner + i] : 0u;
            }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_scatter_add)
{
    int64_t outer = a->ip[0], n = a->ip[1], m = a->ip[2], inner = a->ip[3];
    const float *x = CPU_F32(a->src[0]);
    const int32_t *ix = CPU_I32(a->src[1]);
    float *d = CPU_F32(a->dst[0]);
    memset(d, 0, (size_t)(outer * n * inner) * sizeof *d);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t q = (o * m + j) * inner + i;
                int32_t k = ix[q];
                if (k >= 0 && k < n)
                    d[(o * n + k) * inner + i] += x[q];
            }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_slice)
{
    int64_t outer = a->ip[0], n = a->ip[1], inner = a->ip[2], start = a->ip[3], len = a->ip[4];
    const uint32_t *x = CPU_U32(a->src[0]);
    uint32_t *d = CPU_U32(a->dst[0]);
    for (int64_t o = 0; o < outer; o++)
        memcpy(d + o * len * inner, x + (o * n + start) * inner, (size_t)(len * inner) * 4);
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_slice_assign)
{
    int64_t outer = a->ip[0], n = a->ip[1], inner = a->ip[2], start = a->ip[3], len = a->ip[4];
    const uint32_t *x = CPU_U32(a->src[0]);
    uint32_t *d = CPU_U32(a->dst[0]);
    for (int64_t o = 0; o < outer; o++)
        memcpy(d + (o * n + start) * inner, x + o * len * inner, (size_t)(len * inner) * 4);
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_permute)
{
    const int32_t *s = a->ip, *perm = a->ip + 4;
    int64_t st[4] = {(int64_t)s[1] * s[2] * s[3], (int64_t)s[2] * s[3], s[3], 1};
    int64_t ds[4], dstr[4];
    for (int k = 0; k < 4; k++) {
        ds[k] = s[perm[k]];
        dstr[k] = st[perm[k]]; /* source stride of output dim k */
    }
    const uint32_t *x = CPU_U32(a->src[0]);
    uint32_t *d = CPU_U32(a->dst[0]);
    int64_t q = 0;
    for (int64_t i0 = 0; i0 < ds[0]; i0++)
        for (int64_t i1 = 0; i1 < ds[1]; i1++)
            for (int64_t i2 = 0; i2 < ds[2]; i2++)
                for (int64_t i3 = 0; i3 < ds[3]; i3++)
                    d[q++] = x[i0 * dstr[0] + i1 * dstr[1] + i2 * dstr[2] + i3 * dstr[3]];
    return SEG_STATUS_OK;
}
