/* grad.c: backward rules written as ordinary ops, so every backend runs them and the
 * op harness checks them against finite differences. */
#include <stdlib.h>

#include "backend/backend.h"
#include "core/ops.h"

#define TRY(expr)                                                                            \
    do {                                                                                     \
        enum seg_status st_ = (expr);                                                        \
        if (st_)                                                                             \
            goto fail;                                                                       \
    } while (0)

#define FREE(...)                                                                            \
    do {                                                                                     \
        struct seg_tensor *ts_[] = {__VA_ARGS__};                                            \
        for (size_t i_ = 0; i_ < sizeof ts_ / sizeof ts_[0]; i_++)                           \
            seg_tensor_free(ts_[i_]);                                                        \
    } while (0)

/* dy reduced to t's shape, optionally multiplied by f first. */
static enum seg_status to_shape(const struct seg_tensor *g, const struct seg_tensor *like,
                                struct seg_tensor **out)
{
    return seg_reduce_to_shape(g, like->ndim, like->shape, out);
}

static enum seg_status scalar_like(struct seg_backend *be, float v, struct seg_tensor **out)
{
    int64_t one = 1;
    enum seg_status st = seg_tensor_new(be, SEG_DTYPE_F32, 1, &one, out);
    if (!st)
        st = seg_fill(*out, v);
    return st;
}

enum seg_status seg_binary_bwd(enum seg_binary_fn fn, const struct seg_tensor *a,
                               const struct seg_tensor *b, const struct seg_tensor *dy,
                               struct seg_tensor **da, struct seg_tensor **db)
{
    struct seg_tensor *ga = NULL, *gb = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL, *half = NULL;
    enum seg_status st = SEG_STATUS_OK;
    if (da)
        *da = NULL;
    if (db)
        *db = NULL;
    switch (fn) {
    case SEG_BINARY_ADD:
    case SEG_BINARY_SUB:
        if (da)
            TRY(st = to_shape(dy, a, da));
        if (db) {
            TRY(st = to_shape(dy, b, &t1));
            if (fn == SEG_BINARY_SUB) {
                TRY(st = seg_unary(SEG_UNARY_NEG, t1, 0, 0, db));
                FREE(t1);
                t1 = NULL;
            } else {
                *db = t1;
                t1 = NULL;
            }
        }
        return SEG_STATUS_OK;
    case SEG_BINARY_MUL:
        if (da) {
            TRY(st = seg_binary(SEG_BINARY_MUL, dy, b, &t1));
            TRY(st = to_shape(t1, a, da));
        }
        if (db) {
            TRY(st = seg_binary(SEG_BINARY_MUL, dy, a, &t2));
            TRY(st = to_shape(t2, b, db));
        }
        break;
    case SEG_BINARY_DIV: /* da = dy / b, db = -dy * a / b^2 */
        if (da) {
            TRY(st = seg_binary(SEG_BINARY_DIV, dy, b, &t1));
            TRY(st = to_shape(t1, a, da));
        }
        if (db) {
            TRY(st = seg_binary(SEG_BINARY_MUL, dy, a, &t2));
            TRY(st = seg_unary(SEG_UNARY_SQUARE, b, 0, 0, &t3));
            TRY(st = seg_binary(SEG_BINARY_DIV, t2, t3, &ga));
            TRY(st = seg_unary(SEG_UNARY_NEG, ga, 0, 0, &gb));
            TRY(st = to_shape(gb, b, db));
        }
        break;
    case SEG_BINARY_POW: { /* da = dy * b * a^(b-1), db = dy * a^b * log(a) */
        if (da) {
            struct seg_tensor *bm1 = NULL;
            TRY(st = seg_unary(SEG_UNARY_AFFINE, b, 1.0f, -1.0f, &bm1));
            st = seg_binary(SEG_BINARY_POW, a, bm1, &t1);
            seg_tensor_free(bm1);
            if (st)
                goto fail;
            TRY(st = seg_binary(SEG_BINARY_MUL, t1, b, &t2));
            TRY(st = seg_binary(SEG_BINARY_MUL, t2, dy, &t3));
            TRY(st = to_shape(t3, a, da));
            FREE(t1, t2, t3);
            t1 = t2 = t3 = NULL;
        }
        if (db) {
            TRY(st = seg_binary(SEG_BINARY_POW, a, b, &t1));
            TRY(st = seg_unary(SEG_UNARY_LOG, a, 0, 0, &t2));
            TRY(st = seg_binary(SEG_BINARY_MUL, t1, t2, &t3));
            TRY(st = seg_binary(SEG_BINARY_MUL, t3, dy, &ga));
            TRY(st = to_shape(ga, b, db));
        }
        break;
    }
    case SEG_BINARY_MAX:
    case SEG_BINARY_MIN: { /* PyTorch: the winner takes dy, ties split it in half */
        TRY(st = seg_binary(fn == SEG_BINARY_MAX ? SEG_BINARY_GT : SEG_BINARY_LT, a, b, &t1));
        TRY(st = seg_binary(SEG_BINARY_EQ, a, b, &t2));
        TRY(st = scalar_like(a->be, 0.5f, &half));
        TRY(st = seg_binary(SEG_BINARY_MUL, t2, half, &t3));
        FREE(t2);
        t2 = NULL;
        TRY(st = seg_binary(SEG_BINARY_ADD, t1, t3, &ga)); /* weight of a */
        if (da) {
            TRY(st = seg_binary(SEG_BINARY_MUL, dy, ga, &t2));
            TRY(st = to_shape(t2, a, da));
            FREE(t2);
            t2 = NULL;
        }
        if (db) {
            TRY(st = seg_unary(SEG_UNARY_AFFINE, ga, -1.0f, 1.0f, &gb));
            TRY(st = seg_binary(SEG_BINARY_MUL, dy, gb, &t2));
            TRY(st = to_shape(t2, b, db));
        }
        break;
    }
    default:
        return seg_error(SEG_STATUS_INVALID, "binary_bwd: comparison %d has no gradient", (int)fn);
    }
    FREE(ga, gb, t1, t2, t3, half);
    return SEG_STATUS_OK;
fail:
    FREE(ga, gb, t1, t2, t3, half);
    if (da && *da) {
        seg_tensor_free(*da);
        *da = NULL;
    }
    if (db && *db) {
        seg_tensor_free(*db);
        *db = NULL;
    }
    return st;
}

enum seg_status seg_where_bwd(const struct seg_tensor *cond, const struct seg_tensor *dy,
                              struct seg_tensor **da, struct seg_tensor **db)
{
    struct seg_tensor *zero = NULL;
    enum seg_status st = seg_tensor_new_like(dy, &zero);
    if (!st)
        st = seg_fill(zero, 0.0f);
    if (!st && da)
        st = seg_where(cond, dy, zero, da);
    if (!st && db)
        st = seg_where(cond, zero, dy, db);
    seg_tensor_free(zero);
    return st;
}

enum seg_status seg_reduce_bwd(enum seg_reduce_fn fn, const struct seg_tensor *x, int axis,
                               const struct seg_tensor *y, const struct seg_tensor *dy,
                               struct seg_tensor **dx)
{
    struct seg_tensor *dyk = NULL, *g = NULL, *yk = NULL, *ye = NULL, *mask = NULL, *cnt = NULL,
                      *cnte = NULL, *t = NULL;
    enum seg_status st;
    *dx = NULL;
    if (axis < 0)
        axis += x->ndim;
    int64_t kshape[SEG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        kshape[d] = d == axis ? 1 : x->shape[d];
    /* dy with the reduced axis kept, broadcast back to x's shape. */
    TRY(st = seg_tensor_reshape((struct seg_tensor *)dy, x->ndim, kshape, &dyk));
    TRY(st = seg_expand(dyk, x->ndim, x->shape, &g));
    if (fn == SEG_REDUCE_SUM) {
        *dx = g;
        g = NULL;
    } else if (fn == SEG_REDUCE_MEAN) {
        TRY(st = seg_unary(SEG_UNARY_AFFINE, g, 1.0f / (float)x->shape[axis], 0.0f, dx));
    } else { /* max/min: dy shared evenly among the elements equal to the result */
        TRY(st = seg_tensor_reshape((struct seg_tensor *)y, x->ndim, kshape, &yk));
        TRY(st = seg_expand(yk, x->ndim, x->shape, &ye));
        TRY(st = seg_binary(SEG_BINARY_EQ, x, ye, &mask));
        TRY(st = seg_reduce(SEG_REDUCE_SUM, mask, axis, true, &cnt));
        TRY(st = seg_binary(SEG_BINARY_DIV, mask, cnt, &t));
        TRY(st = seg_binary(SEG_BINARY_MUL, t, g, dx));
    }
    st = SEG_STATUS_OK;
fail:
    FREE(dyk, g, yk, ye, mask, cnt, cnte, t);
    return st;
}

enum seg_status seg_matmul_bwd(const struct seg_tensor *a, const struct seg_tensor *b, bool trans_a,
                               bool trans_b, float alpha, const struct seg_tensor *dc,
                               struct seg_tensor **da, struct seg_tensor **db)
{
    enum seg_status st = SEG_STATUS_OK;
    struct seg_tensor *tmp = NULL;
    if (da)
        *da = NULL;
    if (db)
        *db = NULL;
    bool batched = dc->ndim == 3;
    /* C = A' B' with A' = op(A), B' = op(B). dA' = dC B'^T, dB' = A'^T dC. */
    if (da) {
        /* dA = trans_a ? (B' dC^T) : dC B'^T */
        if (!trans_a)
            TRY(st = seg_matmul(dc, b, false, !trans_b, alpha, 0.0f, &tmp));
        else
            TRY(st = seg_matmul(b, dc, trans_b, true, alpha, 0.0f, &tmp));
        if (a->ndim == 2 && batched) {
            TRY(st = seg_reduce(SEG_REDUCE_SUM, tmp, 0, false, da));
            seg_tensor_free(tmp);
        } else {
            *da = tmp;
        }
        tmp = NULL;
    }
    if (db) {
        /* dB = trans_b ? dC^T A' : A'^T dC */
        if (!trans_b)
            TRY(st = seg_matmul(a, dc, !trans_a, false, alpha, 0.0f, &tmp));
        else
            TRY(st = seg_matmul(dc, a, true, trans_a, alpha, 0.0f, &tmp));
        if (b->ndim == 2 && batched) {
            TRY(st = seg_reduce(SEG_REDUCE_SUM, tmp, 0, false, db));
            seg_tensor_free(tmp);
        } else {
            *db = tmp;
        }
        tmp = NULL;
    }
    return SEG_STATUS_OK;
fail:
    seg_tensor_free(tmp);
    if (da && *da) {
        seg_tensor_free(*da);
        *da = NULL;
    }
    return st;
}

enum seg_status seg_gather_bwd(const struct seg_tensor *x, int axis, const struct seg_tensor *idx,
                               const struct seg_tensor *dy, struct seg_tensor **dx)
{
    if (axis < 0)
        axis += x->ndim;
    return seg_scatter_add(dy, axis, idx, x->shape[axis], false, dx);
}

enum seg_status seg_slice_bwd(const struct seg_tensor *x, int axis, int64_t start,
                              const struct seg_tensor *dy, struct seg_tensor **dx)
{
    enum seg_status st = seg_tensor_new(x->be, SEG_DTYPE_F32, x->ndim, x->shape, dx);
    if (!st)
        st = seg_fill(*dx, 0.0f);
    if (!st)
        st = seg_slice_assign(*dx, axis, start, dy);
    if (st) {
        seg_tensor_free(*dx);
        *dx = NULL;
    }
    return st;
}

enum seg_status seg_permute_bwd(const struct seg_tensor *dy, const int *perm,
                                struct seg_tensor **dx)
{
    int inv[SEG_MAX_DIMS];
    for (int d = 0; d < dy->ndim; d++)
        inv[perm[d]] = d;
    return seg_permute(dy, inv, dx);
}

enum seg_status seg_sort_bwd(const struct seg_tensor *indices, const struct seg_tensor *dy,
                             struct seg_tensor **dx)
{
    return seg_scatter_add(dy, dy->ndim - 1, indices, dy->shape[dy->ndim - 1], true, dx);
}
