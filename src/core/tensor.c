/* tensor.c: tensor creation, views and host transfers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"

int64_t seg_tensor_numel(const struct seg_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

int64_t seg_numel_of(const struct seg_tensor *t) { return seg_tensor_numel(t); }

size_t seg_tensor_nbytes(const struct seg_tensor *t)
{
    return (size_t)seg_tensor_numel(t) * seg_dtype_size(t->dtype);
}

const char *seg_tensor_shape_str(const struct seg_tensor *t, char *buf, size_t size)
{
    if (!t) {
        snprintf(buf, size, "(none)");
        return buf;
    }
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "",
                                 (long long)t->shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "] %s", seg_dtype_name(t->dtype));
    return buf;
}

bool seg_tensor_same_shape(const struct seg_tensor *a, const struct seg_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

static enum seg_status check_shape(int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > SEG_MAX_DIMS)
        return seg_error(SEG_STATUS_INVALID, "tensor: %d dimensions (1 to %d supported)", ndim,
                         SEG_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 1 || shape[i] > ((int64_t)1 << 31) - 1)
            return seg_error(SEG_STATUS_INVALID, "tensor: dimension %d has size %lld", i,
                             (long long)shape[i]);
    return SEG_STATUS_OK;
}

enum seg_status seg_tensor_new(struct seg_backend *be, enum seg_dtype dtype, int ndim,
                               const int64_t *shape, struct seg_tensor **out)
{
    *out = NULL;
    enum seg_status st = check_shape(ndim, shape);
    if (st)
        return st;
    struct seg_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "tensor: out of host memory");
    t->be = be;
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    size_t n = seg_tensor_nbytes(t);
    if (n > ((size_t)1 << 31) * 4) {
        free(t);
        return seg_error(SEG_STATUS_INVALID, "tensor: %zu bytes is too large", n);
    }
    st = seg_pool_alloc(be, (n + 3) & ~(size_t)3, &t->buf);
    if (st) {
        free(t);
        return st;
    }
    t->owns_buf = true;
    *out = t;
    return SEG_STATUS_OK;
}

enum seg_status seg_tensor_new_like(const struct seg_tensor *t, struct seg_tensor **out)
{
    return seg_tensor_new(t->be, t->dtype, t->ndim, t->shape, out);
}

enum seg_status seg_tensor_view(struct seg_tensor *t, int64_t start, int ndim,
                                const int64_t *shape, struct seg_tensor **out)
{
    *out = NULL;
    enum seg_status st = check_shape(ndim, shape);
    if (st)
        return st;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    size_t es = seg_dtype_size(t->dtype);
    if (start < 0 || start + n > seg_tensor_numel(t) || (start * (int64_t)es) % 4)
        return seg_error(SEG_STATUS_INVALID,
                         "tensor view: elements [%lld, %lld) outside a tensor of %lld (or unaligned)",
                         (long long)start, (long long)(start + n),
                         (long long)seg_tensor_numel(t));
    struct seg_tensor *v = calloc(1, sizeof *v);
    if (!v)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "tensor: out of host memory");
    *v = *t;
    v->ndim = ndim;
    memset(v->shape, 0, sizeof v->shape);
    memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
    v->offset = t->offset + (size_t)start * es;
    v->owns_buf = false;
    *out = v;
    return SEG_STATUS_OK;
}

enum seg_status seg_tensor_reshape(struct seg_tensor *t, int ndim, const int64_t *shape,
                                   struct seg_tensor **out)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    if (n != seg_tensor_numel(t)) {
        char s[96];
        return seg_error(SEG_STATUS_INVALID, "reshape: %s has %lld elements, not %lld",
                         seg_tensor_shape_str(t, s, sizeof s), (long long)seg_tensor_numel(t),
                         (long long)n);
    }
    return seg_tensor_view(t, 0, ndim, shape, out);
}

enum seg_status seg_tensor_set_shape(struct seg_tensor *t, int ndim, const int64_t *shape)
{
    enum seg_status st = check_shape(ndim, shape);
    if (st)
        return st;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    if (n != seg_tensor_numel(t)) {
        char s[96];
        return seg_error(SEG_STATUS_INVALID, "reshape: %s has %lld elements, not %lld",
                         seg_tensor_shape_str(t, s, sizeof s), (long long)seg_tensor_numel(t),
                         (long long)n);
    }
    memset(t->shape, 0, sizeof t->shape);
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->ndim = ndim;
    return SEG_STATUS_OK;
}

void seg_tensor_free(struct seg_tensor *t)
{
    if (!t)
        return;
    if (t->owns_buf)
        seg_pool_release(t->be, &t->buf);
    free(t);
}

enum seg_status seg_tensor_write(struct seg_tensor *t, const void *src, size_t nbytes)
{
    if (nbytes != seg_tensor_nbytes(t))
        return seg_error(SEG_STATUS_INVALID, "tensor write: %zu bytes into a tensor of %zu",
                         nbytes, seg_tensor_nbytes(t));
    return t->be->iface->buf_write(t->be, &t->buf, t->offset, src, nbytes);
}

enum seg_status seg_tensor_read(const struct seg_tensor *t, void *dst, size_t nbytes)
{
    if (nbytes != seg_tensor_nbytes(t))
        return seg_error(SEG_STATUS_INVALID, "tensor read: %zu bytes from a tensor of %zu",
                         nbytes, seg_tensor_nbytes(t));
    return t->be->iface->buf_read(t->be, &t->buf, t->offset, dst, nbytes);
}

enum seg_status seg_tensor_copy(struct seg_tensor *dst, const struct seg_tensor *src)
{
    size_t n = seg_tensor_nbytes(src);
    if (n != seg_tensor_nbytes(dst) || dst->dtype != src->dtype)
        return seg_error(SEG_STATUS_INVALID, "tensor copy: sizes or types differ");
    if (dst->be == src->be)
        return dst->be->iface->buf_copy(dst->be, &dst->buf, dst->offset, &src->buf, src->offset, n);
    void *tmp = malloc(n ? n : 1);
    if (!tmp)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "tensor copy: out of host memory");
    enum seg_status st = seg_tensor_read(src, tmp, n);
    if (!st)
        st = seg_tensor_write(dst, tmp, n);
    free(tmp);
    return st;
}
