/* autograd.c: the tape, backward pass and the differentiable op wrappers. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "model/autograd.h"

#define MAX_IN 6

struct seg_ag_node;
/* Computes gin[i] for every input that requires a gradient. */
typedef enum seg_status (*seg_ag_bwd_fn)(struct seg_ag_node *n, const struct seg_tensor *g,
                                         struct seg_tensor **gin);

struct seg_ag_node {
    seg_ag_bwd_fn      bwd;
    struct seg_var    *in[MAX_IN];
    int                nin;
    bool               kept[MAX_IN]; /* this node holds a use of in[i]'s value */
    bool               kept_out;
    struct seg_var    *out;
    struct seg_tensor *saved[4];     /* owned */
    int32_t            ip[8];
    float              fp[4];
    const struct seg_collective *coll; /* set: the backward communicates (always runs) */
};

struct seg_ag {
    struct seg_backend  *be;
    bool                 grad_on;
    struct seg_ag_node **nodes;
    size_t               nnodes, capnodes;
    struct seg_var     **vars;       /* intermediates owned by the tape */
    size_t               nvars, capvars;
    const struct seg_collective *coll;
    bool                 sync_bn;
};

void seg_ag_set_collective(struct seg_ag *ag, const struct seg_collective *c, bool sync_bn)
{
    ag->coll = c && c->nranks > 1 ? c : NULL;
    ag->sync_bn = ag->coll && sync_bn;
}

const struct seg_collective *seg_ag_collective(const struct seg_ag *ag) { return ag->coll; }

enum seg_status seg_ag_create(struct seg_backend *be, struct seg_ag **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "autograd: out of host memory");
    (*out)->be = be;
    (*out)->grad_on = true;
    return SEG_STATUS_OK;
}

static void node_free(struct seg_ag_node *n)
{
    for (int i = 0; i < 4; i++)
        seg_tensor_free(n->saved[i]);
    free(n);
}

static void var_free(struct seg_var *v)
{
    seg_tensor_free(v->value);
    seg_tensor_free(v->grad);
    free(v);
}

void seg_ag_reset(struct seg_ag *ag)
{
    for (size_t i = 0; i < ag->nnodes; i++)
        node_free(ag->nodes[i]);
    ag->nnodes = 0;
    for (size_t i = 0; i < ag->nvars; i++)
        var_free(ag->vars[i]);
    ag->nvars = 0;
}

void seg_ag_destroy(struct seg_ag *ag)
{
    if (!ag)
        return;
    seg_ag_reset(ag);
    free(ag->nodes);
    free(ag->vars);
    free(ag);
}

bool seg_ag_set_grad_enabled(struct seg_ag *ag, bool on)
{
    bool prev = ag->grad_on;
    ag->grad_on = on;
    return prev;
}

struct seg_backend *seg_ag_backend(const struct seg_ag *ag) { return ag->be; }

enum seg_status seg_var_leaf_new(struct seg_tensor *t, bool requires_grad, struct seg_var **out)
{
    struct seg_var *v = calloc(1, sizeof *v);
    if (!v)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "autograd: out of host memory");
    v->value = t;
    v->requires_grad = requires_grad;
    v->leaf = true;
    *out = v;
    return SEG_STATUS_OK;
}

void seg_var_leaf_free(struct seg_var *v)
{
    if (v)
        var_free(v);
}

void seg_var_zero_grad(struct seg_var *v)
{
    seg_tensor_free(v->grad);
    v->grad = NULL;
}

void seg_var_keep(struct seg_var *v) { v->keep = true; }

void seg_var_done(struct seg_var *v)
{
    if (v && !v->leaf && !v->keep && v->pending == 0) {
        seg_tensor_free(v->value);
        v->value = NULL;
    }
}

/* A tape-owned variable around t (taken over; freed on failure). */
static enum seg_status var_new(struct seg_ag *ag, struct seg_tensor *t, struct seg_var **out)
{
    *out = NULL;
    if (ag->nvars == ag->capvars) {
        size_t cap = ag->capvars ? ag->capvars * 2 : 256;
        struct seg_var **n = realloc(ag->vars, cap * sizeof *n);
        if (!n) {
            seg_tensor_free(t);
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "autograd: out of host memory");
        }
        ag->vars = n;
        ag->capvars = cap;
    }
    struct seg_var *v = calloc(1, sizeof *v);
    if (!v) {
        seg_tensor_free(t);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "autograd: out of host memory");
    }
    v->value = t;
    ag->vars[ag->nvars++] = v;
    *out = v;
    return SEG_STATUS_OK;
}

enum seg_status seg_ag_const(struct seg_ag *ag, struct seg_tensor *t, struct seg_var **out)
{
    return var_new(ag, t, out);
}

enum seg_status seg_ag_detach(struct seg_ag *ag, struct seg_var *x, struct seg_var **out)
{
    struct seg_tensor *t = NULL;
    enum seg_status st = seg_clone(x->value, &t);
    return st ? st : var_new(ag, t, out);
}

static bool wants_grad(struct seg_ag *ag, struct seg_var **in, int nin)
{
    if (!ag->grad_on)
        return false;
    for (int i = 0; i < nin; i++)
        if (in[i] && in[i]->requires_grad)
            return true;
    return false;
}

/* Wraps the op's result y as the output variable and, when needed, records a node.
 * keep_mask bit i: backward reads in[i]'s value; bit 7: it reads the output's value.
 * Takes over y and the saved tensors in all cases. */
static enum seg_status record(struct seg_ag *ag, struct seg_tensor *y, struct seg_var **in, int nin,
                              seg_ag_bwd_fn bwd, unsigned keep_mask, struct seg_tensor **saved,
                              int nsaved, const int32_t *ip, const float *fp,
                              struct seg_var **out)
{
    enum seg_status st = var_new(ag, y, out);
    if (st || !wants_grad(ag, in, nin)) {
        for (int i = 0; i < nsaved; i++)
            seg_tensor_free(saved[i]);
        return st;
    }
    struct seg_ag_node *n = calloc(1, sizeof *n);
    if (n && ag->nnodes == ag->capnodes) {
        size_t cap = ag->capnodes ? ag->capnodes * 2 : 256;
        struct seg_ag_node **grown = realloc(ag->nodes, cap * sizeof *grown);
        if (grown) {
            ag->nodes = grown;
            ag->capnodes = cap;
        }
    }
    if (!n || ag->nnodes == ag->capnodes) {
        free(n);
        for (int i = 0; i < nsaved; i++)
            seg_tensor_free(saved[i]);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "autograd: out of host memory");
    }
    n->bwd = bwd;
    n->nin = nin;
    for (int i = 0; i < nin; i++) {
        n->in[i] = in[i];
        if (in[i] && (keep_mask >> i & 1u)) {
            n->kept[i] = true;
            in[i]->pending++;
        }
    }
    n->out = *out;
    if (keep_mask & 0x80u) {
        n->kept_out = true;
        (*out)->pending++;
    }
    for (int i = 0; i < nsaved; i++)
        n->saved[i] = saved[i];
    if (ip)
        memcpy(n->ip, ip, sizeof n->ip);
    if (fp)
        memcpy(n->fp, fp, sizeof n->fp);
    (*out)->requires_grad = true;
    ag->nodes[ag->nnodes++] = n;
    return SEG_STATUS_OK;
}

/* One use of v's value is done: free it when nothing else needs it. */
static void release(struct seg_var *v)
{
    if (--v->pending == 0 && !v->leaf && !v->keep) {
        seg_tensor_free(v->value);
        v->value = NULL;
    }
}

static enum seg_status accumulate(struct seg_var *v, struct seg_tensor *g)
{
    if (!g)
        return SEG_STATUS_OK;
    if (v->value && seg_tensor_numel(g) == seg_tensor_numel(v->value) &&
        !seg_tensor_same_shape(g, v->value)) {
        enum seg_status st = seg_tensor_set_shape(g, v->value->ndim, v->value->shape);
        if (st) {
            seg_tensor_free(g);
            return st;
        }
    }
    if (!v->grad) {
        v->grad = g;
        return SEG_STATUS_OK;
    }
    struct seg_tensor *sum = NULL;
    enum seg_status st = seg_binary(SEG_BINARY_ADD, v->grad, g, &sum);
    seg_tensor_free(g);
    if (st)
        return st;
    seg_tensor_free(v->grad);
    v->grad = sum;
    return SEG_STATUS_OK;
}

enum seg_status seg_ag_backward(struct seg_ag *ag, struct seg_var *loss)
{
    if (seg_tensor_numel(loss->value) != 1)
        return seg_error(SEG_STATUS_INVALID, "backward: the loss must have one element");
    if (!loss->requires_grad)
        return seg_error(SEG_STATUS_INVALID, "backward: the loss does not depend on any parameter");
    struct seg_tensor *one = NULL;
    enum seg_status st = seg_tensor_new_like(loss->value, &one);
    if (!st)
        st = seg_fill(one, 1.0f);
    if (!st)
        st = accumulate(loss, one);
    for (size_t k = ag->nnodes; !st && k-- > 0;) {
        struct seg_ag_node *n = ag->nodes[k];
        struct seg_tensor *gin[MAX_IN] = {0};
        if (!n->out->grad && n->coll) { /* the other ranks may have a gradient here; in[0]
                                             (kept) has the output's shape in both such ops */
            st = seg_tensor_new_like(n->in[0]->value, &n->out->grad);
            if (!st) st = seg_fill(n->out->grad, 0.0f);
        }
        if (!st && n->out->grad)
            st = n->bwd(n, n->out->grad, gin);
        for (int i = 0; i < n->nin; i++) {
            if (!st && n->in[i] && n->in[i]->requires_grad)
                st = accumulate(n->in[i], gin[i]);
            else
                seg_tensor_free(gin[i]);
        }
        /* This node is done: free what only it needed. */
        for (int i = 0; i < n->nin; i++)
            if (n->kept[i])
                release(n->in[i]);
        if (n->kept_out)
            release(n->out);
        if (!n->out->leaf) {
            seg_tensor_free(n->out->grad);
            n->out->grad = NULL;
        }
        node_free(n);
        ag->nodes[k] = NULL;
        ag->nnodes = k;
    }
    return st;
}

/* ---- op wrappers ----------------------------------------------------------------------- */

static bool need(struct seg_ag_node *n, int i) { return n->in[i] && n->in[i]->requires_grad; }

static enum seg_status bwd_binary(struct seg_ag_node *n, const struct seg_tensor *g,
                                  struct seg_tensor **gin)
{
    /* add/sub keep only shape tokens (saved[0..1]); the others keep both values. */
    bool tokens = n->saved[0] != NULL;
    const struct seg_tensor *a = tokens ? n->saved[0] : n->in[0]->value;
    const struct seg_tensor *b = tokens ? n->saved[1] : n->in[1]->value;
    return seg_binary_bwd((enum seg_binary_fn)n->ip[0], a, b, g, need(n, 0) ? &gin[0] : NULL,
                          need(n, 1) ? &gin[1] : NULL);
}

static enum seg_status shape_token(const struct seg_tensor *x, struct seg_tensor **out);

enum seg_status seg_ag_binary(struct seg_ag *ag, enum seg_binary_fn fn, struct seg_var *a,
                              struct seg_var *b, struct seg_var **out)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_binary(fn, a->value, b->value, &y);
    if (st)
        return st;
    struct seg_var *in[2] = {a, b};
    int32_t ip[8] = {fn};
    if (fn >= SEG_BINARY_EQ) /* comparisons: constants */
        return var_new(ag, y, out);
    if (fn == SEG_BINARY_ADD || fn == SEG_BINARY_SUB) {
        /* The gradient needs only the shapes: the inputs' values can be freed early. */
        struct seg_tensor *tok[2] = {NULL, NULL};
        st = shape_token(a->value, &tok[0]);
        if (!st)
            st = shape_token(b->value, &tok[1]);
        if (st) {
            seg_tensor_free(y);
            seg_tensor_free(tok[0]);
            return st;
        }
        return record(ag, y, in, 2, bwd_binary, 0, tok, 2, ip, NULL, out);
    }
    return record(ag, y, in, 2, bwd_binary, 0x3u, NULL, 0, ip, NULL, out);
}

enum seg_status seg_ag_add(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, struct seg_var **out)
{
    return seg_ag_binary(ag, SEG_BINARY_ADD, a, b, out);
}
enum seg_status seg_ag_sub(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, struct seg_var **out)
{
    return seg_ag_binary(ag, SEG_BINARY_SUB, a, b, out);
}
enum seg_status seg_ag_mul(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, struct seg_var **out)
{
    return seg_ag_binary(ag, SEG_BINARY_MUL, a, b, out);
}
enum seg_status seg_ag_div(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, struct seg_var **out)
{
    return seg_ag_binary(ag, SEG_BINARY_DIV, a, b, out);
}

/* ReLU and leaky ReLU (slope >= 0) keep their output instead of their input: y > 0 exactly
 * where x > 0, so the gradient is the same and the input (usually a batch-norm output) can
 * be freed as soon as the next layer has used it. */
static bool unary_keeps_output(enum seg_unary_fn fn, float p0)
{
    return fn == SEG_UNARY_RELU || (fn == SEG_UNARY_LEAKY_RELU && p0 >= 0.0f);
}

static enum seg_status bwd_unary(struct seg_ag_node *n, const struct seg_tensor *g,
                                 struct seg_tensor **gin)
{
    enum seg_unary_fn fn = (enum seg_unary_fn)n->ip[0];
    const struct seg_tensor *at = unary_keeps_output(fn, n->fp[0]) ? n->out->value : n->in[0]->value;
    return seg_unary_bwd(fn, at, g, n->fp[0], n->fp[1], &gin[0]);
}

enum seg_status seg_ag_unary(struct seg_ag *ag, enum seg_unary_fn fn, struct seg_var *x, float p0,
                             float p1, struct seg_var **out)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_unary(fn, x->value, p0, p1, &y);
    if (st)
        return st;
    int32_t ip[8] = {fn};
    float fp[4] = {p0, p1};
    return record(ag, y, &x, 1, bwd_unary, unary_keeps_output(fn, p0) ? 0x80u : 0x1u, NULL, 0, ip,
                  fp, out);
}

enum seg_status seg_ag_affine(struct seg_ag *ag, struct seg_var *x, float scale, float shift,
                              struct seg_var **out)
{
    return seg_ag_unary(ag, SEG_UNARY_AFFINE, x, scale, shift, out);
}

enum seg_status seg_ag_relu(struct seg_ag *ag, struct seg_var *x, struct seg_var **out)
{
    return seg_ag_unary(ag, SEG_UNARY_RELU, x, 0.0f, 0.0f, out);
}

static enum seg_status bwd_reduce(struct seg_ag_node *n, const struct seg_tensor *g,
                                  struct seg_tensor **gin)
{
    return seg_reduce_bwd((enum seg_reduce_fn)n->ip[0], n->in[0]->value, n->ip[1], n->out->value,
                          g, &gin[0]);
}

enum seg_status seg_ag_reduce(struct seg_ag *ag, enum seg_reduce_fn fn, struct seg_var *x, int axis,
                              bool keepdim, struct seg_var **out)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_reduce(fn, x->value, axis, keepdim, &y);
    if (st)
        return st;
    int32_t ip[8] = {fn, axis < 0 ? axis + x->value->ndim : axis};
    bool extreme = fn == SEG_REDUCE_MAX || fn == SEG_REDUCE_MIN;
    return record(ag, y, &x, 1, bwd_reduce, extreme ? 0x81u : 0x1u, NULL, 0, ip, NULL, out);
}

static enum seg_status flat_reduce(struct seg_ag *ag, enum seg_reduce_fn fn, struct seg_var *x,
                                   struct seg_var **out)
{
    int64_t n = seg_tensor_numel(x->value);
    struct seg_var *flat = NULL;
    enum seg_status st = seg_ag_reshape(ag, x, 1, &n, &flat);
    return st ? st : seg_ag_reduce(ag, fn, flat, 0, false, out);
}

enum seg_status seg_ag_sum_all(struct seg_ag *ag, struct seg_var *x, struct seg_var **out)
{
    return flat_reduce(ag, SEG_REDUCE_SUM, x, out);
}

enum seg_status seg_ag_mean_all(struct seg_ag *ag, struct seg_var *x, struct seg_var **out)
{
    return flat_reduce(ag, SEG_REDUCE_MEAN, x, out);
}

static enum seg_status bwd_softmax(struct seg_ag_node *n, const struct seg_tensor *g,
                                   struct seg_tensor **gin)
{
    return seg_softmax_bwd(n->out->value, g, n->ip[0], n->ip[1], &gin[0]);
}

enum seg_status seg_ag_softmax(struct seg_ag *ag, struct seg_var *x, int axis, bool log,
                               struct seg_var **out)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_softmax(x->value, axis, log, &y);
    if (st)
        return st;
    int32_t ip[8] = {axis, log};
    return record(ag, y, &x, 1, bwd_softmax, 0x80u, NULL, 0, ip, NULL, out);
}

/* Reshape copies: a view could outlive the value it points into. */
static enum seg_status bwd_reshape(struct seg_ag_node *n, const struct seg_tensor *g,
                                   struct seg_tensor **gin)
{
    const int64_t shape[SEG_MAX_DIMS] = {n->ip[1], n->ip[2], n->ip[3], n->ip[4]};
    enum seg_status st = seg_clone(g, &gin[0]);
    if (!st)
        st = seg_tensor_set_shape(gin[0], n->ip[0], shape);
    return st;
}

enum seg_status seg_ag_reshape(struct seg_ag *ag, struct seg_var *x, int ndim, const int64_t *shape,
                               struct seg_var **out)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_clone(x->value, &y);
    if (!st)
        st = seg_tensor_set_shape(y, ndim, shape);
    if (st) {
        seg_tensor_free(y);
        return st;
    }
    int32_t ip[8] = {x->value->ndim};
    for (int d = 0; d < x->value->ndim; d++)
        ip[1 + d] = (int32_t)x->value->shape[d];
    return record(ag, y, &x, 1, bwd_reshape, 0, NULL, 0, ip, NULL, out);
}

static enum seg_status bwd_permute(struct seg_ag_node *n, const struct seg_tensor *g,
                                   struct seg_tensor **gin)
{
    return seg_permute_bwd(g, n->ip, &gin[0]);
}

enum seg_status seg_ag_permute(struct seg_ag *ag, struct seg_var *x, const int *perm,
                               struct seg_var **out)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_permute(x->value, perm, &y);
    if (st)
        return st;
    int32_t ip[8] = {0};
    for (int d = 0; d < x->value->ndim; d++)
        ip[d] = perm[d];
    return record(ag, y, &x, 1, bwd_permute, 0, NULL, 0, ip, NULL, out);
}

static enum seg_status bwd_slice(struct seg_ag_node *n, const struct seg_tensor *g,
                                 struct seg_tensor **gin)
{
    return seg_slice_bwd(n->saved[0], n->ip[0], n->ip[1], g, &gin[0]);
}

/* A zero-sized stand-in is not possible, so backward keeps a 1-element tensor with x's
 * shape metadata instead of x's value. */
static enum seg_status shape_token(const struct seg_tensor *x, struct seg_tensor **out)
{
    int64_t one = 1;
    enum seg_status st = seg_tensor_new(x->be, x->dtype, 1, &one, out);
    if (st)
        return st;
    (*out)->ndim = x->ndim;
    memcpy((*out)->shape, x->shape, sizeof x->shape);
    return SEG_STATUS_OK;
}

enum seg_status seg_ag_slice(struct seg_ag *ag, struct seg_var *x, int axis, int64_t start,
                             int64_t len, struct seg_var **out)
{
    struct seg_tensor *y = NULL, *tok = NULL;
    enum seg_status st = seg_slice(x->value, axis, start, len, &y);
    if (!st)
        st = shape_token(x->value, &tok);
    if (st) {
        seg_tensor_free(y);
        return st;
    }
    int32_t ip[8] = {axis, (int32_t)start};
    return record(ag, y, &x, 1, bwd_slice, 0, &tok, 1, ip, NULL, out);
}

static enum seg_status bwd_gather(struct seg_ag_node *n, const struct seg_tensor *g,
                                  struct seg_tensor **gin)
{
    return seg_gather_bwd(n->saved[0], n->ip[0], n->saved[1], g, &gin[0]);
}

enum seg_status seg_ag_gather(struct seg_ag *ag, struct seg_var *x, int axis,
                              const struct seg_tensor *idx, struct seg_var **out)
{
    struct seg_tensor *y = NULL, *tok = NULL, *ix = NULL;
    enum seg_status st = seg_gather(x->value, axis, idx, &y);
    if (!st)
        st = shape_token(x->value, &tok);
    if (!st && wants_grad(ag, &x, 1)) /* the caller may free idx before backward */
        st = seg_clone(idx, &ix);
    if (st) {
        seg_tensor_free(y);
        seg_tensor_free(tok);
        seg_tensor_free(ix);
        return st;
    }
    struct seg_tensor *saved[2] = {tok, ix};
    int32_t ip[8] = {axis};
    return record(ag, y, &x, 1, bwd_gather, 0, saved, 2, ip, NULL, out);
}

static enum seg_status bwd_concat(struct seg_ag_node *n, const struct seg_tensor *g,
                                  struct seg_tensor **gin)
{
    int64_t at = 0;
    for (int i = 0; i < n->nin; i++) {
        int64_t len = n->ip[1 + i];
        if (need(n, i)) {
            enum seg_status st = seg_slice(g, n->ip[0], at, len, &gin[i]);
            if (st)
                return st;
        }
        at += len;
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_ag_concat(struct seg_ag *ag, struct seg_var **xs, int n, int axis,
                              struct seg_var **out)
{
    if (n < 1 || n > MAX_IN)
        return seg_error(SEG_STATUS_INVALID, "concat: %d inputs (1 to %d)", n, MAX_IN);
    const struct seg_tensor *ts[MAX_IN];
    for (int i = 0; i < n; i++)
        ts[i] = xs[i]->value;
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_concat(ts, n, axis, &y);
    if (st)
        return st;
    int ax = axis < 0 ? axis + xs[0]->value->ndim : axis;
    int32_t ip[8] = {ax};
    for (int i = 0; i < n; i++)
        ip[1 + i] = (int32_t)xs[i]->value->shape[ax];
    return record(ag, y, xs, n, bwd_concat, 0, NULL, 0, ip, NULL, out);
}

static enum seg_status bwd_matmul(struct seg_ag_node *n, const struct seg_tensor *g,
                                  struct seg_tensor **gin)
{
    return seg_matmul_bwd(n->in[0]->value, n->in[1]->value, n->ip[0], n->ip[1], 1.0f, g,
                          need(n, 0) ? &gin[0] : NULL, need(n, 1) ? &gin[1] : NULL);
}

enum seg_status seg_ag_matmul(struct seg_ag *ag, struct seg_var *a, struct seg_var *b, bool trans_a,
                              bool trans_b, struct seg_var **out)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_matmul(a->value, b->value, trans_a, trans_b, 1.0f, 0.0f, &y);
    if (st)
        return st;
    struct seg_var *in[2] = {a, b};
    int32_t ip[8] = {trans_a, trans_b};
    return record(ag, y, in, 2, bwd_matmul, 0x3u, NULL, 0, ip, NULL, out);
}

static struct seg_conv2d_params conv_params_of(const int32_t *ip)
{
    struct seg_conv2d_params p = {ip[0], ip[1], ip[2], ip[3], ip[4], ip[5]};
    return p;
}

static enum seg_status bwd_conv2d(struct seg_ag_node *n, const struct seg_tensor *g,
                                  struct seg_tensor **gin)
{
    struct seg_conv2d_params p = conv_params_of(n->ip);
    const struct seg_tensor *x = n->in[0]->value, *w = n->in[1]->value;
    enum seg_status st = SEG_STATUS_OK;
    if (need(n, 0))
        st = seg_conv2d_bwd_data(g, w, x->shape, &p, &gin[0]);
    if (!st && (need(n, 1) || need(n, 2))) {
        struct seg_tensor *dw = NULL, *db = NULL;
        st = seg_conv2d_bwd_weight(x, g, w->shape, &p, &dw, need(n, 2) ? &db : NULL);
        if (!st) {
            if (need(n, 1))
                gin[1] = dw;
            else
                seg_tensor_free(dw);
            gin[2] = db;
        }
    }
    return st;
}

enum seg_status seg_ag_conv2d(struct seg_ag *ag, struct seg_var *x, struct seg_var *w,
                              struct seg_var *b, const struct seg_conv2d_params *p,
                              struct seg_var **out)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_conv2d(x->value, w->value, b ? b->value : NULL, p, &y);
    if (st)
        return st;
    struct seg_var *in[3] = {x, w, b};
    int32_t ip[8] = {p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->dil_h, p->dil_w};
    return record(ag, y, in, b ? 3 : 2, bwd_conv2d, 0x3u, NULL, 0, ip, NULL, out);
}

static enum seg_status bwd_maxpool(struct seg_ag_node *n, const struct seg_tensor *g,
                                   struct seg_tensor **gin)
{
    struct seg_pool2d_params p = {n->ip[0], n->ip[1], n->ip[2], n->ip[3], n->ip[4], n->ip[5], n->ip[6]};
    return seg_maxpool2d_bwd(g, n->saved[0], n->saved[1]->shape, &p, &gin[0]);
}

enum seg_status seg_ag_maxpool2d(struct seg_ag *ag, struct seg_var *x,
                                 const struct seg_pool2d_params *p, struct seg_var **out)
{
    struct seg_tensor *y = NULL, *saved[2] = {NULL, NULL};
    enum seg_status st = seg_maxpool2d(x->value, p, &y, &saved[0]);
    if (!st)
        st = shape_token(x->value, &saved[1]);
    if (st) {
        seg_tensor_free(y);
        seg_tensor_free(saved[0]);
        return st;
    }
    int32_t ip[8] = {p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->ceil_mode};
    return record(ag, y, &x, 1, bwd_maxpool, 0, saved, 2, ip, NULL, out);
}

static enum seg_status bwd_resize(struct seg_ag_node *n, const struct seg_tensor *g,
                                  struct seg_tensor **gin)
{
    return seg_resize_bilinear_bwd(g, n->ip[0], n->ip[1], n->ip[2], &gin[0]);
}

enum seg_status seg_ag_resize_bilinear(struct seg_ag *ag, struct seg_var *x, int64_t oh, int64_t ow,
                                       bool align_corners, struct seg_var **out)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_resize_bilinear(x->value, oh, ow, align_corners, &y);
    if (st)
        return st;
    int nd = x->value->ndim;
    int32_t ip[8] = {(int32_t)x->value->shape[nd - 2], (int32_t)x->value->shape[nd - 1], align_corners};
    return record(ag, y, &x, 1, bwd_resize, 0, NULL, 0, ip, NULL, out);
}

/* The node just recorded for out communicates in its backward, which then always runs (no
 * node is recorded when no input needs a gradient). */
static void mark_collective(struct seg_ag *ag, const struct seg_var *out)
{
    if (ag->nnodes && ag->nodes[ag->nnodes - 1]->out == out)
        ag->nodes[ag->nnodes - 1]->coll = ag->coll;
}

/* *t = s * *t, into a new tensor. */
static enum seg_status scale_in_place(struct seg_tensor **t, float s)
{
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_unary(SEG_UNARY_AFFINE, *t, s, 0.0f, &y);
    if (!st) {
        seg_tensor_free(*t);
        *t = y;
    }
    return st;
}

/* Synchronized BN backward: dbeta = sum(dy) and dgamma = sum(dy * xhat) are summed over the
 * ranks, then dx = gamma * invstd * (dy - dbeta_g/M - xhat * dgamma_g/M), M the global count,
 * computed as the constant-statistics backward of dy' = dy + BN(x; gamma = -dgamma_g/M,
 * beta = -dbeta_g/M). gamma and beta get this rank's own sums: the gradient averaging of
 * the data-parallel optimizer combines them. */
static enum seg_status bwd_batchnorm_sync(struct seg_ag_node *n, const struct seg_tensor *g,
                                          struct seg_tensor **gin)
{
    const struct seg_tensor *x = n->in[0]->value, *gamma = n->in[1] ? n->in[1]->value : NULL;
    struct seg_tensor *dg = NULL, *db = NULL, *sg = NULL, *sb = NULL, *corr = NULL, *dy2 = NULL;
    float inv_m = 1.0f / ((float)(seg_tensor_numel(x) / x->shape[1]) * (float)n->coll->nranks);
    enum seg_status st = seg_batchnorm_bwd(x, g, n->saved[0], n->saved[1], gamma, n->fp[0], true, NULL,
                                           &dg, &db);
    if (!st) st = seg_clone(dg, &sg);
    if (!st) st = seg_clone(db, &sb);
    if (!st) st = n->coll->sum(n->coll->ctx, sg);
    if (!st) st = n->coll->sum(n->coll->ctx, sb);
    if (!st) st = scale_in_place(&sg, -inv_m);
    if (!st) st = scale_in_place(&sb, -inv_m);
    if (!st) st = seg_batchnorm(x, n->saved[0], n->saved[1], sg, sb, n->fp[0], &corr);
    if (!st) st = seg_binary(SEG_BINARY_ADD, g, corr, &dy2);
    if (!st && need(n, 0))
        st = seg_batchnorm_bwd(x, dy2, n->saved[0], n->saved[1], gamma, n->fp[0], false, &gin[0], NULL, NULL);
    if (!st && need(n, 1)) {
        gin[1] = dg;
        dg = NULL;
    }
    if (!st && need(n, 2)) {
        gin[2] = db;
        db = NULL;
    }
    seg_tensor_free(dg);
    seg_tensor_free(db);
    seg_tensor_free(sg);
    seg_tensor_free(sb);
    seg_tensor_free(corr);
    seg_tensor_free(dy2);
    return st;
}

static enum seg_status bwd_batchnorm(struct seg_ag_node *n, const struct seg_tensor *g,
                                     struct seg_tensor **gin)
{
    if (n->coll && n->ip[0])
        return bwd_batchnorm_sync(n, g, gin);
    return seg_batchnorm_bwd(n->in[0]->value, g, n->saved[0], n->saved[1],
                             n->in[1] ? n->in[1]->value : NULL, n->fp[0], n->ip[0],
                             need(n, 0) ? &gin[0] : NULL, need(n, 1) ? &gin[1] : NULL,
                             need(n, 2) ? &gin[2] : NULL);
}

/* The global batch's mean and biased variance from every rank's (equal counts): the mean
 * of the means, and the mean over ranks of var_r + (mean_r - mean)^2 (Chan et al.'s
 * pairwise update, which keeps the two-pass accuracy). Replaces *mean and *var. */
static enum seg_status sync_batch_stats(const struct seg_collective *c, struct seg_tensor **mean,
                                        struct seg_tensor **var)
{
    struct seg_tensor *m = NULL, *d = NULL, *d2 = NULL, *v = NULL;
    float inv_r = 1.0f / (float)c->nranks;
    enum seg_status st = seg_clone(*mean, &m);
    if (!st) st = c->sum(c->ctx, m);
    if (!st) st = scale_in_place(&m, inv_r);
    if (!st) st = seg_binary(SEG_BINARY_SUB, *mean, m, &d);
    if (!st) st = seg_binary(SEG_BINARY_MUL, d, d, &d2);
    if (!st) st = seg_binary(SEG_BINARY_ADD, *var, d2, &v);
    if (!st) st = c->sum(c->ctx, v);
    if (!st) st = scale_in_place(&v, inv_r);
    seg_tensor_free(d);
    seg_tensor_free(d2);
    if (st) {
        seg_tensor_free(m);
        seg_tensor_free(v);
        return st;
    }
    seg_tensor_free(*mean);
    seg_tensor_free(*var);
    *mean = m;
    *var = v;
    return SEG_STATUS_OK;
}

/* running = (1 - m) * running + m * batch; the variance is made unbiased first. */
static enum seg_status update_running(struct seg_tensor *running, const struct seg_tensor *batch,
                                      float m, float unbias)
{
    struct seg_tensor *a = NULL, *b = NULL, *s = NULL;
    enum seg_status st = seg_unary(SEG_UNARY_AFFINE, running, 1.0f - m, 0.0f, &a);
    if (!st)
        st = seg_unary(SEG_UNARY_AFFINE, batch, m * unbias, 0.0f, &b);
    if (!st)
        st = seg_binary(SEG_BINARY_ADD, a, b, &s);
    if (!st)
        st = seg_tensor_copy(running, s);
    seg_tensor_free(a);
    seg_tensor_free(b);
    seg_tensor_free(s);
    return st;
}

enum seg_status seg_ag_batchnorm(struct seg_ag *ag, struct seg_var *x, struct seg_var *gamma,
                                 struct seg_var *beta, struct seg_tensor *running_mean,
                                 struct seg_tensor *running_var, enum seg_bn_mode mode,
                                 float momentum, float eps, struct seg_var **out)
{
    struct seg_tensor *mean = NULL, *var = NULL, *y = NULL;
    enum seg_status st;
    bool batch = mode == SEG_BN_BATCH_STATS;
    if (batch) {
        st = seg_batchnorm_stats(x->value, &mean, &var);
        if (!st && ag->sync_bn)
            st = sync_batch_stats(ag->coll, &mean, &var);
        if (!st && running_mean && running_var) {
            int64_t m = seg_tensor_numel(x->value) / x->value->shape[1] * (ag->sync_bn ? ag->coll->nranks : 1);
            float unbias = m > 1 ? (float)m / (float)(m - 1) : 1.0f;
            st = update_running(running_mean, mean, momentum, 1.0f);
            if (!st)
                st = update_running(running_var, var, momentum, unbias);
        }
    } else {
        if (!running_mean || !running_var)
            return seg_error(SEG_STATUS_INVALID, "batchnorm: frozen mode needs running statistics");
        st = seg_clone(running_mean, &mean);
        if (!st)
            st = seg_clone(running_var, &var);
    }
    if (!st)
        st = seg_batchnorm(x->value, mean, var, gamma ? gamma->value : NULL,
                           beta ? beta->value : NULL, eps, &y);
    if (st) {
        seg_tensor_free(mean);
        seg_tensor_free(var);
        return st;
    }
    struct seg_var *in[3] = {x, gamma, beta};
    struct seg_tensor *saved[2] = {mean, var};
    int32_t ip[8] = {batch};
    float fp[4] = {eps};
    st = record(ag, y, in, 3, bwd_batchnorm, 0x3u, saved, 2, ip, fp, out);
    if (!st && batch && ag->sync_bn)
        mark_collective(ag, *out);
    return st;
}

static enum seg_status bwd_allreduce(struct seg_ag_node *n, const struct seg_tensor *g, struct seg_tensor **gin)
{
    enum seg_status st = seg_clone(g, &gin[0]);
    return st ? st : n->coll->sum(n->coll->ctx, gin[0]);
}

enum seg_status seg_ag_allreduce_sum(struct seg_ag *ag, struct seg_var *x, struct seg_var **out)
{
    if (!ag->coll) {
        *out = x;
        return SEG_STATUS_OK;
    }
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_clone(x->value, &y);
    if (!st) st = ag->coll->sum(ag->coll->ctx, y);
    if (st) {
        seg_tensor_free(y);
        return st;
    }
    st = record(ag, y, &x, 1, bwd_allreduce, 0x1u, NULL, 0, NULL, NULL, out);
    if (!st)
        mark_collective(ag, *out);
    return st;
}

static enum seg_status bwd_ce(struct seg_ag_node *n, const struct seg_tensor *g,
                              struct seg_tensor **gin)
{
    return seg_cross_entropy_grad(n->in[0]->value, n->saved[0], n->saved[1], n->ip[0], n->saved[2],
                                  g, &gin[0]);
}

static enum seg_status ag_cross_entropy(struct seg_ag *ag, struct seg_var *logits,
                                        const struct seg_tensor *labels,
                                        const struct seg_tensor *weights, int ignore_index,
                                        bool empty_zero, struct seg_var **out)
{
    struct seg_tensor *loss = NULL, *wsum = NULL, *lab = NULL, *w = NULL;
    enum seg_status st = seg_cross_entropy(logits->value, labels, weights, ignore_index, empty_zero, &loss, &wsum);
    if (!st)
        st = seg_clone(labels, &lab);
    if (!st && weights)
        st = seg_clone(weights, &w);
    if (st) {
        seg_tensor_free(loss);
        seg_tensor_free(wsum);
        seg_tensor_free(lab);
        return st;
    }
    struct seg_tensor *saved[3] = {lab, w, wsum};
    int32_t ip[8] = {ignore_index};
    return record(ag, loss, &logits, 1, bwd_ce, 0x1u, saved, 3, ip, NULL, out);
}

enum seg_status seg_ag_cross_entropy(struct seg_ag *ag, struct seg_var *logits,
                                     const struct seg_tensor *labels,
                                     const struct seg_tensor *weights, int ignore_index,
                                     struct seg_var **out)
{
    return ag_cross_entropy(ag, logits, labels, weights, ignore_index, false, out);
}

enum seg_status seg_ag_cross_entropy_or_zero(struct seg_ag *ag, struct seg_var *logits,
                                             const struct seg_tensor *labels,
                                             const struct seg_tensor *weights, int ignore_index,
                                             struct seg_var **out)
{
    return ag_cross_entropy(ag, logits, labels, weights, ignore_index, true, out);
}

static enum seg_status bwd_sort(struct seg_ag_node *n, const struct seg_tensor *g,
                                struct seg_tensor **gin)
{
    return seg_sort_bwd(n->saved[0], g, &gin[0]);
}

enum seg_status seg_ag_sort(struct seg_ag *ag, struct seg_var *x, bool descending,
                            struct seg_var **values, struct seg_var **indices)
{
    struct seg_tensor *v = NULL, *ix = NULL, *ixs = NULL;
    enum seg_status st = seg_sort(x->value, descending, &v, &ix);
    if (!st)
        st = seg_clone(ix, &ixs);
    if (!st)
        st = var_new(ag, ix, indices);
    else
        seg_tensor_free(ix);
    if (st) {
        seg_tensor_free(v);
        seg_tensor_free(ixs);
        return st;
    }
    return record(ag, v, &x, 1, bwd_sort, 0, &ixs, 1, NULL, NULL, values);
}
