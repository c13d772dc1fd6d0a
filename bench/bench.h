/* bench.h: segda bench: kernel and training throughput, one record per (device, op, shape). */
#ifndef SEGDA_BENCH_H
#define SEGDA_BENCH_H

#include "segda.h"

struct bench_record {
    char   suite[16], backend[16], device[128], driver[128], op[48], shape[96];
    double flops, bytes;          /* per run */
    double ms_median, ms_min, ms_max;
    double gflops, gbps;
    double peak_pct;              /* of the peak measured in the same run (0: none) */
    double mem_mb;                /* step suite: peak device memory */
};

struct bench_opts {
    int    runs;          /* timed runs after the warm-up */
    double budget_s;      /* a test stops adding runs past this */
    bool   full;          /* full-size shapes (512x1024 conv, big GEMMs) */
    int    step_size;     /* step suite input side (square) */
    const char *step_arch;
};

struct bench_list {
    struct bench_record *v;
    int                  n, cap;
    double               peak_gflops, peak_gbps; /* of the device being measured */
};

/* Each suite appends records for one backend. */
enum seg_status bench_suite_peak(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l);
enum seg_status bench_suite_gemm(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l);
enum seg_status bench_suite_conv(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l);
enum seg_status bench_suite_memory(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l);
enum seg_status bench_suite_step(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l);

/* Times fn(ctx) (which queues work on be): warm-up, then runs until o->runs or the budget,
 * each run closed by a sync. Fills the timing fields of r. */
typedef enum seg_status (*bench_fn)(void *ctx);
enum seg_status bench_time(struct seg_backend *be, const struct bench_opts *o, bench_fn fn,
                           void *ctx, struct bench_record *r);
struct bench_record *bench_add(struct bench_list *l, struct seg_backend *be, const char *suite,
                               const char *op, const char *shape, double flops, double bytes);

int seg_cmd_bench(int argc, char **argv);

#endif
