/* cpu_reduce.c: reductions, softmax, cumulative sum and sort along an axis.
 * Sums accumulate in double: the reference should be the most accurate backend. */
#include <math.h>
#include <stdlib.h>

#include "cpu/cpu.h"

CPU_KERNEL(cpu_reduce)
{
    int fn = a->ip[0];
    int64_t outer = a->ip[1], n = a->ip[2], inner = a->ip[3];
    const float *x = CPU_F32(a->src[0]);
    float *d = CPU_F32(a->dst[0]);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *p = x + o * n * inner + i;
            double acc = fn == SEG_REDUCE_MAX ? -INFINITY : (fn == SEG_REDUCE_MIN ? INFINITY : 0.0);
            for (int64_t k = 0; k < n; k++) {
                float v = p[k * inner];
                if (fn == SEG_REDUCE_MAX)
                    acc = v > acc ? v : acc;
                else if (fn == SEG_REDUCE_MIN)
                    acc = v < acc ? v : acc;
                else
                    acc += v;
            }
            if (fn == SEG_REDUCE_MEAN)
                acc /= (double)n;
            d[o * inner + i] = (float)acc;
        }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_argreduce)
{
    bool argmin = a->ip[0];
    int64_t outer = a->ip[1], n = a->ip[2], inner = a->ip[3];
    const float *x = CPU_F32(a->src[0]);
    int32_t *d = CPU_I32(a->dst[0]);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *p = x + o * n * inner + i;
            int32_t best = 0;
            float bv = p[0];
            for (int64_t k = 1; k < n; k++) {
                float v = p[k * inner];
                if (argmin ? v < bv : v > bv) {
                    bv = v;
                    best = (int32_t)k;
                }
            }
            d[o * inner + i] = best;
        }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_softmax)
{
    bool use_log = a->ip[0];
    int64_t outer = a->ip[1], n = a->ip[2], inner = a->ip[3];
    const float *x = CPU_F32(a->src[0]);
    float *d = CPU_F32(a->dst[0]);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *p = x + o * n * inner + i;
            float *q = d + o * n * inner + i;
            float mx = -INFINITY;
            for (int64_t k = 0; k < n; k++)
                mx = p[k * inner] > mx ? p[k * inner] : mx;
            double sum = 0.0;
            for (int64_t k = 0; k < n; k++)
                sum += exp((double)p[k * inner] - mx);
            double lse = log(sum);
            for (int64_t k = 0; k < n; k++) {
                double z = (double)p[k * inner] - mx;
                q[k * inner] = (float)(use_log ? z - lse : exp(z) / sum);
            }
        }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_softmax_bwd)
{
    bool use_log = a->ip[0];
    int64_t outer = a->ip[1], n = a->ip[2], inner = a->ip[3];
    const float *y = CPU_F32(a->src[0]), *dy = CPU_F32(a->src[1]);
    float *d = CPU_F32(a->dst[0]);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i;
            double s = 0.0;
            for (int64_t k = 0; k < n; k++)
                s += use_log ? (double)dy[base + k * inner]
                         : (double)dy[base + k * inner] * y[base + k * inner];
            for (int64_t k = 0; k < n; k++) {
                int64_t j = base + k * inner;
                d[j] = use_log ? (float)(dy[j] - exp((double)y[j]) * s) : (float)(y[j] * (dy[j] - s));
            }
        }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_cumsum)
{
    bool rev = a->ip[0];
    int64_t outer = a->ip[1], n = a->ip[2], inner = a->ip[3];
    const float *x = CPU_F32(a->src[0]);
    float *d = CPU_F32(a->dst[0]);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double acc = 0.0;
            for (int64_t t = 0; t < n; t++) {
                int64_t k = rev ? n - 1 - t : t;
                int64_t j = o * n * inner + k * inner + i;
                acc += x[j];
                d[j] = (float)acc;
            }
        }
    return SEG_STATUS_OK;
}

struct sort_item {
    float   v;
    int32_t i;
};

static int cmp_asc(const void *p, const void *q)
{
    const struct sort_item *a = p, *b = q;
    if (a->v < b->v) return -1;
    if (a->v > b->v) return 1;
    return (a->i > b->i) - (a->i < b->i);
}

static int cmp_desc(const void *p, const void *q)
{
    const struct sort_item *a = p, *b = q;
    if (a->v > b->v) return -1;
    if (a->v < b->v) return 1;
    return (a->i > b->i) - (a->i < b->i);
}

CPU_KERNEL(cpu_sort)
{
    int64_t rows = a->ip[0], n = a->ip[1];
    bool desc = a->ip[2];
    const float *x = CPU_F32(a->src[0]);
    float *v = CPU_F32(a->dst[0]);
    int32_t *ix = CPU_I32(a->dst[1]);
    struct sort_item *it = malloc((size_t)n * sizeof *it);
    if (!it)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "sort: out of host memory");
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < n; k++) {
            it[k].v = x[r * n + k];
            it[k].i = (int32_t)k;
        }
        qsort(it, (size_t)n, sizeof *it, desc ? cmp_desc : cmp_asc);
        for (int64_t k = 0; k < n; k++) {
            v[r * n + k] = it[k].v;
            ix[r * n + k] = it[k].i;
        }
    }
    free(it);
    return SEG_STATUS_OK;
}
