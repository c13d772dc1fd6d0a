/* autograd.h: reverse-mode differentiation over the op set.
 *
 * A struct seg_ag is one step's tape. Ops on variables compute their value at once
 * (through the op front-end, so on the tensors' backend) and, when grad mode is on and an
 * input requires a gradient, record a node whose backward is built from ordinary ops.
 * seg_ag_backward() walks the tape in reverse, accumulates gradients into leaf variables
 * (parameters) and frees every saved tensor and intermediate value as soon as no later
 * node needs it. seg_ag_reset() ends the step. */
#ifndef SEGDA_AUTOGRAD_H
#define SEGDA_AUTOGRAD_H

#include "core/ops.h"

struct seg_ag;
struct seg_model;

/* Data-parallel training (one process per device, "ranks"): the collective operations the
 * tape and the optimizers need, supplied by the caller (src/dist). NULL or nranks = 1: one
 * process. Every rank must call them in the same order. */
struct seg_collective {
    void *ctx;
    int   nranks;
    /* Replaces t (F32) on every rank by the elementwise sum over the ranks, the same bits
     * on each. */
    enum seg_status (*sum)(void *ctx, struct seg_tensor *t);
    /* Replaces every gradient of m's trainable parameters by its mean over the ranks. */
    enum seg_status (*average_grads)(void *ctx, struct seg_model *m);
};

struct seg_var {
    struct seg_tensor *value;
    struct seg_tensor *grad;      /* accumulated gradient, NULL until one arrives */
    bool               requires_grad;
    bool               leaf;      /* user-owned (parameters, inputs): survives seg_ag_reset */
    bool               keep;      /* intermediate whose value the caller reads after backward */
    int                pending;   /* recorded nodes that still need this value */
};

enum seg_status seg_ag_create(struct seg_backend *be, struct seg_ag **out);
void seg_ag_destroy(struct seg_ag *ag);
/* Frees every node and intermediate variable of the step. Leaves keep values and grads. */
void seg_ag_reset(struct seg_ag *ag);
/* Returns the previous setting. */
bool seg_ag_set_grad_enabled(struct seg_ag *ag, bool on);
struct seg_backend *seg_ag_backend(const struct seg_ag *ag);
/* The data-parallel job of this tape (c must outlive it; NULL: one process), for
 * seg_ag_allreduce_sum; with sync_bn, batch-statistics batch norm normalizes with the
 * statistics of the whole global batch (synchronized BN): forward and backward each sum
 * per-channel moments over the ranks. A recorded node that communicates runs its backward
 * on every rank, with a zero gradient where none reached it, so that the ranks' collectives
 * stay paired whatever their losses. */
void seg_ag_set_collective(struct seg_ag *ag, const struct seg_collective *c, bool sync_bn);
const struct seg_collective *seg_ag_collective(const struct seg_ag *ag);

/* Leaves: a user-owned variable around t (which it takes over). */
enum seg_status seg_var_leaf_new(struct seg_tensor *t, bool requires_grad, struct seg_var **out);
void seg_var_leaf_free(struct seg_var *v);
/* Frees and clears v's gradient. */
void seg_var_zero_grad(struct seg_var *v);
/* Marks an intermediate so backward keeps its value (for metrics, pseudo labels, ...). */
void seg_var_keep(struct seg_var *v);
/* The caller will not read v's value again: it is freed now if no recorded node needs it,
 * else as soon as the last one has run its backward (forward-time memory saving). */
void seg_var_done(struct seg_var *v);

/* A constant owned by the tape (takes over t). */
enum seg_status seg_ag_const(struct seg_ag *ag, struct seg_tensor *t, struct seg_var **out);
/* The same value, cut from the graph. */
enum seg_status seg_ag_detach(struct seg_ag *ag, struct seg_var *x, struct seg_var **out);

/* Backpropagates d(loss)/d(loss) = 1 (loss has one element). Accumulates into leaves. */
enum seg_status seg_ag_backward(struct seg_ag *ag, struct seg_var *loss);
/* Peak bytes of device memory since seg_ag_create or the last reset of the backend's peak. */

/* ---- differentiable ops ---- */
enum seg_status seg_ag_binary(struct seg_ag *ag, enum seg_binary_fn fn, struct seg_var *a,
                              struct seg_var *b, struct seg_var **out);
enum seg_status seg_ag_add(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, struct seg_var **out);
enum seg_status seg_ag_sub(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, struct seg_var **out);
enum seg_status seg_ag_mul(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, struct seg_var **out);
enum seg_status seg_ag_div(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, struct seg_var **out);
enum seg_status seg_ag_unary(struct seg_ag *ag, enum seg_unary_fn fn, struct seg_var *x, float p0,
                             float p1, struct seg_var **out);
/* p0 * x + p1 */
enum seg_status seg_ag_affine(struct seg_ag *ag, struct seg_var *x, float scale, float shift,
                              struct seg_var **out);
enum seg_status seg_ag_relu(struct seg_ag *ag, struct seg_var *x, struct seg_var **out);
enum seg_status seg_ag_reduce(struct seg_ag *ag, enum seg_reduce_fn fn, struct seg_var *x, int axis,
                              bool keepdim, struct seg_var **out);
/* Sum or mean of every element, as a [1] variable. */
enum seg_status seg_ag_sum_all(struct seg_ag *ag, struct seg_var *x, struct seg_var **out);
enum seg_status seg_ag_mean_all(struct seg_ag *ag, struct seg_var *x, struct seg_var **out);
enum seg_status seg_ag_softmax(struct seg_ag *ag, struct seg_var *x, int axis, bool log,
                               struct seg_var **out);
enum seg_status seg_ag_reshape(struct seg_ag *ag, struct seg_var *x, int ndim, const int64_t *shape,
                               struct seg_var **out);
enum seg_status seg_ag_permute(struct seg_ag *ag, struct seg_var *x, const int *perm,
                               struct seg_var **out);
enum seg_status seg_ag_slice(struct seg_ag *ag, struct seg_var *x, int axis, int64_t start,
                             int64_t len, struct seg_var **out);
/* out[o][j][i] = x[o][idx[o][j][i]][i] along axis (idx I32, a constant; see GATHER in
 * ops.def); the gradient scatter-adds into x, so an index may repeat. */
enum seg_status seg_ag_gather(struct seg_ag *ag, struct seg_var *x, int axis,
                              const struct seg_tensor *idx, struct seg_var **out);
enum seg_status seg_ag_concat(struct seg_ag *ag, struct seg_var **xs, int n, int axis,
                              struct seg_var **out);
enum seg_status seg_ag_matmul(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, bool trans_a,
                              bool trans_b, struct seg_var **out);
enum seg_status seg_ag_conv2d(struct seg_ag *ag, struct seg_var *x, struct seg_var *w,
                              struct seg_var *b, const struct seg_conv2d_params *p,
                              struct seg_var **out);
enum seg_status seg_ag_maxpool2d(struct seg_ag *ag, struct seg_var *x,
                                 const struct seg_pool2d_params *p, struct seg_var **out);
enum seg_status seg_ag_resize_bilinear(struct seg_ag *ag, struct seg_var *x, int64_t oh, int64_t ow,
                                       bool align_corners, struct seg_var **out);

/* The sum of x over the ranks of the tape's job (x itself in one process); its gradient is
 * the sum over the ranks of theirs (global prototypes, class statistics). */
enum seg_status seg_ag_allreduce_sum(struct seg_ag *ag, struct seg_var *x, struct seg_var **out);

/* Values of x sorted along its last axis; *indices (owned by the tape) are the source positions. */
enum seg_status seg_ag_sort(struct seg_ag *ag, struct seg_var *x, bool descending,
                            struct seg_var **values, struct seg_var **indices);

enum seg_bn_mode {
    SEG_BN_BATCH_STATS, /* statistics of the batch; running stats updated (train mode) */
    SEG_BN_FROZEN,      /* running statistics (eval mode, or fully frozen BN) */
};
/* gamma/beta may be NULL (no affine). running_mean/var are plain tensors, updated in
 * SEG_BN_BATCH_STATS mode with PyTorch's momentum rule (unbiased variance). With a
 * collective of several ranks (seg_ag_set_collective), batch statistics are the global
 * batch's; every rank must hold the same number of samples. */
enum seg_status seg_ag_batchnorm(struct seg_ag *ag, struct seg_var *x, struct seg_var *gamma,
                                 struct seg_var *beta, struct seg_tensor *running_mean,
                                 struct seg_tensor *running_var, enum seg_bn_mode mode,
                                 float momentum, float eps, struct seg_var **out);

/* Mean cross-entropy of logits [N, C, ...] against I32 labels [N, ...] (ignore_index skipped,
 * optional class weights), as a [1] variable. */
enum seg_status seg_ag_cross_entropy(struct seg_ag *ag, struct seg_var *logits,
                                     const struct seg_tensor *labels,
                                     const struct seg_tensor *weights, int ignore_index,
                                     struct seg_var **out);
/* The same, but 0 with a zero gradient where every pixel is ignored (PyTorch: NaN): a
 * method whose pseudo labels may be empty needs no host test of their count. */
enum seg_status seg_ag_cross_entropy_or_zero(struct seg_ag *ag, struct seg_var *logits,
                                             const struct seg_tensor *labels,
                                             const struct seg_tensor *weights, int ignore_index,
                                             struct seg_var **out);

#endif
