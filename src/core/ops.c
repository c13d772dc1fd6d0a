/* ops.c: the op front-end: argument checks, output allocation, sizes for the kernels,
 * and dispatch through the backend's kernel table. */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

#include "backend/backend.h"
#include "core/ops.h"

#define TRY(expr) SEG_TRY(expr)

enum seg_status seg_op_run(struct seg_backend *be, const struct seg_op_args *a)
{
    if (a->op >= SEG_OP_COUNT)
        return seg_error(SEG_STATUS_INVALID, "op %d is not an op", (int)a->op);
    seg_kernel_fn fn = be->iface->kernels[a->op];
    if (!fn)
        return seg_error(SEG_STATUS_UNSUPPORTED, "%s is not implemented on the %s backend",
                         seg_op_name(a->op), be->iface->name);
    enum seg_status st = fn(be, a);
    if (st) {
        /* Prefix the backend's message with the op and its shapes. */
        char msg[1024], shapes[512] = "", s[96];
        snprintf(msg, sizeof msg, "%s", seg_last_error());
        size_t used = 0;
        for (int i = 0; i < 6 && used < sizeof shapes; i++)
            if (a->src[i])
                used += (size_t)snprintf(shapes + used, sizeof shapes - used, "%s%s",
                                         used ? ", " : "",
                                         seg_tensor_shape_str(a->src[i], s, sizeof s));
        seg_error(st, "%s(%s) on %s: %s", seg_op_name(a->op), shapes, be->iface->name, msg);
    }
    return st;
}

static enum seg_status same_backend(const char *what, const struct seg_tensor *a,
                                    const struct seg_tensor *b)
{
    if (a && b && a->be != b->be)
        return seg_error(SEG_STATUS_INVALID, "%s: tensors live on different backends", what);
    return SEG_STATUS_OK;
}

static enum seg_status want_dtype(const char *what, const struct seg_tensor *t, enum seg_dtype d)
{
    if (t->dtype != d) {
        char s[96];
        return seg_error(SEG_STATUS_INVALID, "%s: %s must be %s", what,
                         seg_tensor_shape_str(t, s, sizeof s), seg_dtype_name(d));
    }
    return SEG_STATUS_OK;
}

static enum seg_status want_4byte(const char *what, const struct seg_tensor *t)
{
    if (seg_dtype_size(t->dtype) != 4)
        return seg_error(SEG_STATUS_INVALID, "%s: %s type not supported (f32 or i32)", what,
                         seg_dtype_name(t->dtype));
    return SEG_STATUS_OK;
}

static int norm_axis(int ndim, int axis) { return axis < 0 ? axis + ndim : axis; }

static enum seg_status check_axis(const char *what, const struct seg_tensor *t, int *axis)
{
    int a = norm_axis(t->ndim, *axis);
    if (a < 0 || a >= t->ndim)
        return seg_error(SEG_STATUS_INVALID, "%s: axis %d out of range for %d dims", what, *axis,
                         t->ndim);
    *axis = a;
    return SEG_STATUS_OK;
}

static void split_axis(const struct seg_tensor *t, int axis, int32_t *outer, int32_t *n,
                       int32_t *inner)
{
    int64_t o = 1, i = 1;
    for (int d = 0; d < axis; d++)
        o *= t->shape[d];
    for (int d = axis + 1; d < t->ndim; d++)
        i *= t->shape[d];
    *outer = (int32_t)o;
    *n = (int32_t)t->shape[axis];
    *inner = (int32_t)i;
}

static struct seg_op_args args(enum seg_op op)
{
    struct seg_op_args a;
    memset(&a, 0, sizeof a);
    a.op = op;
    return a;
}

static enum seg_status out_new(struct seg_backend *be, enum seg_dtype d, int ndim,
                               const int64_t *shape, struct seg_tensor **out)
{
    return seg_tensor_new(be, d, ndim, shape, out);
}

/* Runs a with dst[0] = *out allocated here; frees it on failure. */
static enum seg_status run_into(struct seg_backend *be, struct seg_op_args *a,
                                struct seg_tensor **out)
{
    a->dst[0] = *out;
    enum seg_status st = seg_op_run(be, a);
    if (st) {
        seg_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- fill, cast ---------------------------------------------------------------- */

enum seg_status seg_fill(struct seg_tensor *t, float value)
{
    TRY(want_dtype("fill", t, SEG_DTYPE_F32));
    struct seg_op_args a = args(SEG_OP_FILL);
    memcpy(&a.ip[0], &value, 4);
    a.dst[0] = t;
    return seg_op_run(t->be, &a);
}

enum seg_status seg_fill_i32(struct seg_tensor *t, int32_t value)
{
    TRY(want_dtype("fill", t, SEG_DTYPE_I32));
    struct seg_op_args a = args(SEG_OP_FILL);
    a.ip[0] = value;
    a.dst[0] = t;
    return seg_op_run(t->be, &a);
}

enum seg_status seg_cast(const struct seg_tensor *x, enum seg_dtype dtype, struct seg_tensor **out)
{
    TRY(out_new(x->be, dtype, x->ndim, x->shape, out));
    struct seg_op_args a = args(SEG_OP_CAST);
    a.src[0] = x;
    return run_into(x->be, &a, out);
}

enum seg_status seg_clone(const struct seg_tensor *x, struct seg_tensor **out)
{
    TRY(seg_tensor_new_like(x, out));
    enum seg_status st = seg_tensor_copy(*out, x);
    if (st) {
        seg_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- broadcasting ---------------------------------------------------------------- */

/* Pads t's shape to 4 dims (leading 1s) aligned to ndim output dims, giving element
 * strides with 0 on broadcast dims. */
static enum seg_status bcast_strides(const char *what, const struct seg_tensor *t, int ndim,
                                     const int64_t *shape, int32_t *strides)
{
    if (t->ndim > ndim)
        return seg_error(SEG_STATUS_INVALID, "%s: cannot broadcast %d dims to %d", what, t->ndim,
                         ndim);
    int64_t st = 1;
    for (int d = SEG_MAX_DIMS - 1; d >= 0; d--) {
        int od = d - (SEG_MAX_DIMS - ndim); /* output dim index */
        int td = od - (ndim - t->ndim);     /* t's dim index */
        int64_t osz = od >= 0 ? shape[od] : 1;
        int64_t tsz = td >= 0 ? t->shape[td] : 1;
        if (tsz != osz && tsz != 1) {
            char s[96];
            return seg_error(SEG_STATUS_INVALID, "%s: %s does not broadcast to dim %d of size %lld",
                             what, seg_tensor_shape_str(t, s, sizeof s), od, (long long)osz);
        }
        strides[d] = (tsz == 1) ? 0 : (int32_t)st;
        st *= tsz;
    }
    return SEG_STATUS_OK;
}

static void pad4(int ndim, const int64_t *shape, int32_t *out4)
{
    for (int d = 0; d < SEG_MAX_DIMS; d++) {
        int od = d - (SEG_MAX_DIMS - ndim);
        out4[d] = od >= 0 ? (int32_t)shape[od] : 1;
    }
}

static enum seg_status bcast_shape(const struct seg_tensor *a, const struct seg_tensor *b,
                                   int *ndim, int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = 0; d < n; d++) {
        int da = d - (n - a->ndim), db = d - (n - b->ndim);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char s1[96], s2[96];
            return seg_error(SEG_STATUS_INVALID, "binary: shapes %s and %s do not broadcast",
                             seg_tensor_shape_str(a, s1, sizeof s1),
                             seg_tensor_shape_str(b, s2, sizeof s2));
        }
        shape[d] = sa > sb ? sa : sb;
    }
    *ndim = n;
    return SEG_STATUS_OK;
}

enum seg_status seg_binary(enum seg_binary_fn fn, const struct seg_tensor *a,
                           const struct seg_tensor *b, struct seg_tensor **out)
{
    if ((unsigned)fn >= SEG_BINARY_COUNT)
        return seg_error(SEG_STATUS_INVALID, "binary: function %d unknown", (int)fn);
    TRY(same_backend("binary", a, b));
    TRY(want_dtype("binary", a, SEG_DTYPE_F32));
    TRY(want_dtype("binary", b, SEG_DTYPE_F32));
    int ndim = 0;
    int64_t shape[SEG_MAX_DIMS];
    TRY(bcast_shape(a, b, &ndim, shape));
    struct seg_op_args x = args(SEG_OP_BINARY);
    x.ip[0] = fn;
    pad4(ndim, shape, &x.ip[1]);
    TRY(bcast_strides("binary", a, ndim, shape, &x.ip[5]));
    TRY(bcast_strides("binary", b, ndim, shape, &x.ip[9]));
    x.src[0] = a;
    x.src[1] = b;
    TRY(out_new(a->be, SEG_DTYPE_F32, ndim, shape, out));
    return run_into(a->be, &x, out);
}

enum seg_status seg_expand(const struct seg_tensor *t, int ndim, const int64_t *shape,
                           struct seg_tensor **out)
{
    TRY(want_4byte("expand", t));
    struct seg_op_args x = args(SEG_OP_EXPAND);
    pad4(ndim, shape, &x.ip[1]);
    TRY(bcast_strides("expand", t, ndim, shape, &x.ip[5]));
    x.src[0] = t;
    TRY(out_new(t->be, t->dtype, ndim, shape, out));
    return run_into(t->be, &x, out);
}

enum seg_status seg_reduce_to_shape(const struct seg_tensor *x, int ndim, const int64_t *shape,
                                    struct seg_tensor **out)
{
    if (ndim > x->ndim)
        return seg_error(SEG_STATUS_INVALID, "reduce_to_shape: more dims than the input");
    struct seg_tensor *cur = NULL;
    TRY(seg_clone(x, &cur));
    int lead = x->ndim - ndim;
    /* Sum away the leading dims, then the broadcast ones, keeping dims. */
    for (int d = x->ndim - 1; d >= 0; d--) {
        int td = d - lead;
        bool sum = td < 0 || (shape[td] == 1 && cur->shape[d] != 1);
        if (!sum)
            continue;
        struct seg_tensor *r = NULL;
        enum seg_status st = seg_reduce(SEG_REDUCE_SUM, cur, d, true, &r);
        seg_tensor_free(cur);
        if (st)
            return st;
        cur = r;
    }
    enum seg_status st = seg_tensor_set_shape(cur, ndim, shape);
    if (st) {
        seg_tensor_free(cur);
        return st;
    }
    *out = cur;
    return SEG_STATUS_OK;
}

/* ---- unary, where -------------------------------------------------------------------- */

enum seg_status seg_unary(enum seg_unary_fn fn, const struct seg_tensor *x, float p0, float p1,
                          struct seg_tensor **out)
{
    if ((unsigned)fn >= SEG_UNARY_COUNT)
        return seg_error(SEG_STATUS_INVALID, "unary: function %d unknown", (int)fn);
    TRY(want_dtype("unary", x, SEG_DTYPE_F32));
    struct seg_op_args a = args(SEG_OP_UNARY);
    a.ip[0] = fn;
    a.fp[0] = p0;
    a.fp[1] = p1;
    a.src[0] = x;
    TRY(seg_tensor_new_like(x, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_unary_bwd(enum seg_unary_fn fn, const struct seg_tensor *x,
                              const struct seg_tensor *dy, float p0, float p1,
                              struct seg_tensor **dx)
{
    if ((unsigned)fn >= SEG_UNARY_COUNT)
        return seg_error(SEG_STATUS_INVALID, "unary_bwd: function %d unknown", (int)fn);
    TRY(same_backend("unary_bwd", x, dy));
    TRY(want_dtype("unary_bwd", x, SEG_DTYPE_F32));
    TRY(want_dtype("unary_bwd", dy, SEG_DTYPE_F32));
    if (seg_tensor_numel(x) != seg_tensor_numel(dy))
        return seg_error(SEG_STATUS_INVALID, "unary_bwd: x and dy differ in size");
    struct seg_op_args a = args(SEG_OP_UNARY_BWD);
    a.ip[0] = fn;
    a.fp[0] = p0;
    a.fp[1] = p1;
    a.src[0] = x;
    a.src[1] = dy;
    TRY(seg_tensor_new_like(x, dx));
    return run_into(x->be, &a, dx);
}

enum seg_status seg_where(const struct seg_tensor *cond, const struct seg_tensor *a,
                          const struct seg_tensor *b, struct seg_tensor **out)
{
    TRY(same_backend("where", cond, a));
    TRY(same_backend("where", a, b));
    TRY(want_dtype("where", cond, SEG_DTYPE_F32));
    TRY(want_dtype("where", a, SEG_DTYPE_F32));
    TRY(want_dtype("where", b, SEG_DTYPE_F32));
    if (seg_tensor_numel(cond) != seg_tensor_numel(a) || seg_tensor_numel(a) != seg_tensor_numel(b))
        return seg_error(SEG_STATUS_INVALID, "where: cond, a and b must have the same size");
    struct seg_op_args x = args(SEG_OP_WHERE);
    x.src[0] = cond;
    x.src[1] = a;
    x.src[2] = b;
    TRY(seg_tensor_new_like(a, out));
    return run_into(a->be, &x, out);
}

/* ---- reductions, softmax ------------------------------------------------------------- */

static void reduced_shape(const struct seg_tensor *x, int axis, bool keepdim, int *ndim,
                          int64_t *shape)
{
    int n = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d == axis) {
            if (keepdim)
                shape[n++] = 1;
        } else {
            shape[n++] = x->shape[d];
        }
    }
    if (n == 0)
        shape[n++] = 1;
    *ndim = n;
}

enum seg_status seg_reduce(enum seg_reduce_fn fn, const struct seg_tensor *x, int axis,
                           bool keepdim, struct seg_tensor **out)
{
    if ((unsigned)fn >= SEG_REDUCE_COUNT)
        return seg_error(SEG_STATUS_INVALID, "reduce: function %d unknown", (int)fn);
    TRY(want_dtype("reduce", x, SEG_DTYPE_F32));
    TRY(check_axis("reduce", x, &axis));
    struct seg_op_args a = args(SEG_OP_REDUCE);
    a.ip[0] = fn;
    split_axis(x, axis, &a.ip[1], &a.ip[2], &a.ip[3]);
    a.src[0] = x;
    int ndim = 0;
    int64_t shape[SEG_MAX_DIMS];
    reduced_shape(x, axis, keepdim, &ndim, shape);
    TRY(out_new(x->be, SEG_DTYPE_F32, ndim, shape, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_reduce_all(enum seg_reduce_fn fn, const struct seg_tensor *x,
                               struct seg_tensor **out)
{
    TRY(want_dtype("reduce", x, SEG_DTYPE_F32));
    if ((unsigned)fn >= SEG_REDUCE_COUNT)
        return seg_error(SEG_STATUS_INVALID, "reduce: function %d unknown", (int)fn);
    struct seg_op_args a = args(SEG_OP_REDUCE);
    a.ip[0] = fn;
    a.ip[1] = 1;
    a.ip[2] = (int32_t)seg_tensor_numel(x);
    a.ip[3] = 1;
    a.src[0] = x;
    int64_t one = 1;
    TRY(out_new(x->be, SEG_DTYPE_F32, 1, &one, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_argreduce(bool argmin, const struct seg_tensor *x, int axis, bool keepdim,
                              struct seg_tensor **out)
{
    TRY(want_dtype("argreduce", x, SEG_DTYPE_F32));
    TRY(check_axis("argreduce", x, &axis));
    struct seg_op_args a = args(SEG_OP_ARGREDUCE);
    a.ip[0] = argmin;
    split_axis(x, axis, &a.ip[1], &a.ip[2], &a.ip[3]);
    a.src[0] = x;
    int ndim = 0;
    int64_t shape[SEG_MAX_DIMS];
    reduced_shape(x, axis, keepdim, &ndim, shape);
    TRY(out_new(x->be, SEG_DTYPE_I32, ndim, shape, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_softmax(const struct seg_tensor *x, int axis, bool log, struct seg_tensor **out)
{
    TRY(want_dtype("softmax", x, SEG_DTYPE_F32));
    TRY(check_axis("softmax", x, &axis));
    struct seg_op_args a = args(SEG_OP_SOFTMAX);
    a.ip[0] = log;
    split_axis(x, axis, &a.ip[1], &a.ip[2], &a.ip[3]);
    a.src[0] = x;
    TRY(seg_tensor_new_like(x, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_softmax_bwd(const struct seg_tensor *y, const struct seg_tensor *dy, int axis,
                                bool log, struct seg_tensor **dx)
{
    TRY(same_backend("softmax_bwd", y, dy));
    TRY(want_dtype("softmax_bwd", y, SEG_DTYPE_F32));
    TRY(want_dtype("softmax_bwd", dy, SEG_DTYPE_F32));
    if (!seg_tensor_same_shape(y, dy))
        return seg_error(SEG_STATUS_INVALID, "softmax_bwd: y and dy differ in shape");
    TRY(check_axis("softmax_bwd", y, &axis));
    struct seg_op_args a = args(SEG_OP_SOFTMAX_BWD);
    a.ip[0] = log;
    split_axis(y, axis, &a.ip[1], &a.ip[2], &a.ip[3]);
    a.src[0] = y;
    a.src[1] = dy;
    TRY(seg_tensor_new_like(y, dx));
    return run_into(y->be, &a, dx);
}

/* ---- cross-entropy ------------------------------------------------------------------- */

static enum seg_status ce_args(const char *what, const struct seg_tensor *logits,
                               const struct seg_tensor *labels, const struct seg_tensor *weights,
                               int ignore_index, struct seg_op_args *a)
{
    TRY(same_backend(what, logits, labels));
    TRY(same_backend(what, logits, weights));
    TRY(want_dtype(what, logits, SEG_DTYPE_F32));
    TRY(want_dtype(what, labels, SEG_DTYPE_I32));
    if (logits->ndim < 2)
        return seg_error(SEG_STATUS_INVALID, "%s: logits need [N, C, ...]", what);
    int64_t n = logits->shape[0], c = logits->shape[1], p = 1;
    for (int d = 2; d < logits->ndim; d++)
        p *= logits->shape[d];
    if (seg_tensor_numel(labels) != n * p || labels->shape[0] != n) {
        char s1[96], s2[96];
        return seg_error(SEG_STATUS_INVALID, "%s: labels %s do not match logits %s", what,
                         seg_tensor_shape_str(labels, s1, sizeof s1),
                         seg_tensor_shape_str(logits, s2, sizeof s2));
    }
    if (weights) {
        TRY(want_dtype(what, weights, SEG_DTYPE_F32));
        if (seg_tensor_numel(weights) != c)
            return seg_error(SEG_STATUS_INVALID, "%s: %lld class weights for %lld classes", what,
                             (long long)seg_tensor_numel(weights), (long long)c);
    }
    a->ip[0] = (int32_t)n;
    a->ip[1] = (int32_t)c;
    a->ip[2] = (int32_t)p;
    a->ip[3] = ignore_index;
    a->src[0] = logits;
    a->src[1] = labels;
    a->src[2] = weights;
    return SEG_STATUS_OK;
}

enum seg_status seg_cross_entropy_terms(const struct seg_tensor *logits,
                                        const struct seg_tensor *labels,
                                        const struct seg_tensor *weights, int ignore_index,
                                        struct seg_tensor **out)
{
    struct seg_op_args a = args(SEG_OP_CROSS_ENTROPY);
    TRY(ce_args("cross_entropy", logits, labels, weights, ignore_index, &a));
    int64_t shape[2] = {2, (int64_t)a.ip[0] * a.ip[2]};
    TRY(out_new(logits->be, SEG_DTYPE_F32, 2, shape, out));
    return run_into(logits->be, &a, out);
}

enum seg_status seg_cross_entropy_bwd(const struct seg_tensor *logits,
                                      const struct seg_tensor *labels,
                                      const struct seg_tensor *weights,
                                      const struct seg_tensor *scale, int ignore_index,
                                      struct seg_tensor **dlogits)
{
    struct seg_op_args a = args(SEG_OP_CROSS_ENTROPY_BWD);
    TRY(ce_args("cross_entropy_bwd", logits, labels, weights, ignore_index, &a));
    TRY(same_backend("cross_entropy_bwd", logits, scale));
    TRY(want_dtype("cross_entropy_bwd", scale, SEG_DTYPE_F32));
    if (seg_tensor_numel(scale) != 1)
        return seg_error(SEG_STATUS_INVALID, "cross_entropy_bwd: scale must have one element");
    a.src[3] = scale;
    TRY(seg_tensor_new_like(logits, dlogits));
    return run_into(logits->be, &a, dlogits);
}

/* ---- matmul ---------------------------------------------------------------------------- */

enum seg_status seg_matmul(const struct seg_tensor *a, const struct seg_tensor *b, bool trans_a,
                           bool trans_b, float alpha, float beta, struct seg_tensor **c)
{
    TRY(same_backend("matmul", a, b));
    TRY(want_dtype("matmul", a, SEG_DTYPE_F32));
    TRY(want_dtype("matmul", b, SEG_DTYPE_F32));
    if (a->ndim < 2 || a->ndim > 3 || b->ndim < 2 || b->ndim > 3)
        return seg_error(SEG_STATUS_INVALID, "matmul: operands must be 2-D or 3-D");
    int64_t ba = a->ndim == 3 ? a->shape[0] : 1, bb = b->ndim == 3 ? b->shape[0] : 1;
    if (ba != bb && ba != 1 && bb != 1)
        return seg_error(SEG_STATUS_INVALID, "matmul: batch %lld vs %lld", (long long)ba,
                         (long long)bb);
    int64_t batch = ba > bb ? ba : bb;
    int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    int64_t m = trans_a ? ac : ar, k = trans_a ? ar : ac;
    int64_t kb = trans_b ? bc : br, n = trans_b ? br : bc;
    if (k != kb) {
        char s1[96], s2[96];
        return seg_error(SEG_STATUS_INVALID, "matmul: inner sizes differ: %s%s x %s%s",
                         seg_tensor_shape_str(a, s1, sizeof s1), trans_a ? "^T" : "",
                         seg_tensor_shape_str(b, s2, sizeof s2), trans_b ? "^T" : "");
    }
    bool batched = a->ndim == 3 || b->ndim == 3;
    int64_t shape[3] = {batch, m, n};
    bool fresh = *c == NULL;
    if (fresh) {
        if (beta != 0.0f)
            return seg_error(SEG_STATUS_INVALID, "matmul: beta != 0 needs an existing output");
        TRY(out_new(a->be, SEG_DTYPE_F32, batched ? 3 : 2, batched ? shape : shape + 1, c));
    } else if (seg_tensor_numel(*c) != batch * m * n || (*c)->dtype != SEG_DTYPE_F32) {
        return seg_error(SEG_STATUS_INVALID, "matmul: output has %lld elements, need %lld",
                         (long long)seg_tensor_numel(*c), (long long)(batch * m * n));
    }
    struct seg_op_args x = args(SEG_OP_MATMUL);
    x.ip[0] = (int32_t)batch;
    x.ip[1] = (int32_t)m;
    x.ip[2] = (int32_t)n;
    x.ip[3] = (int32_t)k;
    x.ip[4] = trans_a;
    x.ip[5] = trans_b;
    x.ip[6] = ba == 1 ? 0 : (int32_t)(m * k);
    x.ip[7] = bb == 1 ? 0 : (int32_t)(k * n);
    x.ip[8] = (int32_t)(m * n);
    x.fp[0] = alpha;
    x.fp[1] = beta;
    x.src[0] = a;
    x.src[1] = b;
    if (!fresh) {
        x.dst[0] = *c;
        return seg_op_run(a->be, &x);
    }
    return run_into(a->be, &x, c);
}

/* ---- im2col / col2im -------------------------------------------------------------------- */

int64_t seg_conv2d_out_size(int64_t in, int k, int stride, int pad, int dil)
{
    return (in + 2 * pad - (int64_t)dil * (k - 1) - 1) / stride + 1;
}

static enum seg_status conv_args(const char *what, const int64_t *xs, int kh, int kw,
                                 const struct seg_conv2d_params *p, struct seg_op_args *a)
{
    if (kh < 1 || kw < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1 ||
        p->pad_h < 0 || p->pad_w < 0)
        return seg_error(SEG_STATUS_INVALID, "%s: bad kernel %dx%d / stride / dilation / padding",
                         what, kh, kw);
    int64_t oh = seg_conv2d_out_size(xs[2], kh, p->stride_h, p->pad_h, p->dil_h);
    int64_t ow = seg_conv2d_out_size(xs[3], kw, p->stride_w, p->pad_w, p->dil_w);
    if (oh < 1 || ow < 1)
        return seg_error(SEG_STATUS_INVALID, "%s: a %lldx%lld input is smaller than the kernel",
                         what, (long long)xs[2], (long long)xs[3]);
    int32_t v[14] = {(int32_t)xs[0], (int32_t)xs[1], (int32_t)xs[2], (int32_t)xs[3], kh, kw,
                     p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->dil_h, p->dil_w,
                     (int32_t)oh, (int32_t)ow};
    memcpy(a->ip, v, sizeof v);
    return SEG_STATUS_OK;
}

enum seg_status seg_im2col(const struct seg_tensor *x, int kh, int kw,
                           const struct seg_conv2d_params *p, struct seg_tensor **col)
{
    TRY(want_dtype("im2col", x, SEG_DTYPE_F32));
    if (x->ndim != 4)
        return seg_error(SEG_STATUS_INVALID, "im2col: input must be [N, C, H, W]");
    struct seg_op_args a = args(SEG_OP_IM2COL);
    TRY(conv_args("im2col", x->shape, kh, kw, p, &a));
    int64_t shape[3] = {x->shape[0], x->shape[1] * kh * kw, (int64_t)a.ip[12] * a.ip[13]};
    a.src[0] = x;
    TRY(out_new(x->be, SEG_DTYPE_F32, 3, shape, col));
    return run_into(x->be, &a, col);
}

enum seg_status seg_col2im(const struct seg_tensor *col, const int64_t *x_shape, int kh, int kw,
                           const struct seg_conv2d_params *p, struct seg_tensor **dx)
{
    TRY(want_dtype("col2im", col, SEG_DTYPE_F32));
    struct seg_op_args a = args(SEG_OP_COL2IM);
    TRY(conv_args("col2im", x_shape, kh, kw, p, &a));
    if (seg_tensor_numel(col) != x_shape[0] * x_shape[1] * kh * kw * a.ip[12] * a.ip[13])
        return seg_error(SEG_STATUS_INVALID, "col2im: columns do not match the image shape");
    a.src[0] = col;
    TRY(out_new(col->be, SEG_DTYPE_F32, 4, x_shape, dx));
    return run_into(col->be, &a, dx);
}

/* ---- batch norm -------------------------------------------------------------------------- */

static enum seg_status bn_sizes(const char *what, const struct seg_tensor *x, struct seg_op_args *a)
{
    TRY(want_dtype(what, x, SEG_DTYPE_F32));
    if (x->ndim < 2)
        return seg_error(SEG_STATUS_INVALID, "%s: input must be [N, C, ...]", what);
    int64_t p = 1;
    for (int d = 2; d < x->ndim; d++)
        p *= x->shape[d];
    a->ip[0] = (int32_t)x->shape[0];
    a->ip[1] = (int32_t)x->shape[1];
    a->ip[2] = (int32_t)p;
    return SEG_STATUS_OK;
}

static enum seg_status want_channels(const char *what, const struct seg_tensor *t, int32_t c)
{
    if (!t)
        return SEG_STATUS_OK;
    TRY(want_dtype(what, t, SEG_DTYPE_F32));
    if (seg_tensor_numel(t) != c)
        return seg_error(SEG_STATUS_INVALID, "%s: per-channel tensor of %lld for %d channels",
                         what, (long long)seg_tensor_numel(t), c);
    return SEG_STATUS_OK;
}

enum seg_status seg_batchnorm_stats(const struct seg_tensor *x, struct seg_tensor **mean,
                                    struct seg_tensor **var)
{
    struct seg_op_args a = args(SEG_OP_BATCHNORM_STATS);
    TRY(bn_sizes("batchnorm_stats", x, &a));
    int64_t c = a.ip[1];
    TRY(out_new(x->be, SEG_DTYPE_F32, 1, &c, mean));
    enum seg_status st = out_new(x->be, SEG_DTYPE_F32, 1, &c, var);
    if (st) {
        seg_tensor_free(*mean);
        *mean = NULL;
        return st;
    }
    a.src[0] = x;
    a.dst[0] = *mean;
    a.dst[1] = *var;
    st = seg_op_run(x->be, &a);
    if (st) {
        seg_tensor_free(*mean);
        seg_tensor_free(*var);
        *mean = *var = NULL;
    }
    return st;
}

enum seg_status seg_batchnorm(const struct seg_tensor *x, const struct seg_tensor *mean,
                              const struct seg_tensor *var, const struct seg_tensor *gamma,
                              const struct seg_tensor *beta, float eps, struct seg_tensor **y)
{
    struct seg_op_args a = args(SEG_OP_BATCHNORM);
    TRY(bn_sizes("batchnorm", x, &a));
    TRY(want_channels("batchnorm", mean, a.ip[1]));
    TRY(want_channels("batchnorm", var, a.ip[1]));
    TRY(want_channels("batchnorm", gamma, a.ip[1]));
    TRY(want_channels("batchnorm", beta, a.ip[1]));
    a.fp[0] = eps;
    a.src[0] = x;
    a.src[1] = mean;
    a.src[2] = var;
    a.src[3] = gamma;
    a.src[4] = beta;
    TRY(seg_tensor_new_like(x, y));
    return run_into(x->be, &a, y);
}

enum seg_status seg_batchnorm_bwd(const struct seg_tensor *x, const struct seg_tensor *dy,
                                  const struct seg_tensor *mean, const struct seg_tensor *var,
                                  const struct seg_tensor *gamma, float eps, bool batch_stats,
                                  struct seg_tensor **dx, struct seg_tensor **dgamma,
                                  struct seg_tensor **dbeta)
{
    struct seg_op_args a = args(SEG_OP_BATCHNORM_BWD);
    TRY(bn_sizes("batchnorm_bwd", x, &a));
    if (!seg_tensor_same_shape(x, dy))
        return seg_error(SEG_STATUS_INVALID, "batchnorm_bwd: x and dy differ in shape");
    TRY(want_channels("batchnorm_bwd", mean, a.ip[1]));
    TRY(want_channels("batchnorm_bwd", var, a.ip[1]));
    TRY(want_channels("batchnorm_bwd", gamma, a.ip[1]));
    a.ip[3] = batch_stats;
    a.fp[0] = eps;
    a.src[0] = x;
    a.src[1] = dy;
    a.src[2] = mean;
    a.src[3] = var;
    a.src[4] = gamma;
    int64_t c = a.ip[1];
    struct seg_tensor *o[3] = {NULL, NULL, NULL};
    enum seg_status st = SEG_STATUS_OK;
    if (dx)
        st = seg_tensor_new_like(x, &o[0]);
    if (!st && dgamma)
        st = out_new(x->be, SEG_DTYPE_F32, 1, &c, &o[1]);
    if (!st && dbeta)
        st = out_new(x->be, SEG_DTYPE_F32, 1, &c, &o[2]);
    if (!st) {
        for (int i = 0; i < 3; i++)
            a.dst[i] = o[i];
        st = seg_op_run(x->be, &a);
    }
    if (st) {
        for (int i = 0; i < 3; i++)
            seg_tensor_free(o[i]);
        return st;
    }
    if (dx)
        *dx = o[0];
    if (dgamma)
        *dgamma = o[1];
    if (dbeta)
        *dbeta = o[2];
    return SEG_STATUS_OK;
}

/* ---- pooling, resize ---------------------------------------------------------------------- */

int64_t seg_pool2d_out_size(int64_t in, int k, int stride, int pad, bool ceil_mode)
{
    int64_t span = in + 2 * pad - k;
    int64_t o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    /* PyTorch: the last window must start inside the input or the left padding. */
    if (ceil_mode && (o - 1) * stride >= in + pad)
        o--;
    return o;
}

static enum seg_status pool_args(const char *what, const int64_t *xs,
                                 const struct seg_pool2d_params *p, struct seg_op_args *a)
{
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->pad_h < 0 || p->pad_w < 0 || p->pad_h * 2 > p->kernel_h || p->pad_w * 2 > p->kernel_w)
        return seg_error(SEG_STATUS_INVALID, "%s: bad kernel, stride or padding", what);
    int64_t oh = seg_pool2d_out_size(xs[2], p->kernel_h, p->stride_h, p->pad_h, p->ceil_mode);
    int64_t ow = seg_pool2d_out_size(xs[3], p->kernel_w, p->stride_w, p->pad_w, p->ceil_mode);
    if (oh < 1 || ow < 1)
        return seg_error(SEG_STATUS_INVALID, "%s: input %lldx%lld smaller than the window", what,
                         (long long)xs[2], (long long)xs[3]);
    int32_t v[12] = {(int32_t)xs[0], (int32_t)xs[1], (int32_t)xs[2], (int32_t)xs[3],
                     p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_h, p->pad_w,
                     (int32_t)oh, (int32_t)ow};
    memcpy(a->ip, v, sizeof v);
    return SEG_STATUS_OK;
}

enum seg_status seg_maxpool2d(const struct seg_tensor *x, const struct seg_pool2d_params *p,
                              struct seg_tensor **y, struct seg_tensor **idx)
{
    TRY(want_dtype("maxpool2d", x, SEG_DTYPE_F32));
    if (x->ndim != 4)
        return seg_error(SEG_STATUS_INVALID, "maxpool2d: input must be [N, C, H, W]");
    struct seg_op_args a = args(SEG_OP_MAXPOOL2D);
    TRY(pool_args("maxpool2d", x->shape, p, &a));
    int64_t shape[4] = {x->shape[0], x->shape[1], a.ip[10], a.ip[11]};
    TRY(out_new(x->be, SEG_DTYPE_F32, 4, shape, y));
    enum seg_status st = out_new(x->be, SEG_DTYPE_I32, 4, shape, idx);
    if (!st) {
        a.src[0] = x;
        a.dst[0] = *y;
        a.dst[1] = *idx;
        st = seg_op_run(x->be, &a);
    }
    if (st) {
        seg_tensor_free(*y);
        seg_tensor_free(*idx);
        *y = *idx = NULL;
    }
    return st;
}

enum seg_status seg_maxpool2d_bwd(const struct seg_tensor *dy, const struct seg_tensor *idx,
                                  const int64_t *x_shape, const struct seg_pool2d_params *p,
                                  struct seg_tensor **dx)
{
    TRY(same_backend("maxpool2d_bwd", dy, idx));
    TRY(want_dtype("maxpool2d_bwd", dy, SEG_DTYPE_F32));
    TRY(want_dtype("maxpool2d_bwd", idx, SEG_DTYPE_I32));
    struct seg_op_args a = args(SEG_OP_MAXPOOL2D_BWD);
    TRY(pool_args("maxpool2d_bwd", x_shape, p, &a));
    int64_t want = x_shape[0] * x_shape[1] * a.ip[10] * a.ip[11];
    if (seg_tensor_numel(dy) != want || seg_tensor_numel(idx) != want)
        return seg_error(SEG_STATUS_INVALID, "maxpool2d_bwd: dy/index do not match the output size");
    a.src[0] = dy;
    a.src[1] = idx;
    TRY(out_new(dy->be, SEG_DTYPE_F32, 4, x_shape, dx));
    return run_into(dy->be, &a, dx);
}

static enum seg_status resize_args(const char *what, const struct seg_tensor *x, int64_t oh,
                                   int64_t ow, struct seg_op_args *a, int64_t *shape)
{
    if (x->ndim < 2)
        return seg_error(SEG_STATUS_INVALID, "%s: input must be [..., H, W]", what);
    if (oh < 1 || ow < 1)
        return seg_error(SEG_STATUS_INVALID, "%s: output size %lldx%lld", what, (long long)oh,
                         (long long)ow);
    int64_t nc = 1;
    for (int d = 0; d < x->ndim - 2; d++) {
        nc *= x->shape[d];
        shape[d] = x->shape[d];
    }
    shape[x->ndim - 2] = oh;
    shape[x->ndim - 1] = ow;
    a->ip[0] = (int32_t)nc;
    a->ip[1] = (int32_t)x->shape[x->ndim - 2];
    a->ip[2] = (int32_t)x->shape[x->ndim - 1];
    a->ip[3] = (int32_t)oh;
    a->ip[4] = (int32_t)ow;
    a->src[0] = x;
    return SEG_STATUS_OK;
}

enum seg_status seg_resize_bilinear(const struct seg_tensor *x, int64_t oh, int64_t ow,
                                    bool align_corners, struct seg_tensor **y)
{
    TRY(want_dtype("resize_bilinear", x, SEG_DTYPE_F32));
    struct seg_op_args a = args(SEG_OP_RESIZE_BILINEAR);
    int64_t shape[SEG_MAX_DIMS];
    TRY(resize_args("resize_bilinear", x, oh, ow, &a, shape));
    a.ip[5] = align_corners;
    TRY(out_new(x->be, SEG_DTYPE_F32, x->ndim, shape, y));
    return run_into(x->be, &a, y);
}

enum seg_status seg_resize_bilinear_bwd(const struct seg_tensor *dy, int64_t h, int64_t w,
                                        bool align_corners, struct seg_tensor **dx)
{
    TRY(want_dtype("resize_bilinear_bwd", dy, SEG_DTYPE_F32));
    struct seg_op_args a = args(SEG_OP_RESIZE_BILINEAR_BWD);
    int64_t shape[SEG_MAX_DIMS];
    /* The kernel's sizes are the forward's: input h x w, output = dy's spatial size. */
    TRY(resize_args("resize_bilinear_bwd", dy, h, w, &a, shape));
    int32_t oh = a.ip[1], ow = a.ip[2];
    a.ip[1] = (int32_t)h;
    a.ip[2] = (int32_t)w;
    a.ip[3] = oh;
    a.ip[4] = ow;
    a.ip[5] = align_corners;
    TRY(out_new(dy->be, SEG_DTYPE_F32, dy->ndim, shape, dx));
    return run_into(dy->be, &a, dx);
}

enum seg_status seg_resize_nearest(const struct seg_tensor *x, int64_t oh, int64_t ow,
                                   struct seg_tensor **y)
{
    TRY(want_4byte("resize_nearest", x));
    struct seg_op_args a = args(SEG_OP_RESIZE_NEAREST);
    int64_t shape[SEG_MAX_DIMS];
    TRY(resize_args("resize_nearest", x, oh, ow, &a, shape));
    TRY(out_new(x->be, x->dtype, x->ndim, shape, y));
    return run_into(x->be, &a, y);
}

/* ---- indexing ------------------------------------------------------------------------------ */

enum seg_status seg_one_hot(const struct seg_tensor *labels, int num_classes,
                            struct seg_tensor **out)
{
    TRY(want_dtype("one_hot", labels, SEG_DTYPE_I32));
    if (num_classes < 1 || labels->ndim >= SEG_MAX_DIMS)
        return seg_error(SEG_STATUS_INVALID, "one_hot: %d classes, %d label dims", num_classes,
                         labels->ndim);
    struct seg_op_args a = args(SEG_OP_ONE_HOT);
    int64_t p = seg_tensor_numel(labels) / labels->shape[0];
    a.ip[0] = (int32_t)labels->shape[0];
    a.ip[1] = num_classes;
    a.ip[2] = (int32_t)p;
    a.src[0] = labels;
    int64_t shape[SEG_MAX_DIMS];
    shape[0] = labels->shape[0];
    shape[1] = num_classes;
    for (int d = 1; d < labels->ndim; d++)
        shape[d + 1] = labels->shape[d];
    int ndim = labels->ndim + 1;
    if (labels->ndim == 1) { /* [N] -> [N, C] */
        ndim = 2;
    }
    TRY(out_new(labels->be, SEG_DTYPE_F32, ndim, shape, out));
    return run_into(labels->be, &a, out);
}

static enum seg_status index_args(const char *what, const struct seg_tensor *x, int axis,
                                  const struct seg_tensor *idx, struct seg_op_args *a)
{
    TRY(same_backend(what, x, idx));
    TRY(want_dtype(what, idx, SEG_DTYPE_I32));
    if (idx->ndim != x->ndim)
        return seg_error(SEG_STATUS_INVALID, "%s: index and input differ in rank", what);
    for (int d = 0; d < x->ndim; d++)
        if (d != axis && idx->shape[d] != x->shape[d])
            return seg_error(SEG_STATUS_INVALID, "%s: index and input differ outside the axis",
                             what);
    return SEG_STATUS_OK;
}

enum seg_status seg_gather(const struct seg_tensor *x, int axis, const struct seg_tensor *idx,
                           struct seg_tensor **out)
{
    TRY(want_4byte("gather", x));
    TRY(check_axis("gather", x, &axis));
    TRY(index_args("gather", x, axis, idx, NULL));
    struct seg_op_args a = args(SEG_OP_GATHER);
    int32_t o, n, i;
    split_axis(x, axis, &o, &n, &i);
    a.ip[0] = o;
    a.ip[1] = n;
    a.ip[2] = (int32_t)idx->shape[axis];
    a.ip[3] = i;
    a.src[0] = x;
    a.src[1] = idx;
    TRY(out_new(x->be, x->dtype, idx->ndim, idx->shape, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_scatter_add(const struct seg_tensor *x, int axis, const struct seg_tensor *idx,
                                int64_t n, bool unique, struct seg_tensor **out)
{
    TRY(want_dtype("scatter_add", x, SEG_DTYPE_F32));
    TRY(check_axis("scatter_add", x, &axis));
    TRY(index_args("scatter_add", x, axis, idx, NULL));
    if (idx->shape[axis] != x->shape[axis] || n < 1)
        return seg_error(SEG_STATUS_INVALID, "scatter_add: index must match the input; n >= 1");
    struct seg_op_args a = args(SEG_OP_SCATTER_ADD);
    int32_t o, m, i;
    split_axis(x, axis, &o, &m, &i);
    a.ip[0] = o;
    a.ip[1] = (int32_t)n;
    a.ip[2] = m;
    a.ip[3] = i;
    a.ip[4] = unique;
    a.src[0] = x;
    a.src[1] = idx;
    int64_t shape[SEG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = n;
    TRY(out_new(x->be, SEG_DTYPE_F32, x->ndim, shape, out));
    return run_into(x->be, &a, out);
}

static enum seg_status slice_args(const char *what, const struct seg_tensor *x, int *axis,
                                  int64_t start, int64_t len, struct seg_op_args *a)
{
    TRY(want_4byte(what, x));
    TRY(check_axis(what, x, axis));
    if (start < 0 || len < 1 || start + len > x->shape[*axis])
        return seg_error(SEG_STATUS_INVALID, "%s: range [%lld, %lld) outside axis %d of size %lld",
                         what, (long long)start, (long long)(start + len), *axis,
                         (long long)x->shape[*axis]);
    split_axis(x, *axis, &a->ip[0], &a->ip[1], &a->ip[2]);
    a->ip[3] = (int32_t)start;
    a->ip[4] = (int32_t)len;
    return SEG_STATUS_OK;
}

enum seg_status seg_slice(const struct seg_tensor *x, int axis, int64_t start, int64_t len,
                          struct seg_tensor **out)
{
    struct seg_op_args a = args(SEG_OP_SLICE);
    TRY(slice_args("slice", x, &axis, start, len, &a));
    int64_t shape[SEG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = len;
    a.src[0] = x;
    TRY(out_new(x->be, x->dtype, x->ndim, shape, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_slice_assign(struct seg_tensor *dst, int axis, int64_t start,
                                 const struct seg_tensor *src)
{
    TRY(same_backend("slice_assign", dst, src));
    int a0 = axis;
    TRY(check_axis("slice_assign", dst, &a0));
    if (src->ndim != dst->ndim || src->dtype != dst->dtype)
        return seg_error(SEG_STATUS_INVALID, "slice_assign: rank or type differ");
    for (int d = 0; d < dst->ndim; d++)
        if (d != a0 && src->shape[d] != dst->shape[d])
            return seg_error(SEG_STATUS_INVALID, "slice_assign: shapes differ outside the axis");
    struct seg_op_args a = args(SEG_OP_SLICE_ASSIGN);
    TRY(slice_args("slice_assign", dst, &axis, start, src->shape[a0], &a));
    a.src[0] = src;
    a.dst[0] = dst;
    return seg_op_run(dst->be, &a);
}

enum seg_status seg_permute(const struct seg_tensor *x, const int *perm, struct seg_tensor **out)
{
    TRY(want_4byte("permute", x));
    int seen = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= x->ndim || (seen & (1 << perm[d])))
            return seg_error(SEG_STATUS_INVALID, "permute: not a permutation of %d dims", x->ndim);
        seen |= 1 << perm[d];
    }
    struct seg_op_args a = args(SEG_OP_PERMUTE);
    int lead = SEG_MAX_DIMS - x->ndim;
    for (int d = 0; d < SEG_MAX_DIMS; d++) {
        a.ip[d] = d < lead ? 1 : (int32_t)x->shape[d - lead];
        a.ip[4 + d] = d < lead ? d : perm[d - lead] + lead;
    }
    int64_t shape[SEG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        shape[d] = x->shape[perm[d]];
    a.src[0] = x;
    TRY(out_new(x->be, x->dtype, x->ndim, shape, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_sort(const struct seg_tensor *x, bool descending, struct seg_tensor **values,
                         struct seg_tensor **indices)
{
    TRY(want_dtype("sort", x, SEG_DTYPE_F32));
    struct seg_op_args a = args(SEG_OP_SORT);
    int64_t n = x->shape[x->ndim - 1];
    a.ip[0] = (int32_t)(seg_tensor_numel(x) / n);
    a.ip[1] = (int32_t)n;
    a.ip[2] = descending;
    a.src[0] = x;
    TRY(seg_tensor_new_like(x, values));
    enum seg_status st = out_new(x->be, SEG_DTYPE_I32, x->ndim, x->shape, indices);
    if (!st) {
        a.dst[0] = *values;
        a.dst[1] = *indices;
        st = seg_op_run(x->be, &a);
    }
    if (st) {
        seg_tensor_free(*values);
        seg_tensor_free(*indices);
        *values = *indices = NULL;
    }
    return st;
}

enum seg_status seg_cumsum(const struct seg_tensor *x, int axis, bool reverse,
                           struct seg_tensor **out)
{
    TRY(want_dtype("cumsum", x, SEG_DTYPE_F32));
    TRY(check_axis("cumsum", x, &axis));
    struct seg_op_args a = args(SEG_OP_CUMSUM);
    a.ip[0] = reverse;
    split_axis(x, axis, &a.ip[1], &a.ip[2], &a.ip[3]);
    a.src[0] = x;
    TRY(seg_tensor_new_like(x, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_rng_uniform(struct seg_tensor *t, uint32_t seed, uint32_t stream)
{
    TRY(want_dtype("rng_uniform", t, SEG_DTYPE_F32));
    struct seg_op_args a = args(SEG_OP_RNG_UNIFORM);
    a.ip[0] = (int32_t)seed;
    a.ip[1] = (int32_t)stream;
    a.dst[0] = t;
    return seg_op_run(t->be, &a);
}

/* ---- optimizers ------------------------------------------------------------------------------ */

static enum seg_status want_same(const char *what, const struct seg_tensor *a,
                                 const struct seg_tensor *b)
{
    TRY(same_backend(what, a, b));
    TRY(want_dtype(what, b, SEG_DTYPE_F32));
    if (seg_tensor_numel(a) != seg_tensor_numel(b))
        return seg_error(SEG_STATUS_INVALID, "%s: state and parameter differ in size", what);
    return SEG_STATUS_OK;
}

static enum seg_status want_skip_flag(const char *what, const struct seg_tensor *skip)
{
    if (skip && (skip->dtype != SEG_DTYPE_F32 || seg_tensor_numel(skip) != 1))
        return seg_error(SEG_STATUS_INVALID, "%s: the skip flag must be one F32 value", what);
    return SEG_STATUS_OK;
}

enum seg_status seg_sgd_step(struct seg_tensor *param, struct seg_tensor *momentum_buf,
                             const struct seg_tensor *grad, float lr, float momentum, float wd,
                             bool first, const struct seg_tensor *skip)
{
    TRY(want_dtype("sgd_step", param, SEG_DTYPE_F32));
    TRY(want_same("sgd_step", param, momentum_buf));
    TRY(want_same("sgd_step", param, grad));
    TRY(want_skip_flag("sgd_step", skip));
    struct seg_op_args a = args(SEG_OP_SGD_STEP);
    a.dst[0] = param;
    a.dst[1] = momentum_buf;
    a.src[0] = grad;
    a.src[1] = skip;
    a.fp[0] = lr;
    a.fp[1] = momentum;
    a.fp[2] = wd;
    a.ip[0] = first;
    return seg_op_run(param->be, &a);
}

enum seg_status seg_adam_step(struct seg_tensor *param, struct seg_tensor *m, struct seg_tensor *v,
                              const struct seg_tensor *grad, float lr, float b1, float b2,
                              float eps, float wd, float decay, int step, const struct seg_tensor *skip)
{
    TRY(want_dtype("adam_step", param, SEG_DTYPE_F32));
    TRY(want_same("adam_step", param, m));
    TRY(want_same("adam_step", param, v));
    TRY(want_same("adam_step", param, grad));
    TRY(want_skip_flag("adam_step", skip));
    if (step < 1)
        return seg_error(SEG_STATUS_INVALID, "adam_step: step %d (counts from 1)", step);
    struct seg_op_args a = args(SEG_OP_ADAM_STEP);
    a.dst[0] = param;
    a.dst[1] = m;
    a.dst[2] = v;
    a.src[0] = grad;
    a.src[1] = skip;
    a.fp[0] = lr;
    a.fp[1] = b1;
    a.fp[2] = b2;
    a.fp[3] = eps;
    a.fp[4] = wd;
    a.fp[5] = (float)(1.0 - pow(b1, step));
    a.fp[6] = (float)(1.0 - pow(b2, step));
    a.fp[7] = decay;
    return seg_op_run(param->be, &a);
}

enum seg_status seg_nonfinite_any(const struct seg_tensor *x, struct seg_tensor *flag)
{
    TRY(want_dtype("nonfinite_any", x, SEG_DTYPE_F32));
    TRY(want_dtype("nonfinite_any", flag, SEG_DTYPE_F32));
    int64_t n = seg_tensor_numel(x);
    if (seg_tensor_numel(flag) != 1 || n < 1 || n > INT32_MAX)
        return seg_error(SEG_STATUS_INVALID, "nonfinite_any: %lld elements into a flag of %lld",
                         (long long)n, (long long)seg_tensor_numel(flag));
    struct seg_op_args a = args(SEG_OP_NONFINITE_ANY);
    a.dst[0] = flag;
    a.src[0] = x;
    a.ip[0] = (int32_t)n;
    return seg_op_run(x->be, &a);
}

/* ---- bench support ---------------------------------------------------------------------------- */

enum seg_status seg_peak_fma(const struct seg_tensor *x, int iters, float b, float c,
                             struct seg_tensor **out)
{
    TRY(want_dtype("peak_fma", x, SEG_DTYPE_F32));
    int64_t n = seg_tensor_numel(x);
    if (iters < 0 || n > INT32_MAX)
        return seg_error(SEG_STATUS_INVALID, "peak_fma: %d iterations over %lld elements", iters,
                         (long long)n);
    struct seg_op_args a = args(SEG_OP_PEAK_FMA);
    a.ip[0] = iters;
    a.ip[1] = (int32_t)n;
    a.fp[0] = b;
    a.fp[1] = c;
    a.src[0] = x;
    TRY(out_new(x->be, SEG_DTYPE_F32, 1, &n, out));
    return run_into(x->be, &a, out);
}

enum seg_status seg_conv2d_direct(const struct seg_tensor *x, const struct seg_tensor *w,
                                  const struct seg_tensor *b, const struct seg_conv2d_params *p,
                                  struct seg_tensor **y)
{
    TRY(same_backend("conv2d_direct", x, w));
    TRY(same_backend("conv2d_direct", x, b));
    TRY(want_dtype("conv2d_direct", x, SEG_DTYPE_F32));
    TRY(want_dtype("conv2d_direct", w, SEG_DTYPE_F32));
    if (x->ndim != 4 || w->ndim != 4 || w->shape[1] != x->shape[1]) {
        char s1[96], s2[96];
        return seg_error(SEG_STATUS_INVALID, "conv2d_direct: input %s and weight %s do not match",
                         seg_tensor_shape_str(x, s1, sizeof s1), seg_tensor_shape_str(w, s2, sizeof s2));
    }
    if (b && (b->dtype != SEG_DTYPE_F32 || seg_tensor_numel(b) != w->shape[0]))
        return seg_error(SEG_STATUS_INVALID, "conv2d_direct: bias must be f32 [%lld]",
                         (long long)w->shape[0]);
    struct seg_op_args a = args(SEG_OP_CONV2D_DIRECT);
    TRY(conv_args("conv2d_direct", x->shape, (int)w->shape[2], (int)w->shape[3], p, &a));
    a.ip[14] = (int32_t)w->shape[0];
    int64_t shape[4] = {x->shape[0], w->shape[0], a.ip[12], a.ip[13]};
    a.src[0] = x;
    a.src[1] = w;
    a.src[2] = b;
    TRY(out_new(x->be, SEG_DTYPE_F32, 4, shape, y));
    return run_into(x->be, &a, y);
}

bool seg_device_timer_available(const struct seg_backend *be)
{
    return be->iface->timer_start && be->iface->timer_stop;
}

enum seg_status seg_device_timer_start(struct seg_backend *be)
{
    if (!seg_device_timer_available(be))
        return seg_error(SEG_STATUS_UNSUPPORTED, "%s: no device timestamps", be->iface->name);
    return be->iface->timer_start(be);
}

enum seg_status seg_device_timer_stop(struct seg_backend *be, double *device_ms)
{
    *device_ms = 0.0;
    if (!seg_device_timer_available(be))
        return seg_error(SEG_STATUS_UNSUPPORTED, "%s: no device timestamps", be->iface->name);
    return be->iface->timer_stop(be, device_ms);
}

enum seg_status seg_backend_tune(struct seg_backend *be, const struct seg_tune_opts *o)
{
    if (!be->iface->tune)
        return seg_error(SEG_STATUS_UNSUPPORTED, "the %s backend has no tunable kernels",
                         be->iface->name);
    if (!o || !o->shapes || o->nshapes < 1)
        return seg_error(SEG_STATUS_INVALID, "tune: no GEMM shapes given");
    for (int i = 0; i < o->nshapes; i++)
        if (o->shapes[i].m < 1 || o->shapes[i].n < 1 || o->shapes[i].k < 1)
            return seg_error(SEG_STATUS_INVALID, "tune: shape %d is empty", i);
    return be->iface->tune(be, o);
}

const char *seg_backend_tuned(const struct seg_backend *be) { return be->tuned; }

const char *seg_backend_gemm_kernel(const struct seg_backend *be) { return be->gemm_kernel; }

enum seg_status seg_backend_set_matrix_gemm(struct seg_backend *be, bool on)
{
    if (!be->iface->set_matrix_gemm || !be->info.matrix[0])
        return seg_error(SEG_STATUS_UNSUPPORTED, "%s: no matrix hardware segda can use", be->info.spec);
    return be->iface->set_matrix_gemm(be, on);
}

void seg_tune_max_sizes(const struct seg_tune_opts *o, size_t *na, size_t *nb, size_t *nc)
{
    *na = *nb = *nc = 0;
    for (int i = 0; i < o->nshapes; i++) {
        const struct seg_tune_shape *s = &o->shapes[i];
        size_t a = (size_t)s->m * s->k, b = (size_t)s->k * s->n, c = (size_t)s->m * s->n;
        *na = a > *na ? a : *na;
        *nb = b > *nb ? b : *nb;
        *nc = c > *nc ? c : *nc;
    }
}

double seg_tune_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void seg_tune_clock_start(struct seg_tune_clock *c, const struct seg_tune_opts *o, int planned, int finals)
{
    memset(c, 0, sizeof *c);
    c->o = o;
    c->start = c->last_line = seg_tune_now();
    c->planned = planned;
    c->finals = finals;
}

void seg_tune_clock_pass(struct seg_tune_clock *c, double pass_s) { c->pass_s = pass_s; }

static void clock_say(const struct seg_tune_clock *c, const char *line);

bool seg_tune_clock_base(struct seg_tune_clock *c, int i)
{
    double now = seg_tune_now();
    if (i >= 2 && c->o->deadline > 0 && now - c->start > (c->o->deadline - c->start) / 4) {
        char line[200];
        snprintf(line, sizeof line, "budget: the untuned pass stops after %d of %d shapes (%.0f s); candidates are "
                 "compared on those", i, c->o->nshapes, now - c->start);
        clock_say(c, line);
        return false;
    }
    if (now - c->last_line >= 10.0) {
        char line[160];
        c->last_line = now;
        snprintf(line, sizeof line, "progress: untuned pass, shape %d of %d, %.0f s elapsed", i + 1, c->o->nshapes,
                 now - c->start);
        clock_say(c, line);
    }
    return true;
}

static void clock_say(const struct seg_tune_clock *c, const char *line)
{
    if (c->o->log)
        c->o->log(c->o->user, line);
}

/* What the rest takes at the pace so far: the candidates left, then the final checks. */
static double clock_left(const struct seg_tune_clock *c, double now)
{
    double mean = c->tried ? c->search_s / c->tried : c->pass_s / 4;
    double left = (c->planned - c->tried) * mean + c->finals * 1.2 * c->pass_s;
    if (c->o->deadline > 0 && left > c->o->deadline - now)
        left = fmax(c->o->deadline - now, 0.0);
    return left;
}

bool seg_tune_clock_search(struct seg_tune_clock *c)
{
    if (c->o->deadline <= 0 || c->cut)
        return !c->cut;
    /* the first candidate's cost is unknown (a kernel compile can take as long as the pass on
     * a CPU device): half the pass */
    double now = seg_tune_now(), mean = c->tried ? c->search_s / c->tried : c->pass_s / 2;
    /* room for this candidate and for the final check of the best on some of the shapes */
    if (now + mean + 0.5 * c->pass_s > c->o->deadline) {
        char line[200];
        snprintf(line, sizeof line, "budget: the search stops after %d of %d candidates (%.0f s); the best found "
                 "goes to the final check", c->tried, c->planned, now - c->start);
        clock_say(c, line);
        c->cut = true;
        return false;
    }
    return true;
}

void seg_tune_clock_tick(struct seg_tune_clock *c, double t0)
{
    double now = seg_tune_now();
    c->search_s += now - t0;
    c->tried++;
    if (now - c->last_line < 10.0)
        return;
    c->last_line = now;
    char line[200];
    snprintf(line, sizeof line, "progress: %d of %d candidates, %.0f s elapsed, about %.0f s left%s", c->tried,
             c->planned, now - c->start, clock_left(c, now), c->o->deadline > 0 ? " (within --budget)" : "");
    clock_say(c, line);
}

bool seg_tune_clock_final(struct seg_tune_clock *c, int done)
{
    double now = seg_tune_now();
    if (c->o->deadline <= 0)
        return true;
    if (done == 0 ? now < c->o->deadline : now + 1.2 * c->pass_s <= c->o->deadline)
        return true;
    if (!done)
        return false; /* nothing checked: nothing to say but the caller's "nothing stored" */
    char line[160];
    snprintf(line, sizeof line, "budget: %d of %d final checks done (%.0f s)", done, c->finals, now - c->start);
    clock_say(c, line);
    c->cut = true;
    return false;
}

bool seg_tune_clock_shape(struct seg_tune_clock *c, int s)
{
    if (s < 2 || c->o->deadline <= 0 || seg_tune_now() < c->o->deadline)
        return true;
    char line[160];
    snprintf(line, sizeof line, "budget: this final check ends after %d shapes", s);
    clock_say(c, line);
    c->cut = true;
    return false;
}
