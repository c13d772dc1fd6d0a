/* pool.h: the caching buffer allocator shared by all backends. */
#ifndef SEGDA_POOL_H
#define SEGDA_POOL_H

#include "backend/backend.h"

size_t seg_pool_size_class(size_t n);
enum seg_status seg_pool_create(struct seg_pool **out);
void seg_pool_destroy(struct seg_backend *be);
/* Frees every cached (unused) buffer. */
void seg_pool_trim(struct seg_backend *be);
enum seg_status seg_pool_alloc(struct seg_backend *be, size_t nbytes, struct seg_buf *out);
void seg_pool_release(struct seg_backend *be, struct seg_buf *b);

#endif
