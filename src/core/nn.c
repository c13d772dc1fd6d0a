/* nn.c: convolution as im2col + GEMM (1x1 stride-1 convolutions skip the im2col) or, on
 * backends that prefer it, the direct forward (CONV2D_DIRECT); and concatenation. */
#include <stdlib.h>

#include "backend/backend.h"
#include "core/ops.h"

static bool conv_is_pointwise(int kh, int kw, const struct seg_conv2d_params *p)
{
    return kh == 1 && kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
           p->pad_w == 0;
}

/* Columns of x as [N, Cin*KH*KW, OH*OW] (a view of x itself for pointwise convolutions). */
static enum seg_status conv_columns(const struct seg_tensor *x, int kh, int kw,
                                    const struct seg_conv2d_params *p, struct seg_tensor **col)
{
    if (conv_is_pointwise(kh, kw, p)) {
        int64_t s[3] = {x->shape[0], x->shape[1], x->shape[2] * x->shape[3]};
        return seg_tensor_reshape((struct seg_tensor *)x, 3, s, col);
    }
    return seg_im2col(x, kh, kw, p, col);
}

enum seg_status seg_conv2d(const struct seg_tensor *x, const struct seg_tensor *w,
                           const struct seg_tensor *b, const struct seg_conv2d_params *p,
                           struct seg_tensor **y)
{
    *y = NULL;
    if (x->ndim != 4 || w->ndim != 4 || w->shape[1] != x->shape[1]) {
        char s1[96], s2[96];
        return seg_error(SEG_STATUS_INVALID, "conv2d: input %s and weight %s do not match",
                         seg_tensor_shape_str(x, s1, sizeof s1), seg_tensor_shape_str(w, s2, sizeof s2));
    }
    int kh = (int)w->shape[2], kw = (int)w->shape[3];
    if (x->be->conv_direct && !conv_is_pointwise(kh, kw, p) && seg_backend_has_op(x->be, SEG_OP_CONV2D_DIRECT))
        return seg_conv2d_direct(x, w, b, p, y);
    int64_t oh = seg_conv2d_out_size(x->shape[2], kh, p->stride_h, p->pad_h, p->dil_h);
    int64_t ow = seg_conv2d_out_size(x->shape[3], kw, p->stride_w, p->pad_w, p->dil_w);
    struct seg_tensor *col = NULL, *w2 = NULL, *y3 = NULL, *bias = NULL;
    int64_t wshape[2] = {w->shape[0], w->shape[1] * kh * kw};
    enum seg_status st = conv_columns(x, kh, kw, p, &col);
    if (!st)
        st = seg_tensor_reshape((struct seg_tensor *)w, 2, wshape, &w2);
    if (!st)
        st = seg_matmul(w2, col, false, false, 1.0f, 0.0f, &y3); /* [N, Cout, OH*OW] */
    int64_t yshape[4] = {x->shape[0], w->shape[0], oh, ow};
    if (!st && b) {
        int64_t bshape[3] = {1, w->shape[0], 1};
        struct seg_tensor *yb = NULL;
        st = seg_tensor_reshape((struct seg_tensor *)b, 3, bshape, &bias);
        if (!st)
            st = seg_binary(SEG_BINARY_ADD, y3, bias, &yb);
        if (!st) {
            seg_tensor_free(y3);
            y3 = yb;
        }
    }
    if (!st)
        st = seg_tensor_set_shape(y3, 4, yshape);
    if (!st) {
        *y = y3;
        y3 = NULL;
    }
    seg_tensor_free(y3);
    seg_tensor_free(col);
    seg_tensor_free(w2);
    seg_tensor_free(bias);
    return st;
}

enum seg_status seg_conv2d_bwd_data(const struct seg_tensor *dy, const struct seg_tensor *w,
                                    const int64_t *x_shape, const struct seg_conv2d_params *p,
                                    struct seg_tensor **dx)
{
    *dx = NULL;
    int kh = (int)w->shape[2], kw = (int)w->shape[3];
    int64_t wshape[2] = {w->shape[0], w->shape[1] * kh * kw};
    int64_t dshape[3] = {dy->shape[0], dy->shape[1], dy->shape[2] * dy->shape[3]};
    struct seg_tensor *w2 = NULL, *dy3 = NULL, *dcol = NULL;
    enum seg_status st = seg_tensor_reshape((struct seg_tensor *)w, 2, wshape, &w2);
    if (!st)
        st = seg_tensor_reshape((struct seg_tensor *)dy, 3, dshape, &dy3);
    if (!st)
        st = seg_matmul(w2, dy3, true, false, 1.0f, 0.0f, &dcol); /* [N, Cin*K*K, OH*OW] */
    if (!st) {
        if (conv_is_pointwise(kh, kw, p)) {
            st = seg_tensor_set_shape(dcol, 4, x_shape);
            if (!st) {
                *dx = dcol;
                dcol = NULL;
            }
        } else {
            st = seg_col2im(dcol, x_shape, kh, kw, p, dx);
        }
    }
    seg_tensor_free(w2);
    seg_tensor_free(dy3);
    seg_tensor_free(dcol);
    return st;
}

enum seg_status seg_conv2d_bwd_weight(const struct seg_tensor *x, const struct seg_tensor *dy,
                                      const int64_t *w_shape, const struct seg_conv2d_params *p,
                                      struct seg_tensor **dw, struct seg_tensor **db)
{
    *dw = NULL;
    if (db)
        *db = NULL;
    int kh = (int)w_shape[2], kw = (int)w_shape[3];
    int64_t n = x->shape[0];
    int64_t dshape[3] = {n, dy->shape[1], dy->shape[2] * dy->shape[3]};
    struct seg_tensor *col = NULL, *dy3 = NULL, *dw2 = NULL, *colb = NULL, *dyb = NULL;
    enum seg_status st = conv_columns(x, kh, kw, p, &col);
    if (!st)
        st = seg_tensor_reshape((struct seg_tensor *)dy, 3, dshape, &dy3);
    int64_t k = w_shape[1] * kh * kw, ohw = dshape[2];
    int64_t dwshape[2] = {w_shape[0], k};
    if (!st)
        st = seg_tensor_new(x->be, SEG_DTYPE_F32, 2, dwshape, &dw2);
    /* dW = sum_n dY_n col_n^T, accumulated image by image (beta = 1 after the first). */
    for (int64_t i = 0; !st && i < n; i++) {
        int64_t cs[2] = {k, ohw}, ds[2] = {dshape[1], ohw};
        st = seg_tensor_view(col, i * k * ohw, 2, cs, &colb);
        if (!st)
            st = seg_tensor_view(dy3, i * dshape[1] * ohw, 2, ds, &dyb);
        if (!st)
            st = seg_matmul(dyb, colb, false, true, 1.0f, i ? 1.0f : 0.0f, &dw2);
        seg_tensor_free(colb);
        seg_tensor_free(dyb);
        colb = dyb = NULL;
    }
    if (!st)
        st = seg_tensor_set_shape(dw2, 4, w_shape);
    if (!st) {
        *dw = dw2;
        dw2 = NULL;
    }
    if (!st && db) {
        struct seg_tensor *s1 = NULL;
        st = seg_reduce(SEG_REDUCE_SUM, dy3, 2, false, &s1); /* [N, Cout] */
        if (!st)
            st = seg_reduce(SEG_REDUCE_SUM, s1, 0, false, db);
        seg_tensor_free(s1);
    }
    if (st && *dw) {
        seg_tensor_free(*dw);
        *dw = NULL;
    }
    seg_tensor_free(col);
    seg_tensor_free(dy3);
    seg_tensor_free(dw2);
    return st;
}

enum seg_status seg_concat(const struct seg_tensor *const *xs, int n, int axis,
                           struct seg_tensor **out)
{
    *out = NULL;
    if (n < 1)
        return seg_error(SEG_STATUS_INVALID, "concat: no inputs");
    const struct seg_tensor *x0 = xs[0];
    int ax = axis < 0 ? axis + x0->ndim : axis;
    if (ax < 0 || ax >= x0->ndim)
        return seg_error(SEG_STATUS_INVALID, "concat: axis %d out of range", axis);
    int64_t shape[SEG_MAX_DIMS];
    for (int d = 0; d < x0->ndim; d++)
        shape[d] = x0->shape[d];
    shape[ax] = 0;
    for (int i = 0; i < n; i++)
        shape[ax] += xs[i]->shape[ax];
    enum seg_status st = seg_tensor_new(x0->be, x0->dtype, x0->ndim, shape, out);
    int64_t at = 0;
    for (int i = 0; !st && i < n; i++) {
        st = seg_slice_assign(*out, ax, at, xs[i]);
        at += xs[i]->shape[ax];
    }
    if (st) {
        seg_tensor_free(*out);
        *out = NULL;
    }
    return st;
}
