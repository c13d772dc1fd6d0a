/* pool.c: a caching allocator on top of a backend's raw buffers, so a training step
 * makes no driver allocation once the first step has warmed the cache up.
 * Sizes are rounded to classes (powers of two below 1 MiB, then 1/8 steps of the next
 * power of two) so freed buffers are found again by exact class. */
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"

struct seg_pool_entry {
    struct seg_buf buf;
};

struct seg_pool {
    struct seg_pool_entry *free;
    size_t                 nfree, cap;
    size_t                 cached_bytes;
};

size_t seg_pool_size_class(size_t n)
{
    if (n < 256)
        n = 256;
    size_t p = 256;
    while (p < n)
        p <<= 1;
    if (p <= ((size_t)1 << 20))
        return p;
    size_t step = p >> 4; /* p/2 < n <= p: steps of p/16 give at most 12.5% waste */
    return (n + step - 1) / step * step;
}

enum seg_status seg_pool_create(struct seg_pool **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? SEG_STATUS_OK : seg_error(SEG_STATUS_OUT_OF_MEMORY, "pool: out of host memory");
}

void seg_pool_trim(struct seg_backend *be)
{
    struct seg_pool *p = be->pool;
    if (!p)
        return;
    for (size_t i = 0; i < p->nfree; i++)
        be->iface->buf_free(be, &p->free[i].buf);
    p->nfree = 0;
    p->cached_bytes = 0;
}

void seg_pool_destroy(struct seg_backend *be)
{
    if (!be->pool)
        return;
    seg_pool_trim(be);
    free(be->pool->free);
    free(be->pool);
    be->pool = NULL;
}

enum seg_status seg_pool_alloc(struct seg_backend *be, size_t nbytes, struct seg_buf *out)
{
    struct seg_pool *p = be->pool;
    size_t cls = seg_pool_size_class(nbytes);
    /* the most recently released buffer of the class, the order of the others kept: a step
     * that repeats the previous one gets the same buffers back (the Vulkan backend's cached
     * descriptor sets depend on it) */
    for (size_t i = p->nfree; i-- > 0;) {
        if (p->free[i].buf.size == cls) {
            *out = p->free[i].buf;
            memmove(&p->free[i], &p->free[i + 1], (p->nfree - i - 1) * sizeof *p->free);
            p->nfree--;
            p->cached_bytes -= cls;
            goto done;
        }
    }
    enum seg_status st = be->iface->buf_alloc(be, cls, out);
    if (st == SEG_STATUS_OUT_OF_MEMORY && p->nfree) {
        seg_pool_trim(be); /* give cached buffers back to the driver and try once more */
        st = be->iface->buf_alloc(be, cls, out);
    }
    if (st)
        return st;
    out->size = cls;
done:
    be->mem_in_use += cls;
    if (be->mem_in_use > be->mem_peak)
        be->mem_peak = be->mem_in_use;
    return SEG_STATUS_OK;
}

void seg_pool_release(struct seg_backend *be, struct seg_buf *b)
{
    struct seg_pool *p = be->pool;
    be->mem_in_use -= b->size;
    if (p->nfree == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct seg_pool_entry *n = realloc(p->free, cap * sizeof *n);
        if (!n) { /* cannot cache it: hand it back */
            be->iface->buf_free(be, b);
            return;
        }
        p->free = n;
        p->cap = cap;
    }
    p->free[p->nfree++].buf = *b;
    p->cached_bytes += b->size;
}
