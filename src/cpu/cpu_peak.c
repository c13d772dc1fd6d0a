/* cpu_peak.c: PEAK_FMA on the host: SIMD FMA chains (AVX-512 / AVX2+FMA where the CPU has
 * them, scalar fmaf otherwise; every variant is fused, so all agree bit for bit) on every
 * online core. */
#include <math.h>
#include <pthread.h>
#include <unistd.h>

#include "cpu/cpu.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define CPU_PEAK_X86 1
#include <immintrin.h>
#endif

struct peak_job {
    float       *y;
    const float *x;
    int64_t      lo, hi;
    int          iters;
    float        b, c;
};

/* One element: the ops.def contract, literally. */
static void peak_scalar(const struct peak_job *j, int64_t lo, int64_t hi)
{
    for (int64_t i = lo; i < hi; i++) {
        float a[8];
        for (int k = 0; k < 8; k++)
            a[k] = j->x[i] + 0.125f * (float)k;
        for (int t = 0; t < j->iters; t++)
            for (int k = 0; k < 8; k++)
                a[k] = fmaf(a[k], j->b, j->c);
        float s = a[0];
        for (int k = 1; k < 8; k++)
            s += a[k];
        j->y[i] = s;
    }
}

#ifdef CPU_PEAK_X86
/* Eight independent vector chains: enough FMAs in flight for two FMA units of latency 4. */
#define PEAK_SIMD(V, W, LOAD, STORE, SET1, ADD, FMA)                                          \
    int64_t i = j->lo;                                                                        \
    const V bv = SET1(j->b), cv = SET1(j->c);                                                 \
    for (; i + W <= j->hi; i += W) {                                                          \
        const V x = LOAD(j->x + i);                                                           \
        V a0 = x, a1 = ADD(x, SET1(0.125f)), a2 = ADD(x, SET1(0.25f));                        \
        V a3 = ADD(x, SET1(0.375f)), a4 = ADD(x, SET1(0.5f)), a5 = ADD(x, SET1(0.625f));      \
        V a6 = ADD(x, SET1(0.75f)), a7 = ADD(x, SET1(0.875f));                                \
        for (int t = 0; t < j->iters; t++) {                                                  \
            a0 = FMA(a0, bv, cv);                                                             \
            a1 = FMA(a1, bv, cv);                                                             \
            a2 = FMA(a2, bv, cv);                                                             \
            a3 = FMA(a3, bv, cv);                                                             \
            a4 = FMA(a4, bv, cv);                                                             \
            a5 = FMA(a5, bv, cv);                                                             \
            a6 = FMA(a6, bv, cv);                                                             \
            a7 = FMA(a7, bv, cv);                                                             \
        }                                                                                     \
        STORE(j->y + i, ADD(ADD(ADD(ADD(ADD(ADD(ADD(a0, a1), a2), a3), a4), a5), a6), a7));   \
    }                                                                                         \
    peak_scalar(j, i, j->hi);

__attribute__((target("avx512f"))) static void peak_avx512(const struct peak_job *j)
{
    PEAK_SIMD(__m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_add_ps,
              _mm512_fmadd_ps)
}

__attribute__((target("avx2,fma"))) static void peak_avx2(const struct peak_job *j)
{
    PEAK_SIMD(__m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_add_ps,
              _mm256_fmadd_ps)
}
#endif

static void *peak_run(void *p)
{
    const struct peak_job *j = p;
#ifdef CPU_PEAK_X86
    if (__builtin_cpu_supports("avx512f")) {
        peak_avx512(j);
        return NULL;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        peak_avx2(j);
        return NULL;
    }
#endif
    peak_scalar(j, j->lo, j->hi);
    return NULL;
}

CPU_KERNEL(cpu_peak_fma)
{
    int64_t n = a->ip[1];
    struct peak_job whole = {CPU_F32(a->dst[0]), CPU_F32(a->src[0]), 0, n, a->ip[0], a->fp[0],
                             a->fp[1]};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
    /* Threads only for real work (the bench), in chunks of whole 64-element blocks. */
    if ((double)n * (a->ip[0] + 1) < 4e6 || n < 64 * nt)
        nt = 1;
    struct peak_job jobs[64];
    pthread_t tid[64];
    int started = 0;
    int64_t per = (n / nt + 63) / 64 * 64;
    for (int t = 0; t < nt; t++) {
        jobs[t] = whole;
        jobs[t].lo = (int64_t)t * per < n ? (int64_t)t * per : n;
        jobs[t].hi = jobs[t].lo + per < n && t + 1 < nt ? jobs[t].lo + per : n;
    }
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&tid[t], NULL, peak_run, &jobs[t]) != 0)
            break;
        started = t;
    }
    /* The calling thread takes the first chunk and any chunk a thread could not start for. */
    peak_run(&jobs[0]);
    for (int t = started + 1; t < nt; t++)
        peak_run(&jobs[t]);
    for (int t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    return SEG_STATUS_OK;
}
