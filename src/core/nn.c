/* nn.c: convolution as im2col + GEMM (1x1 stride-1 convolutions skip the im2col) or the
 * direct forward (CONV2D_DIRECT), as src/core/conv_algo.c picks; and concatenation. Columns
 * that would exceed the backend's largest buffer (seg_backend_max_buffer) are built and
 * used piece by piece: a few images at a time, or one image in bands of output rows. */
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

/* ---- chunks: columns under the backend's largest buffer ---------------------------------- */

/* How a convolution's columns ([N, K, OH*OW] floats) are split so that one piece stays under
 * seg_backend_max_buffer: nb images at a time, or, where one image's columns alone exceed
 * it, one image in bands of `rows` output rows. Whole (nb = N, rows = OH) when they fit. */
struct conv_split {
    int64_t nb, rows;
};

static struct conv_split conv_split_of(struct seg_backend *be, int64_t n, int64_t k, int64_t oh, int64_t ow)
{
    struct conv_split s = {n, oh};
    uint64_t lim = seg_backend_max_buffer(be);
    uint64_t row = (uint64_t)k * (uint64_t)ow * sizeof(float), img = row * (uint64_t)oh;
    if (!lim || img * (uint64_t)n <= lim)
        return s;
    be->counts.chunked++;
    if (img <= lim) {
        s.nb = (int64_t)(lim / img);
        return s;
    }
    s.nb = 1;
    s.rows = lim / row > 0 ? (int64_t)(lim / row) : 1;
    return s;
}

/* The input rows a band of output rows [r0, r0 + rows) reads: from ih0 = r0 * SH - PH, rin of
 * them; the band is a convolution without vertical padding over those rows. */
static void band_rows(int kh, const struct seg_conv2d_params *p, int64_t r0, int64_t rows, int64_t *ih0,
                      int64_t *rin)
{
    *ih0 = r0 * p->stride_h - p->pad_h;
    *rin = (rows - 1) * p->stride_h + (int64_t)(kh - 1) * p->dil_h + 1;
}

/* x's rows [ih0, ih0 + rin) as [N, C, rin, W], zero where they fall outside x. */
static enum seg_status band_input(const struct seg_tensor *x, int64_t ih0, int64_t rin, struct seg_tensor **xb)
{
    int64_t h = x->shape[2], lo = ih0 < 0 ? 0 : ih0, hi = ih0 + rin < h ? ih0 + rin : h;
    int64_t shape[4] = {x->shape[0], x->shape[1], rin, x->shape[3]};
    struct seg_tensor *part = NULL;
    enum seg_status st = seg_tensor_new(x->be, SEG_DTYPE_F32, 4, shape, xb);
    if (!st && (lo > ih0 || hi < ih0 + rin))
        st = seg_fill(*xb, 0.0f);
    if (!st && hi > lo)
        st = seg_slice(x, 2, lo, hi - lo, &part);
    if (!st && part)
        st = seg_slice_assign(*xb, 2, lo - ih0, part);
    seg_tensor_free(part);
    if (st) {
        seg_tensor_free(*xb);
        *xb = NULL;
    }
    return st;
}

/* Images [i0, i0 + nb) of an [N, ...] tensor (a view). */
static enum seg_status images(const struct seg_tensor *t, int64_t i0, int64_t nb, struct seg_tensor **out)
{
    int64_t shape[SEG_MAX_DIMS], per = 1;
    for (int d = 1; d < t->ndim; d++) {
        shape[d] = t->shape[d];
        per *= t->shape[d];
    }
    shape[0] = nb;
    return seg_tensor_view((struct seg_tensor *)t, i0 * per, t->ndim, shape, out);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* y [N, Cout, OH*OW] = w2 [Cout, K] x columns of x, piece by piece. */
static enum seg_status conv_fwd_gemm(const struct seg_tensor *x, const struct seg_tensor *w2, int kh, int kw,
                                     const struct seg_conv2d_params *p, int64_t oh, int64_t ow,
                                     struct seg_tensor *y3)
{
    int64_t n = x->shape[0], cout = w2->shape[0];
    struct conv_split sp = conv_split_of(x->be, n, w2->shape[1], oh, ow);
    struct seg_conv2d_params pb = *p;
    pb.pad_h = 0;
    enum seg_status st = SEG_STATUS_OK;
    for (int64_t i0 = 0; !st && i0 < n; i0 += sp.nb) {
        int64_t nb = min64(sp.nb, n - i0);
        struct seg_tensor *xv = NULL, *yv = NULL, *col = NULL;
        st = images(x, i0, nb, &xv);
        if (!st && sp.rows >= oh) {
            st = conv_columns(xv, kh, kw, p, &col);
            if (!st)
                st = images(y3, i0, nb, &yv);
            if (!st)
                st = seg_matmul(w2, col, false, false, 1.0f, 0.0f, &yv);
        } else if (!st) {
            int64_t ys[4] = {1, cout, oh, ow};
            st = seg_tensor_view(y3, i0 * cout * oh * ow, 4, ys, &yv);
            for (int64_t r0 = 0; !st && r0 < oh; r0 += sp.rows) {
                int64_t rows = min64(sp.rows, oh - r0), ih0, rin, bs[4] = {1, cout, rows, ow};
                struct seg_tensor *xb = NULL, *cb = NULL, *yb = NULL;
                band_rows(kh, p, r0, rows, &ih0, &rin);
                st = band_input(xv, ih0, rin, &xb);
                if (!st)
                    st = seg_im2col(xb, kh, kw, &pb, &cb);
                if (!st)
                    st = seg_matmul(w2, cb, false, false, 1.0f, 0.0f, &yb);
                if (!st)
                    st = seg_tensor_set_shape(yb, 4, bs);
                if (!st)
                    st = seg_slice_assign(yv, 2, r0, yb);
                seg_tensor_free(xb);
                seg_tensor_free(cb);
                seg_tensor_free(yb);
            }
        }
        seg_tensor_free(xv);
        seg_tensor_free(yv);
        seg_tensor_free(col);
    }
    return st;
}

enum seg_status seg_conv2d_im2col(const struct seg_tensor *x, const struct seg_tensor *w,
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
    int64_t oh = seg_conv2d_out_size(x->shape[2], kh, p->stride_h, p->pad_h, p->dil_h);
    int64_t ow = seg_conv2d_out_size(x->shape[3], kw, p->stride_w, p->pad_w, p->dil_w);
    if (oh < 1 || ow < 1)
        return seg_error(SEG_STATUS_INVALID, "conv2d: %lldx%lld input gives an empty output",
                         (long long)x->shape[2], (long long)x->shape[3]);
    struct seg_tensor *w2 = NULL, *y3 = NULL, *bias = NULL;
    int64_t wshape[2] = {w->shape[0], w->shape[1] * kh * kw};
    int64_t y3shape[3] = {x->shape[0], w->shape[0], oh * ow};
    enum seg_status st = seg_tensor_reshape((struct seg_tensor *)w, 2, wshape, &w2);
    if (!st)
        st = seg_tensor_new(x->be, SEG_DTYPE_F32, 3, y3shape, &y3);
    if (!st)
        st = conv_fwd_gemm(x, w2, kh, kw, p, oh, ow, y3); /* [N, Cout, OH*OW] */
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
    seg_tensor_free(w2);
    seg_tensor_free(bias);
    return st;
}

bool seg_conv2d_bwd_as_conv(const struct seg_backend *be) { return be->conv_algo != SEG_CONV_ALGO_IM2COL; }

/* dcol [nb, K, P] = w2^T x dy3, w2 [Cout, K], dy3 [nb, Cout, P]. With w2t (w2 transposed,
 * [K, Cout]) it runs as a 1x1 convolution of dy3 with w2t, so the faster of CONV2D_DIRECT
 * and the GEMM (measured, src/core/conv_algo.c) computes it: on PoCL the direct kernel
 * beats CLBlast's transposed GEMM several times over. */
static enum seg_status bwd_cols(const struct seg_tensor *w2, const struct seg_tensor *w2t,
                                const struct seg_tensor *dy3, struct seg_tensor **dcol)
{
    if (!w2t)
        return seg_matmul(w2, dy3, true, false, 1.0f, 0.0f, dcol);
    int64_t nb = dy3->shape[0], cout = dy3->shape[1], pix = dy3->shape[2], k = w2t->shape[0];
    int64_t ds[4] = {nb, cout, 1, pix}, ws[4] = {k, cout, 1, 1}, cs[3] = {nb, k, pix}; /* a row: kernels vectorise along W */
    struct seg_tensor *dy4 = NULL, *w4 = NULL;
    struct seg_conv2d_params p1 = {1, 1, 0, 0, 1, 1};
    enum seg_status st = seg_tensor_reshape((struct seg_tensor *)dy3, 4, ds, &dy4);
    if (!st)
        st = seg_tensor_reshape((struct seg_tensor *)w2t, 4, ws, &w4);
    if (!st)
        st = seg_conv2d(dy4, w4, NULL, &p1, dcol);
    if (!st)
        st = seg_tensor_set_shape(*dcol, 3, cs);
    seg_tensor_free(dy4);
    seg_tensor_free(w4);
    return st;
}

/* dx of one image from dy4 [1, Cout, OH, OW] in bands of output rows: each band's columns
 * go back through col2im and are added into the input rows it read. dx: [1, C, H, W]. */
static enum seg_status conv_bwd_data_bands(const struct seg_tensor *dy4, const struct seg_tensor *w2,
                                           const struct seg_tensor *w2t, int kh, int kw, const struct seg_conv2d_params *p,
                                           int64_t rows_per_band, struct seg_tensor *dx)
{
    int64_t cout = dy4->shape[1], oh = dy4->shape[2], ow = dy4->shape[3], h = dx->shape[2];
    struct seg_conv2d_params pb = *p;
    pb.pad_h = 0;
    enum seg_status st = seg_fill(dx, 0.0f);
    for (int64_t r0 = 0; !st && r0 < oh; r0 += rows_per_band) {
        int64_t rows = min64(rows_per_band, oh - r0), ih0, rin;
        band_rows(kh, p, r0, rows, &ih0, &rin);
        int64_t lo = ih0 < 0 ? 0 : ih0, hi = min64(ih0 + rin, h);
        int64_t ds[3] = {1, cout, rows * ow}, xs[4] = {1, dx->shape[1], rin, dx->shape[3]};
        struct seg_tensor *dyb = NULL, *dcol = NULL, *dxb = NULL, *part = NULL, *cur = NULL, *sum = NULL;
        st = seg_slice(dy4, 2, r0, rows, &dyb);
        if (!st)
            st = seg_tensor_set_shape(dyb, 3, ds);
        if (!st)
            st = bwd_cols(w2, w2t, dyb, &dcol); /* [1, K, rows*OW] */
        if (!st)
            st = seg_col2im(dcol, xs, kh, kw, &pb, &dxb);
        if (!st && hi > lo) {
            st = seg_slice(dxb, 2, lo - ih0, hi - lo, &part);
            if (!st)
                st = seg_slice(dx, 2, lo, hi - lo, &cur);
            if (!st)
                st = seg_binary(SEG_BINARY_ADD, cur, part, &sum);
            if (!st)
                st = seg_slice_assign(dx, 2, lo, sum);
        }
        seg_tensor_free(dyb);
        seg_tensor_free(dcol);
        seg_tensor_free(dxb);
        seg_tensor_free(part);
        seg_tensor_free(cur);
        seg_tensor_free(sum);
    }
    return st;
}

enum seg_status seg_conv2d_bwd_data(const struct seg_tensor *dy, const struct seg_tensor *w,
                                    const int64_t *x_shape, const struct seg_conv2d_params *p,
                                    struct seg_tensor **dx)
{
    *dx = NULL;
    int kh = (int)w->shape[2], kw = (int)w->shape[3];
    int64_t wshape[2] = {w->shape[0], w->shape[1] * kh * kw};
    int64_t n = dy->shape[0], oh = dy->shape[2], ow = dy->shape[3];
    int64_t dshape[3] = {n, dy->shape[1], oh * ow};
    struct seg_tensor *w2 = NULL, *w2t = NULL, *dy3 = NULL, *dcol = NULL;
    enum seg_status st = seg_tensor_reshape((struct seg_tensor *)w, 2, wshape, &w2);
    if (!st)
        st = seg_tensor_reshape((struct seg_tensor *)dy, 3, dshape, &dy3);
    if (!st && seg_conv2d_bwd_as_conv(dy->be)) { /* bwd_cols as a conv */
        static const int perm[2] = {1, 0};
        st = seg_permute(w2, perm, &w2t);
    }
    if (!st && conv_is_pointwise(kh, kw, p)) { /* the columns are dx itself */
        st = bwd_cols(w2, w2t, dy3, &dcol);
        if (!st)
            st = seg_tensor_set_shape(dcol, 4, x_shape);
        if (!st) {
            *dx = dcol;
            dcol = NULL;
        }
        goto done;
    }
    struct conv_split sp = st ? (struct conv_split){n, oh} : conv_split_of(dy->be, n, wshape[1], oh, ow);
    if (!st && sp.nb >= n && sp.rows >= oh) {
        st = bwd_cols(w2, w2t, dy3, &dcol); /* [N, Cin*K*K, OH*OW] */
        if (!st)
            st = seg_col2im(dcol, x_shape, kh, kw, p, dx);
        goto done;
    }
    if (!st)
        st = seg_tensor_new(dy->be, SEG_DTYPE_F32, 4, x_shape, dx);
    for (int64_t i0 = 0; !st && i0 < n; i0 += sp.nb) {
        int64_t nb = min64(sp.nb, n - i0), xs[4] = {nb, x_shape[1], x_shape[2], x_shape[3]};
        struct seg_tensor *dyv = NULL, *dxv = NULL, *dc = NULL, *dxi = NULL;
        st = images(sp.rows >= oh ? dy3 : dy, i0, nb, &dyv);
        if (!st)
            st = images(*dx, i0, nb, &dxv);
        if (!st && sp.rows >= oh) {
            st = bwd_cols(w2, w2t, dyv, &dc);
            if (!st)
                st = seg_col2im(dc, xs, kh, kw, p, &dxi);
            if (!st)
                st = seg_slice_assign(*dx, 0, i0, dxi);
        } else if (!st) {
            st = conv_bwd_data_bands(dyv, w2, w2t, kh, kw, p, sp.rows, dxv);
        }
        seg_tensor_free(dyv);
        seg_tensor_free(dxv);
        seg_tensor_free(dc);
        seg_tensor_free(dxi);
    }
    if (st) {
        seg_tensor_free(*dx);
        *dx = NULL;
    }
done:
    seg_tensor_free(w2);
    seg_tensor_free(w2t);
    seg_tensor_free(dy3);
    seg_tensor_free(dcol);
    return st;
}

/* dW2 [Cout, K] (+)= dy_b [Cout, P] x col_b [K, P]^T; the first product (*dw2 NULL)
 * allocates dW2. */
static enum seg_status dw_add(const struct seg_tensor *dyb, const struct seg_tensor *colb,
                              struct seg_tensor **dw2)
{
    return seg_matmul(dyb, colb, false, true, 1.0f, *dw2 ? 1.0f : 0.0f, dw2);
}

/* dW2 [Cout, K] (+)= sum over nb images of dy_i [Cout, P] x col_i [K, P]^T, as one 1x1
 * convolution whose channels are the nb*P pixels (col transposed to [nb*P, K] is its input,
 * dy as [Cout, nb*P] its weight), so the faster of CONV2D_DIRECT and the GEMM computes it. */
static enum seg_status dw_add_conv(const struct seg_tensor *dyv, const struct seg_tensor *col,
                                   struct seg_tensor **dw2)
{
    int64_t nb = col->shape[0], k = col->shape[1], pix = col->shape[2], cout = dyv->shape[1];
    static const int pc[3] = {0, 2, 1}, pd[3] = {1, 0, 2};
    int64_t xs[4] = {1, nb * pix, 1, k}, ws[4] = {cout, nb * pix, 1, 1}, ds[2] = {cout, k};
    struct seg_tensor *colt = NULL, *dyt = NULL, *x4 = NULL, *w4 = NULL, *part = NULL, *sum = NULL;
    struct seg_conv2d_params p1 = {1, 1, 0, 0, 1, 1};
    enum seg_status st = seg_permute(col, pc, &colt);
    if (!st && nb > 1)
        st = seg_permute(dyv, pd, &dyt);
    if (!st)
        st = seg_tensor_reshape(colt, 4, xs, &x4);
    if (!st)
        st = seg_tensor_reshape(dyt ? dyt : (struct seg_tensor *)dyv, 4, ws, &w4);
    if (!st)
        st = seg_conv2d(x4, w4, NULL, &p1, &part);
    if (!st)
        st = seg_tensor_set_shape(part, 2, ds);
    if (!st && *dw2)
        st = seg_binary(SEG_BINARY_ADD, *dw2, part, &sum);
    if (!st) {
        seg_tensor_free(*dw2);
        *dw2 = sum ? sum : part;
        if (!sum)
            part = NULL;
        sum = NULL;
    }
    seg_tensor_free(colt);
    seg_tensor_free(dyt);
    seg_tensor_free(x4);
    seg_tensor_free(w4);
    seg_tensor_free(part);
    seg_tensor_free(sum);
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
    int64_t n = x->shape[0], cout = dy->shape[1], oh = dy->shape[2], ow = dy->shape[3];
    int64_t dshape[3] = {n, cout, oh * ow};
    int64_t k = w_shape[1] * kh * kw, ohw = dshape[2];
    struct seg_tensor *dy3 = NULL, *dw2 = NULL; /* dw2: [Cout, K], made by the first product */
    struct seg_conv2d_params pb = *p;
    pb.pad_h = 0;
    enum seg_status st = n < 1 ? seg_error(SEG_STATUS_INVALID, "conv2d_bwd_weight: empty batch")
                               : seg_tensor_reshape((struct seg_tensor *)dy, 3, dshape, &dy3);
    struct conv_split sp = {n, oh};
    if (!st && !conv_is_pointwise(kh, kw, p))
        sp = conv_split_of(x->be, n, k, oh, ow);
    /* dW = sum_n dY_n col_n^T, accumulated image by image (and band by band). */
    for (int64_t i0 = 0; !st && i0 < n; i0 += sp.nb) {
        int64_t nb = min64(sp.nb, n - i0);
        struct seg_tensor *xv = NULL, *col = NULL, *dy4 = NULL;
        st = images(x, i0, nb, &xv);
        if (!st && sp.rows >= oh)
            st = conv_columns(xv, kh, kw, p, &col);
        if (!st && sp.rows >= oh && seg_conv2d_bwd_as_conv(x->be)) {
            struct seg_tensor *dyv = NULL;
            st = images(dy3, i0, nb, &dyv);
            if (!st)
                st = dw_add_conv(dyv, col, &dw2);
            seg_tensor_free(dyv);
        } else if (!st && sp.rows >= oh) {
            for (int64_t j = 0; !st && j < nb; j++) {
                int64_t cs[2] = {k, ohw}, ds[2] = {cout, ohw};
                struct seg_tensor *colb = NULL, *dyb = NULL;
                st = seg_tensor_view(col, j * k * ohw, 2, cs, &colb);
                if (!st)
                    st = seg_tensor_view(dy3, (i0 + j) * cout * ohw, 2, ds, &dyb);
                if (!st)
                    st = dw_add(dyb, colb, &dw2);
                seg_tensor_free(colb);
                seg_tensor_free(dyb);
            }
        } else if (!st) {
            st = images(dy, i0, 1, &dy4);
            for (int64_t r0 = 0; !st && r0 < oh; r0 += sp.rows) {
                int64_t rows = min64(sp.rows, oh - r0), ih0, rin;
                int64_t cs[2] = {k, rows * ow}, ds[2] = {cout, rows * ow};
                struct seg_tensor *xb = NULL, *cb = NULL, *dyb = NULL;
                band_rows(kh, p, r0, rows, &ih0, &rin);
                st = band_input(xv, ih0, rin, &xb);
                if (!st)
                    st = seg_im2col(xb, kh, kw, &pb, &cb);
                if (!st)
                    st = seg_tensor_set_shape(cb, 2, cs);
                if (!st)
                    st = seg_slice(dy4, 2, r0, rows, &dyb);
                if (!st)
                    st = seg_tensor_set_shape(dyb, 2, ds);
                if (!st)
                    st = dw_add(dyb, cb, &dw2);
                seg_tensor_free(xb);
                seg_tensor_free(cb);
                seg_tensor_free(dyb);
            }
        }
        seg_tensor_free(xv);
        seg_tensor_free(col);
        seg_tensor_free(dy4);
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
