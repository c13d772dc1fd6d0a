/* ops.h: the op front-end. Each function validates its arguments, allocates its outputs
 * on the backend of its inputs (unless given), fills seg_op_args and runs the kernel.
 * Outputs are returned through the last parameters; the caller frees them. */
#ifndef SEGDA_OPS_H
#define SEGDA_OPS_H

#include "segda.h"

struct seg_conv2d_params {
    int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};
struct seg_pool2d_params {
    int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    bool ceil_mode;
};

enum seg_status seg_fill(struct seg_tensor *t, float value);
enum seg_status seg_fill_i32(struct seg_tensor *t, int32_t value);
enum seg_status seg_cast(const struct seg_tensor *x, enum seg_dtype dtype, struct seg_tensor **out);
/* A device-side copy into a new tensor. */
enum seg_status seg_clone(const struct seg_tensor *x, struct seg_tensor **out);

enum seg_status seg_binary(enum seg_binary_fn fn, const struct seg_tensor *a,
                           const struct seg_tensor *b, struct seg_tensor **out);
enum seg_status seg_expand(const struct seg_tensor *x, int ndim, const int64_t *shape,
                           struct seg_tensor **out);
/* Sums x over its broadcast dimensions down to shape (the adjoint of EXPAND). */
enum seg_status seg_reduce_to_shape(const struct seg_tensor *x, int ndim, const int64_t *shape,
                                    struct seg_tensor **out);
enum seg_status seg_unary(enum seg_unary_fn fn, const struct seg_tensor *x, float p0, float p1,
                          struct seg_tensor **out);
enum seg_status seg_unary_bwd(enum seg_unary_fn fn, const struct seg_tensor *x,
                              const struct seg_tensor *dy, float p0, float p1,
                              struct seg_tensor **dx);
enum seg_status seg_where(const struct seg_tensor *cond, const struct seg_tensor *a,
                          const struct seg_tensor *b, struct seg_tensor **out);

/* axis may be negative (from the end). keepdim keeps the reduced axis as size 1. */
enum seg_status seg_reduce(enum seg_reduce_fn fn, const struct seg_tensor *x, int axis,
                           bool keepdim, struct seg_tensor **out);
/* Reduces over every element to a [1] tensor. */
enum seg_status seg_reduce_all(enum seg_reduce_fn fn, const struct seg_tensor *x,
                               struct seg_tensor **out);
enum seg_status seg_argreduce(bool argmin, const struct seg_tensor *x, int axis, bool keepdim,
                              struct seg_tensor **out);

enum seg_status seg_softmax(const struct seg_tensor *x, int axis, bool log,
                            struct seg_tensor **out);
enum seg_status seg_softmax_bwd(const struct seg_tensor *y, const struct seg_tensor *dy,
                                int axis, bool log, struct seg_tensor **dx);

/* logits [N, C, ...], labels I32 [N, ...]: per-pixel terms [2, N*P] (see ops.def). */
enum seg_status seg_cross_entropy_terms(const struct seg_tensor *logits,
                                        const struct seg_tensor *labels,
                                        const struct seg_tensor *weights, int ignore_index,
                                        struct seg_tensor **out);
enum seg_status seg_cross_entropy_bwd(const struct seg_tensor *logits,
                                      const struct seg_tensor *labels,
                                      const struct seg_tensor *weights,
                                      const struct seg_tensor *scale, int ignore_index,
                                      struct seg_tensor **dlogits);

/* c = alpha * op(a) @ op(b) + beta * c. a, b: 2-D [M,K] or 3-D [B,M,K]; a 2-D operand is
 * shared by every batch. If *c is NULL it is allocated (then beta must be 0). */
enum seg_status seg_matmul(const struct seg_tensor *a, const struct seg_tensor *b, bool trans_a,
                           bool trans_b, float alpha, float beta, struct seg_tensor **c);

enum seg_status seg_im2col(const struct seg_tensor *x, int kh, int kw,
                           const struct seg_conv2d_params *p, struct seg_tensor **col);
/* x_shape: [N, C, H, W] of the image the columns came from. */
enum seg_status seg_col2im(const struct seg_tensor *col, const int64_t *x_shape, int kh, int kw,
                           const struct seg_conv2d_params *p, struct seg_tensor **dx);
int64_t seg_conv2d_out_size(int64_t in, int k, int stride, int pad, int dil);

enum seg_status seg_batchnorm_stats(const struct seg_tensor *x, struct seg_tensor **mean,
                                    struct seg_tensor **var);
enum seg_status seg_batchnorm(const struct seg_tensor *x, const struct seg_tensor *mean,
                              const struct seg_tensor *var, const struct seg_tensor *gamma,
                              const struct seg_tensor *beta, float eps, struct seg_tensor **y);
/* Any of dx, dgamma, dbeta may be NULL (not wanted). */
enum seg_status seg_batchnorm_bwd(const struct seg_tensor *x, const struct seg_tensor *dy,
                                  const struct seg_tensor *mean, const struct seg_tensor *var,
                                  const struct seg_tensor *gamma, float eps, bool batch_stats,
                                  struct seg_tensor **dx, struct seg_tensor **dgamma,
                                  struct seg_tensor **dbeta);

int64_t seg_pool2d_out_size(int64_t in, int k, int stride, int pad, bool ceil_mode);
enum seg_status seg_maxpool2d(const struct seg_tensor *x, const struct seg_pool2d_params *p,
                              struct seg_tensor **y, struct seg_tensor **idx);
enum seg_status seg_maxpool2d_bwd(const struct seg_tensor *dy, const struct seg_tensor *idx,
                                  const int64_t *x_shape, const struct seg_pool2d_params *p,
                                  struct seg_tensor **dx);

/* x [..., H, W] -> [..., oh, ow]. */
enum seg_status seg_resize_bilinear(const struct seg_tensor *x, int64_t oh, int64_t ow,
                                    bool align_corners, struct seg_tensor **y);
enum seg_status seg_resize_bilinear_bwd(const struct seg_tensor *dy, int64_t h, int64_t w,
                                        bool align_corners, struct seg_tensor **dx);
enum seg_status seg_resize_nearest(const struct seg_tensor *x, int64_t oh, int64_t ow,
                                   struct seg_tensor **y);

/* labels I32 [N, ...] -> F32 [N, C, ...]. */
enum seg_status seg_one_hot(const struct seg_tensor *labels, int num_classes,
                            struct seg_tensor **out);
enum seg_status seg_gather(const struct seg_tensor *x, int axis, const struct seg_tensor *idx,
                           struct seg_tensor **out);
/* out has x's shape except n along axis. */
enum seg_status seg_scatter_add(const struct seg_tensor *x, int axis, const struct seg_tensor *idx,
                                int64_t n, bool unique, struct seg_tensor **out);
enum seg_status seg_slice(const struct seg_tensor *x, int axis, int64_t start, int64_t len,
                          struct seg_tensor **out);
enum seg_status seg_slice_assign(struct seg_tensor *dst, int axis, int64_t start,
                                 const struct seg_tensor *src);
enum seg_status seg_permute(const struct seg_tensor *x, const int *perm, struct seg_tensor **out);
/* Along the last axis. */
enum seg_status seg_sort(const struct seg_tensor *x, bool descending, struct seg_tensor **values,
                         struct seg_tensor **indices);
enum seg_status seg_cumsum(const struct seg_tensor *x, int axis, bool reverse,
                           struct seg_tensor **out);
enum seg_status seg_rng_uniform(struct seg_tensor *t, uint32_t seed, uint32_t stream);

/* skip (optional, F32 [1]): where its value is not 0 the step changes nothing. */
enum seg_status seg_sgd_step(struct seg_tensor *param, struct seg_tensor *momentum_buf,
                             const struct seg_tensor *grad, float lr, float momentum, float wd,
                             bool first, const struct seg_tensor *skip);
enum seg_status seg_adam_step(struct seg_tensor *param, struct seg_tensor *m, struct seg_tensor *v,
                              const struct seg_tensor *grad, float lr, float b1, float b2,
                              float eps, float wd, float decay, int step, const struct seg_tensor *skip);
/* flag [1] (F32, written): 1 when some element of x is NaN or infinite, else 0. */
enum seg_status seg_nonfinite_any(const struct seg_tensor *x, struct seg_tensor *flag);

/* ---- bench support (ops.def PEAK_FMA, CONV2D_DIRECT; device timers; GEMM tuning) ---- */

/* out [numel(x)] = the PEAK_FMA kernel of x with `iters` FMA steps per chain. */
enum seg_status seg_peak_fma(const struct seg_tensor *x, int iters, float b, float c,
                             struct seg_tensor **out);
/* The direct (implicit-GEMM) convolution forward: y = conv(x, w) + b, b [CO] or NULL. */
enum seg_status seg_conv2d_direct(const struct seg_tensor *x, const struct seg_tensor *w,
                                  const struct seg_tensor *b, const struct seg_conv2d_params *p,
                                  struct seg_tensor **y);

/* Device timestamps where the backend has them (false: wall clock only). stop waits for
 * the queue and gives the device time since start in ms. */
bool seg_device_timer_available(const struct seg_backend *be);
enum seg_status seg_device_timer_start(struct seg_backend *be);
enum seg_status seg_device_timer_stop(struct seg_backend *be, double *device_ms);

/* A GEMM shape the tuner measures (row-major, C = op(A) op(B) as MATMUL). */
struct seg_tune_shape {
    int m, n, k;
    bool trans_a, trans_b;
};
struct seg_tune_opts {
    bool                         quick;   /* a smaller search (a few minutes on a CPU) */
    const struct seg_tune_shape *shapes;  /* shapes[0] is the headline one (1024^3) */
    int                          nshapes;
    void (*log)(void *user, const char *line); /* progress lines (may be NULL) */
    void *user;
    double                       deadline; /* CLOCK_MONOTONIC seconds by which to end (0: none) */
};
/* The time budget of a search, shared by the backends' tuners: asked before each candidate,
 * it keeps room for one candidate's check on every shape, so that a search cut short still
 * ends with its best found checked (and stored if it beats the defaults), and it logs a
 * progress line with the estimated time left every 10 s. */
struct seg_tune_clock {
    const struct seg_tune_opts *o;
    double start, pass_s;  /* pass_s: one pass over every shape, what a final check costs */
    double search_s;       /* spent on stage 1-2 candidates */
    int    tried, planned; /* stage 1-2 candidates */
    int    finals;         /* stage 3 checks planned */
    double last_line;
    bool   cut;            /* the budget ended the search early */
};
void seg_tune_clock_start(struct seg_tune_clock *c, const struct seg_tune_opts *o, int planned, int finals);
/* The untuned pass: whether to time shape i (0-based; shapes 0 and 1 always are), within a
 * third of the budget; then seg_tune_clock_pass with the shapes timed and the pass's time.
 * Later stages compare candidates on those shapes only. */
bool seg_tune_clock_base(struct seg_tune_clock *c, int i);
void seg_tune_clock_pass(struct seg_tune_clock *c, double pass_s);
/* Stage 1-2: whether another candidate fits; seg_tune_clock_tick after each one (t0: its start). */
bool seg_tune_clock_search(struct seg_tune_clock *c);
void seg_tune_clock_tick(struct seg_tune_clock *c, double t0);
/* Stage 3: whether the final check number `done` (0-based) fits; the first does unless the
 * deadline has passed. */
bool seg_tune_clock_final(struct seg_tune_clock *c, int done);
/* Within a final check: whether to time shape s too (shapes 0 and 1 always are); a check cut
 * by the deadline compares on the shapes it timed. */
bool seg_tune_clock_shape(struct seg_tune_clock *c, int s);
double seg_tune_now(void);
/* Tunes the backend's GEMM for these shapes and stores the result in the per-device tuning
 * cache, which backend creation loads. UNSUPPORTED where there is nothing to tune (cpu). */
enum seg_status seg_backend_tune(struct seg_backend *be, const struct seg_tune_opts *o);
/* The largest A (m*k), B (k*n) and C (m*n) element counts over o's shapes (buffer sizes). */
void seg_tune_max_sizes(const struct seg_tune_opts *o, size_t *na, size_t *nb, size_t *nc);
/* "" or what tuned parameters the backend uses. */
const char *seg_backend_tuned(const struct seg_backend *be);
/* "" or the GEMM kernel in use (e.g. Vulkan's register GEMM and its tile). */
const char *seg_backend_gemm_kernel(const struct seg_backend *be);
/* MATMUL on the device's matrix hardware (seg_device_info.matrix: Vulkan cooperative matrices,
 * fp16 inputs) or back on the SIMT kernels; UNSUPPORTED where the device has none. For
 * measurements (segda bench gemm); the GEMM kernel string says which runs. */
enum seg_status seg_backend_set_matrix_gemm(struct seg_backend *be, bool on);

#endif

/* ---- backward helpers (src/core/grad.c): the gradients autograd builds from ops ---- */
/* Any of the gradient outputs may be NULL (not wanted). */
enum seg_status seg_binary_bwd(enum seg_binary_fn fn, const struct seg_tensor *a,
                               const struct seg_tensor *b, const struct seg_tensor *dy,
                               struct seg_tensor **da, struct seg_tensor **db);
enum seg_status seg_where_bwd(const struct seg_tensor *cond, const struct seg_tensor *dy,
                              struct seg_tensor **da, struct seg_tensor **db);
enum seg_status seg_reduce_bwd(enum seg_reduce_fn fn, const struct seg_tensor *x, int axis,
                               const struct seg_tensor *y, const struct seg_tensor *dy,
                               struct seg_tensor **dx);
enum seg_status seg_matmul_bwd(const struct seg_tensor *a, const struct seg_tensor *b, bool trans_a,
                               bool trans_b, float alpha, const struct seg_tensor *dc,
                               struct seg_tensor **da, struct seg_tensor **db);
enum seg_status seg_gather_bwd(const struct seg_tensor *x, int axis, const struct seg_tensor *idx,
                               const struct seg_tensor *dy, struct seg_tensor **dx);
enum seg_status seg_slice_bwd(const struct seg_tensor *x, int axis, int64_t start,
                              const struct seg_tensor *dy, struct seg_tensor **dx);
enum seg_status seg_permute_bwd(const struct seg_tensor *dy, const int *perm,
                                struct seg_tensor **dx);
/* The gradient of SORT's values output: scatters dy back through the sort indices. */
enum seg_status seg_sort_bwd(const struct seg_tensor *indices, const struct seg_tensor *dy,
                             struct seg_tensor **dx);

/* ---- composite layers and losses (src/core/nn.c, src/core/loss.c) ---- */
/* The im2col + GEMM forward, whatever seg_conv2d_algo would choose (columns in chunks
 * where they would exceed seg_backend_max_buffer). */
enum seg_status seg_conv2d_im2col(const struct seg_tensor *x, const struct seg_tensor *w,
                                  const struct seg_tensor *b, const struct seg_conv2d_params *p,
                                  struct seg_tensor **y);
/* Which algorithm seg_conv2d runs for this input, weight and parameters (never AUTO: with
 * AUTO, measures the shape now if it is new). how: where the choice came from ("measured:
 * direct 1.20 ms, im2col 2.31 ms", "cached ...", "set", "no cache directory ..."). */
enum seg_status seg_conv2d_algo(const struct seg_tensor *x, const struct seg_tensor *w,
                                const struct seg_conv2d_params *p, enum seg_conv_algo *algo, char *how,
                                size_t how_size);
/* y = conv(x, w) + b; x [N, Cin, H, W], w [Cout, Cin, KH, KW], b [Cout] or NULL; forward by
 * the algorithm seg_conv2d_algo gives. */
enum seg_status seg_conv2d(const struct seg_tensor *x, const struct seg_tensor *w,
                           const struct seg_tensor *b, const struct seg_conv2d_params *p,
                           struct seg_tensor **y);
/* Whether the backward passes run their products as 1x1 convolutions (so the measured
 * forward choice computes them: backward-data's W^T dY, backward-weight's dY col^T) or as
 * GEMMs: the former unless the backend's algorithm is pinned to im2col (the cpu reference).
 * Chunks of rows (seg_backend_max_buffer) keep backward-weight's GEMM. */
bool seg_conv2d_bwd_as_conv(const struct seg_backend *be);
enum seg_status seg_conv2d_bwd_data(const struct seg_tensor *dy, const struct seg_tensor *w,
                                    const int64_t *x_shape, const struct seg_conv2d_params *p,
                                    struct seg_tensor **dx);
/* dw (and db when not NULL) of the convolution. */
enum seg_status seg_conv2d_bwd_weight(const struct seg_tensor *x, const struct seg_tensor *dy,
                                      const int64_t *w_shape, const struct seg_conv2d_params *p,
                                      struct seg_tensor **dw, struct seg_tensor **db);
/* Concatenates n tensors along axis. */
enum seg_status seg_concat(const struct seg_tensor *const *xs, int n, int axis,
                           struct seg_tensor **out);

/* Mean cross-entropy over non-ignored pixels (weighted mean with class weights, as PyTorch):
 * loss [1] and the weight sum [1] that the backward needs. An all-ignored batch gives NaN
 * as in PyTorch, or with empty_zero 0 and a zero gradient (the weight sum is taken as at
 * least 1 without class weights, where it counts pixels, else 1e-12), so that a caller
 * needs no host test of the label count. */
enum seg_status seg_cross_entropy(const struct seg_tensor *logits, const struct seg_tensor *labels,
                                  const struct seg_tensor *weights, int ignore_index, bool empty_zero,
                                  struct seg_tensor **loss, struct seg_tensor **wsum);
/* dlogits of dloss * loss, dloss a [1] tensor on the device. */
enum seg_status seg_cross_entropy_grad(const struct seg_tensor *logits,
                                       const struct seg_tensor *labels,
                                       const struct seg_tensor *weights, int ignore_index,
                                       const struct seg_tensor *wsum,
                                       const struct seg_tensor *dloss,
                                       struct seg_tensor **dlogits);
