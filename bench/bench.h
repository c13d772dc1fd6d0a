/* bench.h: segda bench: kernel and training throughput, one record per (device, op, shape). */
#ifndef SEGDA_BENCH_H
#define SEGDA_BENCH_H

#include "core/ops.h"
#include "segda.h"

struct seg_dist;

struct bench_record {
    char   suite[16], backend[16], device[128], driver[128], op[48], shape[96];
    double flops, bytes;          /* per run */
    double ms_median, ms_min, ms_max;
    double ms_device;             /* median device time (timestamps), 0: not available */
    double gflops, gbps;
    double peak_pct;              /* of the peak measured in the same run (0: none) */
    double mem_mb;                /* step suite: peak device memory */
    /* step suite: per training step after warm-up, host waits for the device, kernels and
     * pipeline barriers (seg_backend_counts); has_counts marks them present */
    double syncs, dispatches, barriers;
    bool   has_counts;
    bool   tuned;                 /* the backend ran with tuned GEMM parameters */
    char   algo[24];              /* conv: the algorithm that ran (im2col, direct, the backward route) */
    char   algo_how[96];          /* conv fwd-chosen: how it was chosen (measured, cached, set) */
};

struct bench_opts {
    int    runs;          /* timed runs after the warm-up */
    double budget_s;      /* a test stops adding runs past this */
    bool   full;          /* full-size shapes (512x1024 conv, big GEMMs) */
    int    step_h, step_w; /* step suite input size */
    const char *step_arch;
    struct seg_dist *dist; /* under mpirun: the step suite measures data-parallel scaling */
};

struct bench_list {
    struct bench_record *v;
    int                  n, cap;
    double               peak_gflops, peak_gbps; /* of the device being measured */
    const char          *filter; /* --filter: only tests whose op or shape contain it */
};

/* The FP32 FMA peak alone (the peak suite runs it too): for gemm / conv runs without peak. */
enum seg_status bench_fma_peak(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l);
/* The distinct GEMM shapes of DeepLab-v2 ResNet-101's convolutions on a 321x321 image
 * (forward; with bwd also the backward-data and backward-weight GEMMs). Returns the count. */
int bench_deeplab_gemm_shapes(bool bwd, struct seg_tune_shape *out, int max);

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
/* A new record, or NULL (the test is skipped) when --filter excludes it or on no memory. */
struct bench_record *bench_add(struct bench_list *l, struct seg_backend *be, const char *suite,
                               const char *op, const char *shape, double flops, double bytes);

int seg_cmd_bench(int argc, char **argv);
/* segda tune [--device D] [--quick] (bench/tune_main.c). */
int seg_cmd_tune(int argc, char **argv);

#endif
