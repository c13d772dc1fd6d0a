/* cases.c: the op-case table: every row of ops.def and the composites built on them,
 * at small and odd shapes and at the DeepLab-v2 dilations. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "harness.h"
#include "model/losses.h"

#define TRY(expr) SEG_TRY(expr)

/* ---- forward / backward functions --------------------------------------------------- */

static enum seg_status f_fill(const struct h_case *c, struct seg_tensor **in,
                              struct seg_tensor **out, int *nout)
{
    TRY(seg_clone(in[0], &out[0]));
    *nout = 1;
    return in[0]->dtype == SEG_DTYPE_F32 ? seg_fill(out[0], c->fp[0]) : seg_fill_i32(out[0], c->ip[0]);
}

static enum seg_status f_cast(const struct h_case *c, struct seg_tensor **in,
                              struct seg_tensor **out, int *nout)
{
    *nout = 1;
    if (c->ip[0] != SEG_DTYPE_U8)
        return seg_cast(in[0], (enum seg_dtype)c->ip[0], &out[0]);
    /* U8 results are checked after casting back to I32. */
    struct seg_tensor *u = NULL;
    TRY(seg_cast(in[0], SEG_DTYPE_U8, &u));
    enum seg_status st = seg_cast(u, SEG_DTYPE_I32, &out[0]);
    seg_tensor_free(u);
    return st;
}

static enum seg_status f_binary(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_binary((enum seg_binary_fn)c->ip[0], in[0], in[1], &out[0]);
}

static enum seg_status b_binary(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, const struct seg_tensor *dy,
                                struct seg_tensor **din)
{
    return seg_binary_bwd((enum seg_binary_fn)c->ip[0], in[0], in[1], dy, &din[0], &din[1]);
}

static enum seg_status f_expand(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    int64_t shape[4] = {c->ip[1], c->ip[2], c->ip[3], c->ip[4]};
    *nout = 1;
    return seg_expand(in[0], c->ip[0], shape, &out[0]);
}

static enum seg_status b_expand(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, const struct seg_tensor *dy,
                                struct seg_tensor **din)
{
    return seg_reduce_to_shape(dy, in[0]->ndim, in[0]->shape, &din[0]);
}

static enum seg_status f_unary(const struct h_case *c, struct seg_tensor **in,
                               struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_unary((enum seg_unary_fn)c->ip[0], in[0], c->fp[0], c->fp[1], &out[0]);
}

static enum seg_status b_unary(const struct h_case *c, struct seg_tensor **in,
                               struct seg_tensor **out, const struct seg_tensor *dy,
                               struct seg_tensor **din)
{
    return seg_unary_bwd((enum seg_unary_fn)c->ip[0], in[0], dy, c->fp[0], c->fp[1], &din[0]);
}

/* UNARY_BWD checked on its own across backends (its gradient check is UNARY's). */
static enum seg_status f_unary_bwd(const struct h_case *c, struct seg_tensor **in,
                                   struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_unary_bwd((enum seg_unary_fn)c->ip[0], in[0], in[1], c->fp[0], c->fp[1], &out[0]);
}

static enum seg_status f_where(const struct h_case *c, struct seg_tensor **in,
                               struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_where(in[0], in[1], in[2], &out[0]);
}

static enum seg_status b_where(const struct h_case *c, struct seg_tensor **in,
                               struct seg_tensor **out, const struct seg_tensor *dy,
                               struct seg_tensor **din)
{
    return seg_where_bwd(in[0], dy, &din[1], &din[2]);
}

static enum seg_status f_reduce(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    *nout = 1;
    if (c->ip[3])
        return seg_reduce_all((enum seg_reduce_fn)c->ip[0], in[0], &out[0]);
    return seg_reduce((enum seg_reduce_fn)c->ip[0], in[0], c->ip[1], c->ip[2], &out[0]);
}

static enum seg_status b_reduce(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, const struct seg_tensor *dy,
                                struct seg_tensor **din)
{
    return seg_reduce_bwd((enum seg_reduce_fn)c->ip[0], in[0], c->ip[1], out[0], dy, &din[0]);
}

static enum seg_status f_argreduce(const struct h_case *c, struct seg_tensor **in,
                                   struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_argreduce(c->ip[0], in[0], c->ip[1], c->ip[2], &out[0]);
}

static enum seg_status f_softmax(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_softmax(in[0], c->ip[0], c->ip[1], &out[0]);
}

static enum seg_status b_softmax(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, const struct seg_tensor *dy,
                                 struct seg_tensor **din)
{
    return seg_softmax_bwd(out[0], dy, c->ip[0], c->ip[1], &din[0]);
}

static enum seg_status f_softmax_bwd(const struct h_case *c, struct seg_tensor **in,
                                     struct seg_tensor **out, int *nout)
{
    struct seg_tensor *y = NULL;
    TRY(seg_softmax(in[0], c->ip[0], c->ip[1], &y));
    enum seg_status st = seg_softmax_bwd(y, in[1], c->ip[0], c->ip[1], &out[0]);
    seg_tensor_free(y);
    *nout = 1;
    return st;
}

/* in: logits, labels, [weights]. out[0] = mean loss, out[1] = per-pixel terms, out[2] = wsum. */
static enum seg_status f_ce(const struct h_case *c, struct seg_tensor **in,
                            struct seg_tensor **out, int *nout)
{
    const struct seg_tensor *w = c->nin > 2 ? in[2] : NULL;
    TRY(seg_cross_entropy(in[0], in[1], w, 255, false, &out[0], &out[2]));
    *nout = 3;
    return seg_cross_entropy_terms(in[0], in[1], w, 255, &out[1]);
}

static enum seg_status b_ce(const struct h_case *c, struct seg_tensor **in,
                            struct seg_tensor **out, const struct seg_tensor *dy,
                            struct seg_tensor **din)
{
    const struct seg_tensor *w = c->nin > 2 ? in[2] : NULL;
    return seg_cross_entropy_grad(in[0], in[1], w, 255, out[2], dy, &din[0]);
}

static enum seg_status f_ce_bwd(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    const struct seg_tensor *w = c->nin > 3 ? in[3] : NULL;
    *nout = 1;
    return seg_cross_entropy_bwd(in[0], in[1], w, in[2], 255, &out[0]);
}

static enum seg_status f_matmul(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    *nout = 1;
    if (c->nin > 2) {
        TRY(seg_clone(in[2], &out[0]));
        return seg_matmul(in[0], in[1], c->ip[0], c->ip[1], c->fp[0], c->fp[1], &out[0]);
    }
    return seg_matmul(in[0], in[1], c->ip[0], c->ip[1], c->fp[0], 0.0f, &out[0]);
}

static enum seg_status b_matmul(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, const struct seg_tensor *dy,
                                struct seg_tensor **din)
{
    return seg_matmul_bwd(in[0], in[1], c->ip[0], c->ip[1], c->fp[0], dy, &din[0], &din[1]);
}

static struct seg_conv2d_params conv_p(const struct h_case *c)
{
    struct seg_conv2d_params p = {c->ip[2], c->ip[2], c->ip[3], c->ip[3], c->ip[4], c->ip[4]};
    return p;
}

static enum seg_status f_im2col(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    struct seg_conv2d_params p = conv_p(c);
    *nout = 1;
    return seg_im2col(in[0], c->ip[0], c->ip[1], &p, &out[0]);
}

static enum seg_status b_im2col(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, const struct seg_tensor *dy,
                                struct seg_tensor **din)
{
    struct seg_conv2d_params p = conv_p(c);
    return seg_col2im(dy, in[0]->shape, c->ip[0], c->ip[1], &p, &din[0]);
}

/* in[0] is an image whose im2col shape gives the columns; in[1] the columns. */
static enum seg_status f_col2im(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    struct seg_conv2d_params p = conv_p(c);
    *nout = 1;
    return seg_col2im(in[1], in[0]->shape, c->ip[0], c->ip[1], &p, &out[0]);
}

static enum seg_status f_conv(const struct h_case *c, struct seg_tensor **in,
                              struct seg_tensor **out, int *nout)
{
    struct seg_conv2d_params p = conv_p(c);
    *nout = 1;
    return seg_conv2d(in[0], in[1], c->nin > 2 ? in[2] : NULL, &p, &out[0]);
}

static enum seg_status b_conv(const struct h_case *c, struct seg_tensor **in,
                              struct seg_tensor **out, const struct seg_tensor *dy,
                              struct seg_tensor **din)
{
    struct seg_conv2d_params p = conv_p(c);
    TRY(seg_conv2d_bwd_data(dy, in[1], in[0]->shape, &p, &din[0]));
    return seg_conv2d_bwd_weight(in[0], dy, in[1]->shape, &p, &din[1], c->nin > 2 ? &din[2] : NULL);
}

static enum seg_status f_bn_stats(const struct h_case *c, struct seg_tensor **in,
                                  struct seg_tensor **out, int *nout)
{
    *nout = 2;
    return seg_batchnorm_stats(in[0], &out[0], &out[1]);
}

/* Training-mode batch norm: in x, gamma, beta; out y, mean, var. */
static enum seg_status f_bn_train(const struct h_case *c, struct seg_tensor **in,
                                  struct seg_tensor **out, int *nout)
{
    TRY(seg_batchnorm_stats(in[0], &out[1], &out[2]));
    *nout = 3;
    return seg_batchnorm(in[0], out[1], out[2], in[1], in[2], 1e-5f, &out[0]);
}

static enum seg_status b_bn_train(const struct h_case *c, struct seg_tensor **in,
                                  struct seg_tensor **out, const struct seg_tensor *dy,
                                  struct seg_tensor **din)
{
    return seg_batchnorm_bwd(in[0], dy, out[1], out[2], in[1], 1e-5f, true, &din[0], &din[1],
                             &din[2]);
}

/* Frozen statistics: in x, mean, var, gamma, beta. */
static enum seg_status f_bn_frozen(const struct h_case *c, struct seg_tensor **in,
                                   struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_batchnorm(in[0], in[1], in[2], c->nin > 3 ? in[3] : NULL,
                         c->nin > 4 ? in[4] : NULL, 1e-5f, &out[0]);
}

static enum seg_status b_bn_frozen(const struct h_case *c, struct seg_tensor **in,
                                   struct seg_tensor **out, const struct seg_tensor *dy,
                                   struct seg_tensor **din)
{
    return seg_batchnorm_bwd(in[0], dy, in[1], in[2], c->nin > 3 ? in[3] : NULL, 1e-5f, false,
                             &din[0], c->nin > 3 ? &din[3] : NULL, c->nin > 4 ? &din[4] : NULL);
}

static struct seg_pool2d_params pool_p(const struct h_case *c)
{
    struct seg_pool2d_params p = {c->ip[0], c->ip[0], c->ip[1], c->ip[1], c->ip[2], c->ip[2], c->ip[3]};
    return p;
}

static enum seg_status f_maxpool(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, int *nout)
{
    struct seg_pool2d_params p = pool_p(c);
    *nout = 2;
    return seg_maxpool2d(in[0], &p, &out[0], &out[1]);
}

static enum seg_status b_maxpool(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, const struct seg_tensor *dy,
                                 struct seg_tensor **din)
{
    struct seg_pool2d_params p = pool_p(c);
    return seg_maxpool2d_bwd(dy, out[1], in[0]->shape, &p, &din[0]);
}

static enum seg_status f_maxpool_bwd(const struct h_case *c, struct seg_tensor **in,
                                     struct seg_tensor **out, int *nout)
{
    struct seg_pool2d_params p = pool_p(c);
    struct seg_tensor *y = NULL, *ix = NULL, *dy = NULL;
    TRY(seg_maxpool2d(in[0], &p, &y, &ix));
    enum seg_status st = seg_tensor_new_like(y, &dy);
    if (!st)
        st = seg_rng_uniform(dy, 7, 1);
    if (!st)
        st = seg_maxpool2d_bwd(dy, ix, in[0]->shape, &p, &out[0]);
    seg_tensor_free(y);
    seg_tensor_free(ix);
    seg_tensor_free(dy);
    *nout = 1;
    return st;
}

static enum seg_status f_bilinear(const struct h_case *c, struct seg_tensor **in,
                                  struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_resize_bilinear(in[0], c->ip[0], c->ip[1], c->ip[2], &out[0]);
}

static enum seg_status b_bilinear(const struct h_case *c, struct seg_tensor **in,
                                  struct seg_tensor **out, const struct seg_tensor *dy,
                                  struct seg_tensor **din)
{
    return seg_resize_bilinear_bwd(dy, in[0]->shape[in[0]->ndim - 2],
                                   in[0]->shape[in[0]->ndim - 1], c->ip[2], &din[0]);
}

/* in[0] gives the forward's input size, in[1] is dy. */
static enum seg_status f_bilinear_bwd(const struct h_case *c, struct seg_tensor **in,
                                      struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_resize_bilinear_bwd(in[1], in[0]->shape[in[0]->ndim - 2],
                                   in[0]->shape[in[0]->ndim - 1], c->ip[2], &out[0]);
}

static enum seg_status f_nearest(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_resize_nearest(in[0], c->ip[0], c->ip[1], &out[0]);
}

static enum seg_status f_one_hot(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_one_hot(in[0], c->ip[0], &out[0]);
}

static enum seg_status f_gather(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_gather(in[0], c->ip[0], in[1], &out[0]);
}

static enum seg_status b_gather(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, const struct seg_tensor *dy,
                                struct seg_tensor **din)
{
    return seg_gather_bwd(in[0], c->ip[0], in[1], dy, &din[0]);
}

static enum seg_status f_scatter(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_scatter_add(in[0], c->ip[0], in[1], c->ip[1], c->ip[2], &out[0]);
}

static enum seg_status b_scatter(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, const struct seg_tensor *dy,
                                 struct seg_tensor **din)
{
    return seg_gather(dy, c->ip[0], in[1], &din[0]);
}

static enum seg_status f_slice(const struct h_case *c, struct seg_tensor **in,
                               struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_slice(in[0], c->ip[0], c->ip[1], c->ip[2], &out[0]);
}

static enum seg_status b_slice(const struct h_case *c, struct seg_tensor **in,
                               struct seg_tensor **out, const struct seg_tensor *dy,
                               struct seg_tensor **din)
{
    return seg_slice_bwd(in[0], c->ip[0], c->ip[1], dy, &din[0]);
}

static enum seg_status f_slice_assign(const struct h_case *c, struct seg_tensor **in,
                                      struct seg_tensor **out, int *nout)
{
    TRY(seg_clone(in[0], &out[0]));
    *nout = 1;
    return seg_slice_assign(out[0], c->ip[0], c->ip[1], in[1]);
}

static enum seg_status f_concat(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    const struct seg_tensor *xs[3] = {in[0], in[1], in[2]};
    *nout = 1;
    return seg_concat(xs, c->nin, c->ip[0], &out[0]);
}

static enum seg_status f_permute(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_permute(in[0], c->ip, &out[0]);
}

static enum seg_status b_permute(const struct h_case *c, struct seg_tensor **in,
                                 struct seg_tensor **out, const struct seg_tensor *dy,
                                 struct seg_tensor **din)
{
    return seg_permute_bwd(dy, c->ip, &din[0]);
}

static enum seg_status f_sort(const struct h_case *c, struct seg_tensor **in,
                              struct seg_tensor **out, int *nout)
{
    *nout = 2;
    return seg_sort(in[0], c->ip[0], &out[0], &out[1]);
}

static enum seg_status b_sort(const struct h_case *c, struct seg_tensor **in,
                              struct seg_tensor **out, const struct seg_tensor *dy,
                              struct seg_tensor **din)
{
    return seg_sort_bwd(out[1], dy, &din[0]);
}

static enum seg_status f_cumsum(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_cumsum(in[0], c->ip[0], c->ip[1], &out[0]);
}

static enum seg_status b_cumsum(const struct h_case *c, struct seg_tensor **in,
                                struct seg_tensor **out, const struct seg_tensor *dy,
                                struct seg_tensor **din)
{
    return seg_cumsum(dy, c->ip[0], !c->ip[1], &din[0]);
}

static enum seg_status f_rng(const struct h_case *c, struct seg_tensor **in,
                             struct seg_tensor **out, int *nout)
{
    TRY(seg_clone(in[0], &out[0]));
    *nout = 1;
    return seg_rng_uniform(out[0], (uint32_t)c->ip[0], (uint32_t)c->ip[1]);
}

static enum seg_status f_sgd(const struct h_case *c, struct seg_tensor **in,
                             struct seg_tensor **out, int *nout)
{
    TRY(seg_clone(in[0], &out[0]));
    TRY(seg_clone(in[1], &out[1]));
    *nout = 2;
    for (int s = 0; s < 3; s++) /* three steps: the first initializes the momentum */
        TRY(seg_sgd_step(out[0], out[1], in[2], c->fp[0], 0.9f, 5e-4f, s == 0, NULL));
    return SEG_STATUS_OK;
}

static enum seg_status f_adam(const struct h_case *c, struct seg_tensor **in,
                              struct seg_tensor **out, int *nout)
{
    TRY(seg_clone(in[0], &out[0]));
    TRY(seg_clone(in[1], &out[1]));
    TRY(seg_clone(in[2], &out[2]));
    *nout = 3;
    for (int s = 1; s <= 3; s++)
        TRY(seg_adam_step(out[0], out[1], out[2], in[3], c->fp[0], 0.9f, 0.99f, 1e-8f, 0.0f, 0.0f, s, NULL));
    return SEG_STATUS_OK;
}

/* The flag over the input with element ip[0] (if >= 0) replaced by NaN (ip[1] = 0) or
 * -Inf (ip[1] = 1); tests/test_step_gate.c checks hand-made cases on every backend. */
static enum seg_status f_nonfinite(const struct h_case *c, struct seg_tensor **in,
                                   struct seg_tensor **out, int *nout)
{
    int64_t one[1] = {1};
    struct seg_tensor *x = NULL, *v = NULL, *bad = NULL;
    TRY(seg_clone(in[0], &x));
    enum seg_status st = SEG_STATUS_OK;
    if (c->ip[0] >= 0) {
        st = seg_tensor_view(x, c->ip[0], 1, one, &v);
        if (!st) st = seg_tensor_new(x->be, SEG_DTYPE_F32, 1, one, &bad);
        if (!st) st = seg_fill(bad, c->ip[1] ? -INFINITY : NAN);
        if (!st) st = seg_tensor_copy(v, bad);
    }
    if (!st) st = seg_tensor_new(x->be, SEG_DTYPE_F32, 1, one, &out[0]);
    if (!st) st = seg_nonfinite_any(x, out[0]);
    *nout = 1;
    seg_tensor_free(v);
    seg_tensor_free(bad);
    seg_tensor_free(x);
    return st;
}

/* ---- composites through autograd: losses built from ops -------------------------------- */

typedef enum seg_status (*ag_fn)(const struct h_case *c, struct seg_ag *ag, struct seg_var **in,
                                 const struct seg_tensor *const *raw, struct seg_var **out);

static enum seg_status ag_bce(const struct h_case *c, struct seg_ag *ag, struct seg_var **in,
                              const struct seg_tensor *const *raw, struct seg_var **out)
{
    return seg_ag_bce_with_logits(ag, in[0], raw[1], out);
}

static enum seg_status ag_bce_const(const struct h_case *c, struct seg_ag *ag, struct seg_var **in,
                                    const struct seg_tensor *const *raw, struct seg_var **out)
{
    return seg_ag_bce_with_logits_const(ag, in[0], c->fp[0], out);
}

static enum seg_status ag_mse(const struct h_case *c, struct seg_ag *ag, struct seg_var **in,
                              const struct seg_tensor *const *raw, struct seg_var **out)
{
    return seg_ag_mse(ag, in[0], in[1], out);
}

static enum seg_status ag_kl(const struct h_case *c, struct seg_ag *ag, struct seg_var **in,
                             const struct seg_tensor *const *raw, struct seg_var **out)
{
    struct seg_var *lq;
    enum seg_status st = seg_ag_softmax(ag, in[0], 1, true, &lq);
    return st ? st : seg_ag_kl_div(ag, lq, in[1], out);
}

static enum seg_status ag_entropy(const struct h_case *c, struct seg_ag *ag, struct seg_var **in,
                                  const struct seg_tensor *const *raw, struct seg_var **out)
{
    return seg_ag_entropy(ag, in[0], out);
}

static enum seg_status ag_dropout(const struct h_case *c, struct seg_ag *ag, struct seg_var **in,
                                  const struct seg_tensor *const *raw, struct seg_var **out)
{
    return seg_ag_dropout(ag, in[0], c->fp[0], 11, 5, out);
}

static enum seg_status ag_lovasz(const struct h_case *c, struct seg_ag *ag, struct seg_var **in,
                                 const struct seg_tensor *const *raw, struct seg_var **out)
{
    struct seg_var *p;
    enum seg_status st = seg_ag_softmax(ag, in[0], 1, false, &p);
    return st ? st : seg_ag_lovasz_softmax(ag, p, raw[1], 255, out);
}

static const ag_fn ag_fns[] = {ag_bce, ag_bce_const, ag_mse, ag_kl, ag_entropy, ag_dropout, ag_lovasz};
enum { AG_BCE, AG_BCE_CONST, AG_MSE, AG_KL, AG_ENTROPY, AG_DROPOUT, AG_LOVASZ };

/* Runs the composite on a fresh tape; grads: leaves for the differentiable inputs. */
static enum seg_status ag_run(const struct h_case *c, struct seg_tensor **in, bool grads,
                              const struct seg_tensor *dy, struct seg_tensor **result,
                              struct seg_tensor **din)
{
    struct seg_backend *be = in[0]->be;
    struct seg_ag *ag = NULL;
    struct seg_var *leaves[H_MAX_IN] = {0}, *y = NULL;
    TRY(seg_ag_create(be, &ag));
    enum seg_status st = SEG_STATUS_OK;
    for (int i = 0; i < c->nin && !st; i++) {
        struct seg_tensor *t = NULL;
        st = seg_clone(in[i], &t);
        if (!st)
            st = seg_var_leaf_new(t, grads && !c->in[i].no_grad, &leaves[i]);
        else
            seg_tensor_free(t);
    }
    if (!st)
        st = ag_fns[c->ip[7]](c, ag, leaves, (const struct seg_tensor *const *)in, &y);
    if (!st && result)
        st = seg_clone(y->value, result);
    if (!st && grads) {
        struct seg_tensor *dyc = NULL;
        struct seg_var *dv, *prod, *sum;
        st = seg_clone(dy, &dyc);
        if (!st) st = seg_ag_const(ag, dyc, &dv);
        else seg_tensor_free(dyc);
        if (!st) st = seg_ag_mul(ag, y, dv, &prod);
        if (!st) st = seg_ag_sum_all(ag, prod, &sum);
        if (!st) st = seg_ag_backward(ag, sum);
        for (int i = 0; i < c->nin && !st; i++)
            if (leaves[i]->grad) {
                din[i] = leaves[i]->grad;
                leaves[i]->grad = NULL;
            }
    }
    for (int i = 0; i < c->nin; i++)
        seg_var_leaf_free(leaves[i]);
    seg_ag_destroy(ag);
    return st;
}

static enum seg_status f_ag(const struct h_case *c, struct seg_tensor **in,
                            struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return ag_run(c, in, false, NULL, &out[0], NULL);
}

static enum seg_status b_ag(const struct h_case *c, struct seg_tensor **in,
                            struct seg_tensor **out, const struct seg_tensor *dy,
                            struct seg_tensor **din)
{
    return ag_run(c, in, true, dy, NULL, din);
}

static enum seg_status f_topk(const struct h_case *c, struct seg_tensor **in,
                              struct seg_tensor **out, int *nout)
{
    *nout = 2;
    return seg_topk(in[0], c->ip[0], &out[0], &out[1]);
}

/* bench kernels: PEAK_FMA (b = 0.75, c = 0.25: the chains stay finite) and CONV2D_DIRECT
 * (ip as conv2d's cases; a third input is the bias). */
static enum seg_status f_peak_fma(const struct h_case *c, struct seg_tensor **in,
                                  struct seg_tensor **out, int *nout)
{
    *nout = 1;
    return seg_peak_fma(in[0], c->ip[0], c->fp[0], c->fp[1], &out[0]);
}

static enum seg_status f_conv_direct(const struct h_case *c, struct seg_tensor **in,
                                     struct seg_tensor **out, int *nout)
{
    struct seg_conv2d_params p = conv_p(c);
    *nout = 1;
    return seg_conv2d_direct(in[0], in[1], c->nin > 2 ? in[2] : NULL, &p, &out[0]);
}

/* ---- the table -------------------------------------------------------------------------- */

struct builder {
    struct h_case *v;
    int            n, cap;
};

static struct h_input IN(enum seg_dtype dt, enum h_init init, float lo, float hi, int ndim, ...)
{
    struct h_input x;
    memset(&x, 0, sizeof x);
    x.dtype = dt;
    x.init = init;
    x.lo = lo;
    x.hi = hi;
    x.classes = (int)hi;
    x.ndim = ndim;
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++)
        x.shape[i] = va_arg(ap, int);
    va_end(ap);
    if (dt != SEG_DTYPE_F32)
        x.no_grad = true;
    return x;
}
#define F(...)      IN(SEG_DTYPE_F32, H_UNIFORM, -1.0f, 1.0f, __VA_ARGS__)
#define FA(...)     IN(SEG_DTYPE_F32, H_AWAY, -1.0f, 1.0f, __VA_ARGS__)
#define FP(...)     IN(SEG_DTYPE_F32, H_POSITIVE, 0.5f, 2.0f, __VA_ARGS__)
#define LBL(c, ...) IN(SEG_DTYPE_I32, H_LABELS, 0, (float)(c), __VA_ARGS__)
#define IDX(c, ...) IN(SEG_DTYPE_I32, H_INDEX, 0, (float)(c), __VA_ARGS__)
#define FD(lo, ...) IN(SEG_DTYPE_F32, H_DISTINCT, lo, 0, __VA_ARGS__)

static struct h_case *add(struct builder *b, const char *name, enum seg_op op, h_fwd_fn fwd,
                          h_bwd_fn bwd, double tol, const char *fmt, ...)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = realloc(b->v, (size_t)b->cap * sizeof *b->v);
    }
    struct h_case *c = &b->v[b->n++];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->op = op;
    c->fwd = fwd;
    c->bwd = bwd;
    c->tol = tol;
    c->grad_tol = 2e-2;
    c->grad_eps = 1e-2;
    c->exact_int = true;
    c->seed = 1234u + (uint32_t)b->n * 7919u;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->params, sizeof c->params, fmt, ap);
    va_end(ap);
    return c;
}

static void inputs(struct h_case *c, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        c->in[i] = va_arg(ap, struct h_input);
    va_end(ap);
    c->nin = n;
}

static const char *const bin_names[] = {"add", "sub", "mul", "div", "pow", "max", "min",
                                        "eq",  "ne",  "lt",  "le",  "gt",  "ge"};
static const char *const un_names[] = {"neg", "exp", "log", "sqrt", "abs", "relu", "leaky_relu",
                                       "sigmoid", "softplus", "tanh", "affine", "clamp", "pows",
                                       "square", "recip"};
static const char *const red_names[] = {"sum", "mean", "max", "min"};

int h_cases_build(struct h_case **cases)
{
    struct builder b = {0};
    struct h_case *c;
    const double PW = 1e-5, RD = 1e-4, MM = 1e-4;

    c = add(&b, "FILL", SEG_OP_FILL, f_fill, NULL, 0, "x=[3,5,7] f32 v=2.5");
    inputs(c, 1, F(3, 3, 5, 7));
    c->fp[0] = 2.5f;
    c = add(&b, "FILL", SEG_OP_FILL, f_fill, NULL, 0, "x=[97,13] i32 v=-7");
    inputs(c, 1, IDX(4, 2, 97, 13));
    c->ip[0] = -7;

    c = add(&b, "CAST", SEG_OP_CAST, f_cast, NULL, 0, "f32->i32 [2,3,33]");
    inputs(c, 1, IN(SEG_DTYPE_F32, H_UNIFORM, -50.0f, 50.0f, 3, 2, 3, 33));
    c->ip[0] = SEG_DTYPE_I32;
    c = add(&b, "CAST", SEG_OP_CAST, f_cast, NULL, 0, "i32->f32 [2,3,33]");
    inputs(c, 1, IDX(1000, 3, 2, 3, 33));
    c->ip[0] = SEG_DTYPE_F32;
    c = add(&b, "CAST", SEG_OP_CAST, f_cast, NULL, 0, "i32->u8->i32 [5,37]");
    inputs(c, 1, IDX(256, 2, 5, 37));
    c->ip[0] = SEG_DTYPE_U8;
    c = add(&b, "CAST", SEG_OP_CAST, f_cast, NULL, 0, "u8->f32 [3,41]");
    inputs(c, 1, IN(SEG_DTYPE_U8, H_BYTES, 0, 255, 2, 3, 41));
    c->ip[0] = SEG_DTYPE_F32;

    for (int fn = 0; fn < SEG_BINARY_COUNT; fn++) {
        bool cmp = fn >= SEG_BINARY_EQ;
        c = add(&b, "BINARY", SEG_OP_BINARY, f_binary, cmp ? NULL : b_binary, PW,
                "%s a=[2,3,9,11] b=[3,1,11]", bin_names[fn]);
        if (fn == SEG_BINARY_POW)
            inputs(c, 2, FP(4, 2, 3, 9, 11), F(3, 3, 1, 11));
        else if (fn == SEG_BINARY_DIV)
            inputs(c, 2, F(4, 2, 3, 9, 11), FP(3, 3, 1, 11));
        else if (fn == SEG_BINARY_MAX || fn == SEG_BINARY_MIN) /* a and b never within 0.005 */
            inputs(c, 2, FD(-3.0f, 4, 2, 3, 9, 11), FD(-0.995f, 3, 3, 1, 11));
        else if (cmp) /* small integers so equality happens */
            inputs(c, 2, IN(SEG_DTYPE_F32, H_TIES, 0, 1, 4, 2, 3, 9, 11),
                   IN(SEG_DTYPE_F32, H_TIES, 0, 1, 3, 3, 1, 11));
        else
            inputs(c, 2, F(4, 2, 3, 9, 11), F(3, 3, 1, 11));
        if (fn == SEG_BINARY_MAX || fn == SEG_BINARY_MIN)
            c->grad_eps = 1e-3; /* below half the 0.005 gap: no crossing */
        c->ip[0] = fn;
    }
    c = add(&b, "BINARY", SEG_OP_BINARY, f_binary, b_binary, PW, "mul a=[1,19,1,1] b=[2,19,17,23]");
    inputs(c, 2, F(4, 1, 19, 1, 1), F(4, 2, 19, 17, 23));
    c->ip[0] = SEG_BINARY_MUL;
    c = add(&b, "BINARY", SEG_OP_BINARY, f_binary, b_binary, PW, "add a=[1,3,97,131] b=[1]");
    inputs(c, 2, F(4, 1, 3, 97, 131), F(1, 1));
    c->ip[0] = SEG_BINARY_ADD;

    c = add(&b, "EXPAND", SEG_OP_EXPAND, f_expand, b_expand, 0, "[3,1,5]->[2,3,4,5]");
    inputs(c, 1, F(3, 3, 1, 5));
    c->ip[0] = 4; c->ip[1] = 2; c->ip[2] = 3; c->ip[3] = 4; c->ip[4] = 5;
    c = add(&b, "EXPAND", SEG_OP_EXPAND, f_expand, b_expand, 0, "[19,1]->[19,1000]");
    inputs(c, 1, F(2, 19, 1));
    c->ip[0] = 2; c->ip[1] = 19; c->ip[2] = 1000;

    for (int fn = 0; fn < SEG_UNARY_COUNT; fn++) {
        c = add(&b, "UNARY", SEG_OP_UNARY, f_unary, b_unary, PW, "%s x=[2,5,13,17]", un_names[fn]);
        bool pos = fn == SEG_UNARY_LOG || fn == SEG_UNARY_SQRT || fn == SEG_UNARY_POWS ||
                   fn == SEG_UNARY_RECIP;
        if (pos)
            inputs(c, 1, FP(4, 2, 5, 13, 17));
        else if (fn == SEG_UNARY_ABS || fn == SEG_UNARY_RELU || fn == SEG_UNARY_LEAKY_RELU ||
                 fn == SEG_UNARY_CLAMP)
            inputs(c, 1, IN(SEG_DTYPE_F32, H_AWAY, -2.0f, 2.0f, 4, 2, 5, 13, 17));
        else
            inputs(c, 1, IN(SEG_DTYPE_F32, H_UNIFORM, -3.0f, 3.0f, 4, 2, 5, 13, 17));
        c->ip[0] = fn;
        c->fp[0] = fn == SEG_UNARY_LEAKY_RELU ? 0.2f : (fn == SEG_UNARY_AFFINE ? 1.5f : (fn == SEG_UNARY_POWS ? 0.9f : -1.0f));
        c->fp[1] = fn == SEG_UNARY_CLAMP ? 1.0f : -0.25f;
        if (fn == SEG_UNARY_CLAMP) { /* keep inputs away from the clamp bounds */
            c->in[0].lo = -2.0f;
            c->in[0].hi = 2.0f;
            c->fp[0] = -0.5f; c->fp[1] = 0.5f;
            c->bwd = NULL; /* the kinks at +-0.5 are not avoided by the generator */
        }
        c = add(&b, "UNARY_BWD", SEG_OP_UNARY_BWD, f_unary_bwd, NULL, PW, "%s x=[3,7,11]", un_names[fn]);
        inputs(c, 2, pos ? FP(3, 3, 7, 11) : F(3, 3, 7, 11), F(3, 3, 7, 11));
        c->ip[0] = fn;
        c->fp[0] = b.v[b.n - 2].fp[0];
        c->fp[1] = b.v[b.n - 2].fp[1];
    }

    c = add(&b, "WHERE", SEG_OP_WHERE, f_where, b_where, 0, "[2,3,17,19]");
    inputs(c, 3, IN(SEG_DTYPE_F32, H_TIES, 0, 1, 4, 2, 3, 17, 19), F(4, 2, 3, 17, 19), F(4, 2, 3, 17, 19));
    c->in[0].no_grad = true;

    int axes[] = {0, 1, 3, -1};
    for (int fn = 0; fn < SEG_REDUCE_COUNT; fn++)
        for (int ai = 0; ai < 4; ai++) {
            c = add(&b, "REDUCE", SEG_OP_REDUCE, f_reduce, b_reduce, RD, "%s axis=%d x=[3,19,7,33]%s",
                    red_names[fn], axes[ai], ai == 3 ? " all" : "");
            bool extreme = fn == SEG_REDUCE_MAX || fn == SEG_REDUCE_MIN;
            inputs(c, 1, extreme ? FD(-60.0f, 4, 3, 19, 7, 33) : F(4, 3, 19, 7, 33));
            if (extreme)
                c->grad_eps = 1e-3;
            c->ip[0] = fn;
            c->ip[1] = axes[ai];
            c->ip[2] = ai & 1;
            c->ip[3] = ai == 3;
            if (ai == 3)
                c->bwd = NULL;
        }
    c = add(&b, "REDUCE", SEG_OP_REDUCE, f_reduce, NULL, RD, "sum all x=[1,3,321,321]");
    inputs(c, 1, F(4, 1, 3, 321, 321));
    c->ip[0] = SEG_REDUCE_SUM;
    c->ip[3] = 1;

    for (int am = 0; am < 2; am++)
        for (int ai = 0; ai < 3; ai++) {
            c = add(&b, "ARGREDUCE", SEG_OP_ARGREDUCE, f_argreduce, NULL, 0, "%s axis=%d x=[2,19,13,29]",
                    am ? "argmin" : "argmax", axes[ai]);
            inputs(c, 1, F(4, 2, 19, 13, 29));
            c->ip[0] = am;
            c->ip[1] = axes[ai];
        }

    for (int lg = 0; lg < 2; lg++) {
        c = add(&b, "SOFTMAX", SEG_OP_SOFTMAX, f_softmax, b_softmax, RD, "%s axis=1 x=[2,19,13,17]",
                lg ? "log_softmax" : "softmax");
        inputs(c, 1, IN(SEG_DTYPE_F32, H_UNIFORM, -5.0f, 5.0f, 4, 2, 19, 13, 17));
        c->ip[0] = 1;
        c->ip[1] = lg;
        c = add(&b, "SOFTMAX", SEG_OP_SOFTMAX, f_softmax, b_softmax, RD, "%s axis=-1 x=[37,1031]",
                lg ? "log_softmax" : "softmax");
        inputs(c, 1, IN(SEG_DTYPE_F32, H_UNIFORM, -5.0f, 5.0f, 2, 37, 1031));
        c->ip[0] = -1;
        c->ip[1] = lg;
        c = add(&b, "SOFTMAX_BWD", SEG_OP_SOFTMAX_BWD, f_softmax_bwd, NULL, RD, "%s axis=1 x=[2,19,13,17]",
                lg ? "log_softmax" : "softmax");
        inputs(c, 2, F(4, 2, 19, 13, 17), F(4, 2, 19, 13, 17));
        c->ip[0] = 1;
        c->ip[1] = lg;
    }

    c = add(&b, "CROSS_ENTROPY", SEG_OP_CROSS_ENTROPY, f_ce, b_ce, RD, "logits=[2,19,13,17] ignore=255");
    inputs(c, 2, IN(SEG_DTYPE_F32, H_UNIFORM, -4.0f, 4.0f, 4, 2, 19, 13, 17), LBL(19, 3, 2, 13, 17));
    c = add(&b, "CROSS_ENTROPY", SEG_OP_CROSS_ENTROPY, f_ce, b_ce, RD, "logits=[1,7,33,9] weights");
    inputs(c, 3, IN(SEG_DTYPE_F32, H_UNIFORM, -4.0f, 4.0f, 4, 1, 7, 33, 9), LBL(7, 3, 1, 33, 9), FP(1, 7));
    c->in[2].no_grad = true; /* class weights are constants */
    c = add(&b, "CROSS_ENTROPY_BWD", SEG_OP_CROSS_ENTROPY_BWD, f_ce_bwd, NULL, RD, "logits=[2,19,13,17] weights");
    inputs(c, 4, IN(SEG_DTYPE_F32, H_UNIFORM, -4.0f, 4.0f, 4, 2, 19, 13, 17), LBL(19, 3, 2, 13, 17), FP(1, 1), FP(1, 19));

    struct { int ta, tb; int ba, bb; int m, n, k; } mm[] = {
        {0, 0, 0, 0, 33, 47, 65}, {1, 0, 0, 0, 33, 47, 65}, {0, 1, 0, 0, 33, 47, 65},
        {1, 1, 0, 0, 17, 9, 31},  {0, 0, 0, 3, 64, 81, 72}, {0, 1, 2, 2, 31, 29, 37},
        {0, 0, 0, 0, 256, 256, 256}, {1, 1, 2, 2, 36, 44, 52}, /* the last: vec4 loads of A^T and B^T */
    };
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
        c = add(&b, "MATMUL", SEG_OP_MATMUL, f_matmul, b_matmul, MM, "m=%d n=%d k=%d ta=%d tb=%d batch=%d,%d",
                mm[i].m, mm[i].n, mm[i].k, mm[i].ta, mm[i].tb, mm[i].ba, mm[i].bb);
        int ar = mm[i].ta ? mm[i].k : mm[i].m, ac = mm[i].ta ? mm[i].m : mm[i].k;
        int br = mm[i].tb ? mm[i].n : mm[i].k, bc = mm[i].tb ? mm[i].k : mm[i].n;
        c->in[0] = mm[i].ba ? F(3, mm[i].ba, ar, ac) : F(2, ar, ac);
        c->in[1] = mm[i].bb ? F(3, mm[i].bb, br, bc) : F(2, br, bc);
        c->nin = 2;
        c->ip[0] = mm[i].ta;
        c->ip[1] = mm[i].tb;
        c->fp[0] = i == 2 ? 0.5f : 1.0f;
        if (mm[i].m >= 256)
            c->bwd = NULL;
    }
    c = add(&b, "MATMUL", SEG_OP_MATMUL, f_matmul, NULL, MM, "m=19 n=23 k=29 alpha=2 beta=0.5");
    inputs(c, 3, F(2, 19, 29), F(2, 29, 23), F(2, 19, 23));
    c->fp[0] = 2.0f;
    c->fp[1] = 0.5f;

    /* conv shapes: kernel, stride, pad, dilation (DeepLab: 7x7/2 stem, 1x1/2, dilated 3x3). */
    struct { int n, ci, h, w, co, k, s, p, d; } cv[] = {
        {1, 3, 37, 45, 8, 7, 2, 3, 1}, {2, 8, 17, 19, 12, 1, 2, 0, 1}, {1, 8, 23, 21, 8, 3, 1, 2, 2},
        {1, 6, 29, 31, 5, 3, 1, 4, 4}, {1, 4, 41, 37, 3, 3, 1, 6, 6}, {1, 4, 53, 49, 3, 3, 1, 12, 12},
        {1, 4, 65, 61, 3, 3, 1, 18, 18}, {1, 4, 73, 67, 3, 3, 1, 24, 24}, {2, 5, 13, 11, 7, 1, 1, 0, 1},
        {1, 3, 97, 131, 4, 3, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cv / sizeof cv[0]; i++) {
        c = add(&b, "IM2COL", SEG_OP_IM2COL, f_im2col, b_im2col, 0, "x=[%d,%d,%d,%d] k=%d s=%d p=%d d=%d",
                cv[i].n, cv[i].ci, cv[i].h, cv[i].w, cv[i].k, cv[i].s, cv[i].p, cv[i].d);
        inputs(c, 1, F(4, cv[i].n, cv[i].ci, cv[i].h, cv[i].w));
        c->ip[0] = c->ip[1] = cv[i].k;
        c->ip[2] = cv[i].s;
        c->ip[3] = cv[i].p;
        c->ip[4] = cv[i].d;
        if (i > 3)
            c->bwd = NULL; /* the dilated cases are covered by conv2d's gradient below */

        int oh = (int)seg_conv2d_out_size(cv[i].h, cv[i].k, cv[i].s, cv[i].p, cv[i].d);
        int ow = (int)seg_conv2d_out_size(cv[i].w, cv[i].k, cv[i].s, cv[i].p, cv[i].d);
        c = add(&b, "COL2IM", SEG_OP_COL2IM, f_col2im, NULL, RD, "x=[%d,%d,%d,%d] k=%d s=%d p=%d d=%d",
                cv[i].n, cv[i].ci, cv[i].h, cv[i].w, cv[i].k, cv[i].s, cv[i].p, cv[i].d);
        inputs(c, 2, F(4, cv[i].n, cv[i].ci, cv[i].h, cv[i].w),
               F(3, cv[i].n, cv[i].ci * cv[i].k * cv[i].k, oh * ow));
        memcpy(c->ip, b.v[b.n - 2].ip, sizeof c->ip);

        c = add(&b, "conv2d", SEG_OP_MATMUL, f_conv, b_conv, MM, "x=[%d,%d,%d,%d] w=[%d,%d,%d,%d] s=%d p=%d d=%d%s",
                cv[i].n, cv[i].ci, cv[i].h, cv[i].w, cv[i].co, cv[i].ci, cv[i].k, cv[i].k, cv[i].s,
                cv[i].p, cv[i].d, i % 2 ? " bias" : "");
        c->in[0] = F(4, cv[i].n, cv[i].ci, cv[i].h, cv[i].w);
        c->in[1] = F(4, cv[i].co, cv[i].ci, cv[i].k, cv[i].k);
        c->in[2] = F(1, cv[i].co);
        c->nin = i % 2 ? 3 : 2;
        memcpy(c->ip, b.v[b.n - 2].ip, sizeof c->ip);
        if (cv[i].h > 60)
            c->bwd = NULL; /* big cases: forward only, to keep the finite differences fast */
    }

    c = add(&b, "BATCHNORM_STATS", SEG_OP_BATCHNORM_STATS, f_bn_stats, NULL, RD, "x=[2,13,17,19]");
    inputs(c, 1, IN(SEG_DTYPE_F32, H_UNIFORM, 1.0f, 3.0f, 4, 2, 13, 17, 19));
    c = add(&b, "BATCHNORM_STATS", SEG_OP_BATCHNORM_STATS, f_bn_stats, NULL, RD, "x=[1,3,97,131]");
    inputs(c, 1, F(4, 1, 3, 97, 131));
    c = add(&b, "BATCHNORM", SEG_OP_BATCHNORM, f_bn_train, b_bn_train, RD, "train x=[2,5,7,9]");
    inputs(c, 3, F(4, 2, 5, 7, 9), FP(1, 5), F(1, 5));
    c = add(&b, "BATCHNORM", SEG_OP_BATCHNORM, f_bn_frozen, b_bn_frozen, RD, "frozen x=[2,5,7,9] affine");
    inputs(c, 5, F(4, 2, 5, 7, 9), F(1, 5), FP(1, 5), FP(1, 5), F(1, 5));
    c->in[1].no_grad = c->in[2].no_grad = true;
    c = add(&b, "BATCHNORM", SEG_OP_BATCHNORM, f_bn_frozen, b_bn_frozen, RD, "frozen x=[1,64,11,13] no affine");
    inputs(c, 3, F(4, 1, 64, 11, 13), F(1, 64), FP(1, 64));
    c->in[1].no_grad = c->in[2].no_grad = true;
    c = add(&b, "BATCHNORM_BWD", SEG_OP_BATCHNORM_BWD, f_bn_train, b_bn_train, RD, "train x=[3,16,21,23]");
    inputs(c, 3, F(4, 3, 16, 21, 23), FP(1, 16), F(1, 16));
    c->bwd = NULL; /* compared across backends through the grad harness below */

    struct { int n, c, h, w, k, s, p, ceil; } pl[] = {
        {1, 3, 97, 131, 3, 2, 1, 1}, {2, 4, 16, 16, 3, 2, 1, 1}, {1, 2, 13, 12, 3, 2, 0, 1},
        {1, 2, 13, 12, 2, 2, 0, 0}, {1, 5, 33, 17, 3, 2, 1, 0},
    };
    for (size_t i = 0; i < sizeof pl / sizeof pl[0]; i++) {
        c = add(&b, "MAXPOOL2D", SEG_OP_MAXPOOL2D, f_maxpool, b_maxpool, 0, "x=[%d,%d,%d,%d] k=%d s=%d p=%d ceil=%d",
                pl[i].n, pl[i].c, pl[i].h, pl[i].w, pl[i].k, pl[i].s, pl[i].p, pl[i].ceil);
        inputs(c, 1, F(4, pl[i].n, pl[i].c, pl[i].h, pl[i].w));
        c->ip[0] = pl[i].k; c->ip[1] = pl[i].s; c->ip[2] = pl[i].p; c->ip[3] = pl[i].ceil;
        c->grad_eps = 1e-4; /* outputs are copies: exact, and kinks are rarely crossed */
        if (pl[i].h > 50)
            c->bwd = NULL;
        c = add(&b, "MAXPOOL2D_BWD", SEG_OP_MAXPOOL2D_BWD, f_maxpool_bwd, NULL, PW, "x=[%d,%d,%d,%d] k=%d s=%d p=%d ceil=%d",
                pl[i].n, pl[i].c, pl[i].h, pl[i].w, pl[i].k, pl[i].s, pl[i].p, pl[i].ceil);
        inputs(c, 1, F(4, pl[i].n, pl[i].c, pl[i].h, pl[i].w));
        memcpy(c->ip, b.v[b.n - 2].ip, sizeof c->ip);
    }

    struct { int nc, h, w, oh, ow, al; } rs[] = {
        {2, 13, 17, 97, 131, 0}, {2, 13, 17, 97, 131, 1}, {3, 65, 65, 33, 33, 0}, {3, 65, 65, 33, 33, 1},
        {1, 41, 41, 321, 321, 1}, {4, 7, 9, 7, 9, 0}, {2, 9, 1, 5, 3, 0}, {2, 20, 30, 13, 45, 0},
    };
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
        c = add(&b, "RESIZE_BILINEAR", SEG_OP_RESIZE_BILINEAR, f_bilinear, b_bilinear, PW * 10,
                "x=[%d,%d,%d] -> %dx%d align=%d", rs[i].nc, rs[i].h, rs[i].w, rs[i].oh, rs[i].ow, rs[i].al);
        inputs(c, 1, F(3, rs[i].nc, rs[i].h, rs[i].w));
        c->ip[0] = rs[i].oh; c->ip[1] = rs[i].ow; c->ip[2] = rs[i].al;
        if (rs[i].oh > 200)
            c->bwd = NULL;
        c = add(&b, "RESIZE_BILINEAR_BWD", SEG_OP_RESIZE_BILINEAR_BWD, f_bilinear_bwd, NULL, RD,
                "x=[%d,%d,%d] -> %dx%d align=%d", rs[i].nc, rs[i].h, rs[i].w, rs[i].oh, rs[i].ow, rs[i].al);
        inputs(c, 2, F(3, rs[i].nc, rs[i].h, rs[i].w), F(3, rs[i].nc, rs[i].oh, rs[i].ow));
        memcpy(c->ip, b.v[b.n - 2].ip, sizeof c->ip);
    }
    c = add(&b, "RESIZE_NEAREST", SEG_OP_RESIZE_NEAREST, f_nearest, NULL, 0, "labels [1,97,131] -> 49x66");
    inputs(c, 1, LBL(19, 3, 1, 97, 131));
    c->ip[0] = 49; c->ip[1] = 66;
    c = add(&b, "RESIZE_NEAREST", SEG_OP_RESIZE_NEAREST, f_nearest, NULL, 0, "f32 [2,3,13,17] -> 40x41");
    inputs(c, 1, F(4, 2, 3, 13, 17));
    c->ip[0] = 40; c->ip[1] = 41;

    c = add(&b, "ONE_HOT", SEG_OP_ONE_HOT, f_one_hot, NULL, 0, "labels [2,13,17] C=19");
    inputs(c, 1, LBL(19, 3, 2, 13, 17));
    c->ip[0] = 19;

    c = add(&b, "GATHER", SEG_OP_GATHER, f_gather, b_gather, 0, "axis=1 x=[3,19,29] idx=[3,7,29]");
    inputs(c, 2, F(3, 3, 19, 29), IDX(19, 3, 3, 7, 29));
    c->ip[0] = 1;
    c = add(&b, "GATHER", SEG_OP_GATHER, f_gather, b_gather, 0, "axis=-1 x=[5,101] idx=[5,150]");
    inputs(c, 2, F(2, 5, 101), IDX(101, 2, 5, 150));
    c->ip[0] = -1;
    c = add(&b, "SCATTER_ADD", SEG_OP_SCATTER_ADD, f_scatter, b_scatter, RD, "axis=1 x=[3,40,17] n=19");
    inputs(c, 2, F(3, 3, 40, 17), IDX(19, 3, 3, 40, 17));
    c->ip[0] = 1; c->ip[1] = 19;
    c = add(&b, "SCATTER_ADD", SEG_OP_SCATTER_ADD, f_scatter, b_scatter, 0, "unique axis=-1 x=[4,333]");
    inputs(c, 2, F(2, 4, 333), IN(SEG_DTYPE_I32, H_PERM, 0, 333, 2, 4, 333));
    c->ip[0] = -1; c->ip[1] = 333; c->ip[2] = 1;

    c = add(&b, "SLICE", SEG_OP_SLICE, f_slice, b_slice, 0, "axis=1 [2,19,7,9] 3:+11");
    inputs(c, 1, F(4, 2, 19, 7, 9));
    c->ip[0] = 1; c->ip[1] = 3; c->ip[2] = 11;
    c = add(&b, "SLICE", SEG_OP_SLICE, f_slice, b_slice, 0, "axis=-1 [5,77] 70:+7");
    inputs(c, 1, F(2, 5, 77));
    c->ip[0] = -1; c->ip[1] = 70; c->ip[2] = 7;
    c = add(&b, "SLICE_ASSIGN", SEG_OP_SLICE_ASSIGN, f_slice_assign, NULL, 0, "axis=2 [2,3,17,5] 4:+9");
    inputs(c, 2, F(4, 2, 3, 17, 5), F(4, 2, 3, 9, 5));
    c->ip[0] = 2; c->ip[1] = 4;
    c = add(&b, "concat", SEG_OP_SLICE_ASSIGN, f_concat, NULL, 0, "axis=1 [2,3,5,7]+[2,4,5,7]+[2,1,5,7]");
    inputs(c, 3, F(4, 2, 3, 5, 7), F(4, 2, 4, 5, 7), F(4, 2, 1, 5, 7));
    c->ip[0] = 1;

    int perms[][4] = {{0, 2, 3, 1}, {3, 2, 1, 0}, {1, 0, 2, 3}, {0, 1, 3, 2}};
    for (int i = 0; i < 4; i++) {
        c = add(&b, "PERMUTE", SEG_OP_PERMUTE, f_permute, b_permute, 0, "[2,19,13,11] perm=%d%d%d%d",
                perms[i][0], perms[i][1], perms[i][2], perms[i][3]);
        inputs(c, 1, F(4, 2, 19, 13, 11));
        memcpy(c->ip, perms[i], sizeof perms[i]);
    }
    c = add(&b, "PERMUTE", SEG_OP_PERMUTE, f_permute, b_permute, 0, "[37,53] perm=10");
    inputs(c, 1, F(2, 37, 53));
    c->ip[0] = 1; c->ip[1] = 0;

    struct { int rows, n, desc, ties; } so[] = {
        {3, 1000, 1, 0}, {2, 1, 0, 0}, {4, 257, 0, 0}, {3, 200, 1, 0}, {2, 4099, 1, 1}, {19, 2048, 1, 0}, {1, 70000, 1, 0},
    };
    for (size_t i = 0; i < sizeof so / sizeof so[0]; i++) {
        /* The gradient case has distinct values 0.01 apart, so the finite-difference step
         * never swaps two of them. */
        bool grad = so[i].n == 200;
        c = add(&b, "SORT", SEG_OP_SORT, f_sort, grad ? b_sort : NULL, 0, "[%d,%d] %s%s",
                so[i].rows, so[i].n, so[i].desc ? "desc" : "asc", so[i].ties ? " ties" : "");
        inputs(c, 1, so[i].ties ? IN(SEG_DTYPE_F32, H_TIES, 0, 1, 2, so[i].rows, so[i].n)
                   : grad ? FD(-3.0f, 2, so[i].rows, so[i].n) : F(2, so[i].rows, so[i].n));
        c->grad_eps = 1e-3;
        c->ip[0] = so[i].desc;
    }

    struct { int ndim, s0, s1, s2, axis, rev; } cs[] = {
        {2, 3, 1000, 0, 1, 0}, {2, 3, 1000, 0, 1, 1}, {3, 4, 33, 7, 1, 0}, {2, 2, 70000, 0, -1, 0}, {2, 19, 1, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        c = add(&b, "CUMSUM", SEG_OP_CUMSUM, f_cumsum, cs[i].s1 <= 1000 ? b_cumsum : NULL, RD,
                "[%d,%d%s] axis=%d %s", cs[i].s0, cs[i].s1, cs[i].ndim == 3 ? ",7" : "", cs[i].axis,
                cs[i].rev ? "reverse" : "");
        c->in[0] = cs[i].ndim == 3 ? F(3, cs[i].s0, cs[i].s1, cs[i].s2) : F(2, cs[i].s0, cs[i].s1);
        c->nin = 1;
        c->ip[0] = cs[i].axis;
        c->ip[1] = cs[i].rev;
        if (cs[i].s1 > 10000)
            c->tol = 1e-3; /* 70000 float additions in a different order */
    }

    c = add(&b, "RNG_UNIFORM", SEG_OP_RNG_UNIFORM, f_rng, NULL, 0, "[1000,37] seed=42 stream=3");
    inputs(c, 1, F(2, 1000, 37));
    c->ip[0] = 42; c->ip[1] = 3;

    c = add(&b, "SGD_STEP", SEG_OP_SGD_STEP, f_sgd, NULL, PW, "[1000] lr=0.01 x3");
    inputs(c, 3, F(1, 1000), F(1, 1000), F(1, 1000));
    c->fp[0] = 0.01f;
    c = add(&b, "ADAM_STEP", SEG_OP_ADAM_STEP, f_adam, NULL, PW, "[1000] lr=1e-3 x3");
    inputs(c, 4, F(1, 1000), IN(SEG_DTYPE_F32, H_UNIFORM, -0.1f, 0.1f, 1, 1000), FP(1, 1000), F(1, 1000));
    c->fp[0] = 1e-3f;

    struct { int n, at, inf; } nf[] = {{1000, -1, 0}, {1000, 999, 0}, {70001, 4321, 1}, {3, 0, 1}};
    for (size_t i = 0; i < sizeof nf / sizeof nf[0]; i++) {
        c = add(&b, "NONFINITE_ANY", SEG_OP_NONFINITE_ANY, f_nonfinite, NULL, 0, "[%d] %s at %d", nf[i].n,
                nf[i].inf ? "-Inf" : "NaN", nf[i].at);
        inputs(c, 1, F(1, nf[i].n));
        c->ip[0] = nf[i].at;
        c->ip[1] = nf[i].inf;
    }

    c = add(&b, "bce_with_logits", SEG_OP_UNARY, f_ag, b_ag, RD, "x=[2,1,9,13] target");
    inputs(c, 2, IN(SEG_DTYPE_F32, H_UNIFORM, -4.0f, 4.0f, 4, 2, 1, 9, 13),
           IN(SEG_DTYPE_F32, H_UNIFORM, 0.0f, 1.0f, 4, 2, 1, 9, 13));
    c->in[1].no_grad = true;
    c->ip[7] = AG_BCE;
    c = add(&b, "bce_with_logits", SEG_OP_UNARY, f_ag, b_ag, RD, "x=[1,1,5,7] target=1");
    inputs(c, 1, IN(SEG_DTYPE_F32, H_UNIFORM, -4.0f, 4.0f, 4, 1, 1, 5, 7));
    c->fp[0] = 1.0f;
    c->ip[7] = AG_BCE_CONST;
    c = add(&b, "mse", SEG_OP_BINARY, f_ag, b_ag, RD, "a,b=[2,19,5,7]");
    inputs(c, 2, F(4, 2, 19, 5, 7), F(4, 2, 19, 5, 7));
    c->ip[7] = AG_MSE;
    c = add(&b, "kl_div", SEG_OP_BINARY, f_ag, b_ag, RD, "log_softmax(x) vs p, [2,7,5,3]");
    inputs(c, 2, F(4, 2, 7, 5, 3), FP(4, 2, 7, 5, 3));
    c->ip[7] = AG_KL;
    c = add(&b, "entropy", SEG_OP_SOFTMAX, f_ag, b_ag, RD, "logits=[2,19,7,9]");
    inputs(c, 1, IN(SEG_DTYPE_F32, H_UNIFORM, -3.0f, 3.0f, 4, 2, 19, 7, 9));
    c->ip[7] = AG_ENTROPY;
    c = add(&b, "dropout", SEG_OP_RNG_UNIFORM, f_ag, b_ag, PW, "p=0.3 x=[3,64,11]");
    inputs(c, 1, F(3, 3, 64, 11));
    c->fp[0] = 0.3f;
    c->ip[7] = AG_DROPOUT;
    c = add(&b, "lovasz_softmax", SEG_OP_SORT, f_ag, b_ag, RD, "softmax(x=[2,5,9,11]) labels ignore=255");
    inputs(c, 2, IN(SEG_DTYPE_F32, H_UNIFORM, -3.0f, 3.0f, 4, 2, 5, 9, 11), LBL(5, 3, 2, 9, 11));
    c->ip[7] = AG_LOVASZ;
    c->grad_eps = 1e-3; /* sorting errors: keep the step below the gaps between them */
    c = add(&b, "lovasz_softmax", SEG_OP_SORT, f_ag, NULL, RD, "softmax(x=[1,19,65,65]) labels ignore=255");
    inputs(c, 2, IN(SEG_DTYPE_F32, H_UNIFORM, -3.0f, 3.0f, 4, 1, 19, 65, 65), LBL(19, 3, 1, 65, 65));
    c->ip[7] = AG_LOVASZ;
    c = add(&b, "topk", SEG_OP_SORT, f_topk, NULL, 0, "k=5 [7,333]");
    inputs(c, 1, F(2, 7, 333));
    c->ip[0] = 5;

    /* bench kernels */
    struct { int n, k; } pk[] = {{1000, 13}, {4099, 40}, {17, 0}};
    for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++) {
        c = add(&b, "PEAK_FMA", SEG_OP_PEAK_FMA, f_peak_fma, NULL, PW, "[%d] K=%d b=0.75 c=0.25",
                pk[i].n, pk[i].k);
        inputs(c, 1, F(1, pk[i].n));
        c->ip[0] = pk[i].k;
        c->fp[0] = 0.75f;
        c->fp[1] = 0.25f;
    }
    /* The conv2d shapes above (DeepLab's 7x7/2 stem, 1x1/2, dilations 2..24) plus tile edges. */
    struct { int n, ci, h, w, co, k, s, p, d; } cd[] = {
        {1, 3, 37, 45, 8, 7, 2, 3, 1}, {2, 8, 17, 19, 12, 1, 2, 0, 1}, {1, 8, 23, 21, 8, 3, 1, 2, 2},
        {1, 6, 29, 31, 5, 3, 1, 4, 4}, {1, 4, 41, 37, 3, 3, 1, 6, 6}, {1, 4, 53, 49, 3, 3, 1, 12, 12},
        {1, 4, 65, 61, 3, 3, 1, 18, 18}, {1, 4, 73, 67, 3, 3, 1, 24, 24}, {2, 5, 13, 11, 7, 1, 1, 0, 1},
        {1, 3, 97, 131, 4, 3, 1, 1, 1}, {1, 70, 19, 23, 67, 3, 1, 1, 1}, {2, 33, 11, 9, 130, 1, 1, 0, 1},
        {1, 1040, 9, 9, 5, 3, 1, 2, 2}, /* K = 9360: split over dispatches where loops are limited */
    };
    for (size_t i = 0; i < sizeof cd / sizeof cd[0]; i++) {
        c = add(&b, "CONV2D_DIRECT", SEG_OP_CONV2D_DIRECT, f_conv_direct, NULL, MM,
                "x=[%d,%d,%d,%d] w=[%d,%d,%d,%d] s=%d p=%d d=%d%s", cd[i].n, cd[i].ci, cd[i].h, cd[i].w,
                cd[i].co, cd[i].ci, cd[i].k, cd[i].k, cd[i].s, cd[i].p, cd[i].d, i % 2 ? " bias" : "");
        c->in[0] = F(4, cd[i].n, cd[i].ci, cd[i].h, cd[i].w);
        c->in[1] = F(4, cd[i].co, cd[i].ci, cd[i].k, cd[i].k);
        c->in[2] = F(1, cd[i].co);
        c->nin = i % 2 ? 3 : 2;
        c->ip[0] = c->ip[1] = cd[i].k;
        c->ip[2] = cd[i].s;
        c->ip[3] = cd[i].p;
        c->ip[4] = cd[i].d;
    }
    /* A long K for the GEMM's K split (llvmpipe's loop limit) with the tuned tiles. */
    c = add(&b, "MATMUL", SEG_OP_MATMUL, f_matmul, NULL, MM, "m=7 n=9 k=20000 (K split)");
    inputs(c, 2, F(2, 7, 20000), F(2, 20000, 9));
    c->fp[0] = 1.0f;

    *cases = b.v;
    return b.n;
}
