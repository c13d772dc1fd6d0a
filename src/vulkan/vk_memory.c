/* vk_memory.c: device memory: big blocks suballocated first-fit; host writes recorded into
 * the command stream from the frame's upload arena (or copied straight into mapped memory
 * when the queue is idle); host reads from mapped device memory (host-visible devices such
 * as lavapipe or integrated GPUs) or through a persistent readback buffer; device-side
 * copies. */
#include <stdlib.h>
#include <string.h>

#include "vulkan/vk_internal.h"

#define VK_BLOCK_DEFAULT   ((VkDeviceSize)128 << 20)
#define VK_STAGING_DEFAULT ((VkDeviceSize)16 << 20)
#define VK_BUFFER_USAGE                                                                   \
    (VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |      \
     VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT)

static VkDeviceSize round_up(VkDeviceSize x, VkDeviceSize a) { return (x + a - 1) / a * a; }

/* The first memory type in bits with all of want (and, when possible, all of prefer). */
static int find_type(const struct vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want,
                     VkMemoryPropertyFlags prefer)
{
    int fallback = -1;
    for (uint32_t i = 0; i < c->memprops.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = c->memprops.memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (f & want) != want)
            continue;
        if ((f & prefer) == prefer)
            return (int)i;
        if (fallback < 0)
            fallback = (int)i;
    }
    return fallback;
}

/* A buffer with its own memory of the given properties. */
static enum seg_status make_buffer(struct vk_ctx *c, VkDeviceSize size, bool device_mem,
                                   VkBuffer *buf, VkDeviceMemory *mem, void **mapped,
                                   const char *where)
{
    *buf = VK_NULL_HANDLE;
    *mem = VK_NULL_HANDLE;
    *mapped = NULL;
    VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = vkCreateBuffer(c->dev, &bi, NULL, buf);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkCreateBuffer", where);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, *buf, &req);
    int type;
    bool map;
    if (device_mem) {
        map = c->host_mapped;
        type = map ? find_type(c, req.memoryTypeBits,
                               VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                   VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                               VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                   : find_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        if (type < 0 && !map)
            type = find_type(c, req.memoryTypeBits, 0, 0);
    } else {
        map = true;
        type = find_type(c, req.memoryTypeBits,
                         VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                         VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    }
    if (type < 0) {
        vkDestroyBuffer(c->dev, *buf, NULL);
        *buf = VK_NULL_HANDLE;
        return seg_error(SEG_STATUS_BACKEND, "vulkan: no suitable memory type in %s", where);
    }
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    r = vkAllocateMemory(c->dev, &ai, NULL, mem);
    if (r == VK_SUCCESS)
        r = vkBindBufferMemory(c->dev, *buf, *mem, 0);
    if (r == VK_SUCCESS && map)
        r = vkMapMemory(c->dev, *mem, 0, VK_WHOLE_SIZE, 0, mapped);
    if (r != VK_SUCCESS) {
        enum seg_status st = vk_fail(r, *mem ? "vkBindBufferMemory/vkMapMemory" : "vkAllocateMemory", where);
        if (*mem)
            vkFreeMemory(c->dev, *mem, NULL);
        vkDestroyBuffer(c->dev, *buf, NULL);
        *buf = VK_NULL_HANDLE;
        *mem = VK_NULL_HANDLE;
        *mapped = NULL;
        return st;
    }
    return SEG_STATUS_OK;
}

static void block_release(struct vk_ctx *c, struct vk_block *b)
{
    vk_dset_clear(c); /* cached sets may name this buffer (callers have waited) */
    if (b->view)
        vkDestroyBufferView(c->dev, b->view, NULL);
    if (b->mapped)
        vkUnmapMemory(c->dev, b->mem);
    if (b->buf)
        vkDestroyBuffer(c->dev, b->buf, NULL);
    if (b->mem)
        vkFreeMemory(c->dev, b->mem, NULL);
    free(b->free);
    free(b);
}

static enum seg_status block_new(struct vk_ctx *c, VkDeviceSize size, bool dedicated,
                                 struct vk_block **out)
{
    struct vk_block *b = calloc(1, sizeof *b);
    if (!b)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: out of host memory");
    enum seg_status st = make_buffer(c, size, true, &b->buf, &b->mem, &b->mapped, "buf_alloc");
    if (st) {
        free(b);
        return st;
    }
    b->size = size;
    b->dedicated = dedicated;
    if (c->max_texels) { /* the texel view (none is no error: shaders fall back to loads) */
        VkDeviceSize max = (VkDeviceSize)c->max_texels * 4;
        VkBufferViewCreateInfo vi = {
            .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
            .buffer = b->buf,
            .format = VK_FORMAT_R32_SFLOAT,
            .offset = 0,
            .range = size < max ? size / 4 * 4 : max,
        };
        if (vkCreateBufferView(c->dev, &vi, NULL, &b->view) == VK_SUCCESS)
            b->view_bytes = vi.range;
        else
            b->view = VK_NULL_HANDLE;
    }
    if (!dedicated) {
        b->cap = 16;
        b->free = malloc(b->cap * sizeof *b->free);
        if (!b->free) {
            block_release(c, b);
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: out of host memory");
        }
        b->free[0] = (struct vk_range){0, size};
        b->nfree = 1;
    }
    b->next = c->blocks;
    c->blocks = b;
    *out = b;
    return SEG_STATUS_OK;
}

static void block_unlink(struct vk_ctx *c, struct vk_block *b)
{
    for (struct vk_block **p = &c->blocks; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            return;
        }
}

static bool block_take(struct vk_block *b, VkDeviceSize size, VkDeviceSize *offset)
{
    for (size_t i = 0; i < b->nfree; i++) {
        if (b->free[i].size < size)
            continue;
        *offset = b->free[i].offset;
        b->free[i].offset += size;
        b->free[i].size -= size;
        if (b->free[i].size == 0) {
            memmove(&b->free[i], &b->free[i + 1], (b->nfree - i - 1) * sizeof *b->free);
            b->nfree--;
        }
        return true;
    }
    return false;
}

static bool block_give(struct vk_block *b, VkDeviceSize offset, VkDeviceSize size)
{
    size_t i = 0;
    while (i < b->nfree && b->free[i].offset < offset)
        i++;
    bool merge_prev = i > 0 && b->free[i - 1].offset + b->free[i - 1].size == offset;
    bool merge_next = i < b->nfree && offset + size == b->free[i].offset;
    if (merge_prev && merge_next) {
        b->free[i - 1].size += size + b->free[i].size;
        memmove(&b->free[i], &b->free[i + 1], (b->nfree - i - 1) * sizeof *b->free);
        b->nfree--;
    } else if (merge_prev) {
        b->free[i - 1].size += size;
    } else if (merge_next) {
        b->free[i].offset = offset;
        b->free[i].size += size;
    } else {
        if (b->nfree == b->cap) {
            size_t cap = b->cap * 2;
            struct vk_range *f = realloc(b->free, cap * sizeof *f);
            if (!f)
                return false; /* the range leaks until the block goes */
            b->free = f;
            b->cap = cap;
        }
        memmove(&b->free[i + 1], &b->free[i], (b->nfree - i) * sizeof *b->free);
        b->free[i] = (struct vk_range){offset, size};
        b->nfree++;
    }
    return true;
}

static bool block_empty(const struct vk_block *b)
{
    return b->nfree == 1 && b->free[0].offset == 0 && b->free[0].size == b->size;
}

enum seg_status vk_alloc_new(struct vk_ctx *c, size_t nbytes, struct vk_alloc **out)
{
    *out = NULL;
    VkDeviceSize size = round_up(nbytes ? nbytes : 4, c->align);
    struct vk_alloc *a = calloc(1, sizeof *a);
    if (!a)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: out of host memory");
    enum seg_status st;
    if (size > c->block_size / 2) {
        if (size > c->max_alloc) {
            free(a);
            return seg_error(SEG_STATUS_OUT_OF_MEMORY,
                             "vulkan: %zu bytes exceed maxMemoryAllocationSize", nbytes);
        }
        struct vk_block *b;
        if ((st = block_new(c, size, true, &b))) {
            free(a);
            return st;
        }
        *a = (struct vk_alloc){b, 0, size};
        *out = a;
        return SEG_STATUS_OK;
    }
    for (struct vk_block *b = c->blocks; b; b = b->next) {
        VkDeviceSize off;
        if (!b->dedicated && block_take(b, size, &off)) {
            *a = (struct vk_alloc){b, off, size};
            *out = a;
            return SEG_STATUS_OK;
        }
    }
    struct vk_block *b;
    if ((st = block_new(c, c->block_size, false, &b))) {
        free(a);
        return st;
    }
    VkDeviceSize off = 0;
    block_take(b, size, &off);
    *a = (struct vk_alloc){b, off, size};
    *out = a;
    return SEG_STATUS_OK;
}

void vk_alloc_free(struct vk_ctx *c, struct vk_alloc *a)
{
    if (!a)
        return;
    struct vk_block *b = a->block;
    if (b->dedicated) {
        vk_wait_all(c, "buf_free"); /* queued work may still use it */
        block_unlink(c, b);
        block_release(c, b);
    } else {
        block_give(b, a->offset, a->size);
        if (block_empty(b)) {
            /* keep one empty block for reuse; give the others back */
            int empty = 0;
            for (struct vk_block *o = c->blocks; o; o = o->next)
                empty += !o->dedicated && o != b && block_empty(o);
            if (empty > 0) {
                vk_wait_all(c, "buf_free");
                block_unlink(c, b);
                block_release(c, b);
            }
        }
    }
    free(a);
}

enum seg_status vk_memory_init(struct vk_ctx *c)
{
    const VkPhysicalDeviceLimits *lim = &c->props.limits;
    c->align = lim->minStorageBufferOffsetAlignment;
    if (c->align < 16)
        c->align = 16;
    c->max_range = lim->maxStorageBufferRange;

    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    vkGetPhysicalDeviceProperties2(c->phys, &p2);
    c->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : ((VkDeviceSize)1 << 31);

    /* Map device memory directly when the device shares host memory (CPU, iGPU) and offers
     * a host-visible device-local type; discrete GPUs go through staging. */
    bool shared = c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ||
                  c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
    c->host_mapped = shared && find_type(c, ~0u,
                                         VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                             VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                             VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                         0) >= 0;
    /* SEGDA_VK_STAGING=1 forces the staging path (to test it on host-visible devices) */
    const char *force = getenv("SEGDA_VK_STAGING");
    if (force && *force && *force != '0')
        c->host_mapped = false;

    VkDeviceSize heap = 0;
    for (uint32_t i = 0; i < c->memprops.memoryHeapCount; i++)
        if ((c->memprops.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            c->memprops.memoryHeaps[i].size > heap)
            heap = c->memprops.memoryHeaps[i].size;
    c->block_size = VK_BLOCK_DEFAULT;
    if (heap && c->block_size > heap / 8)
        c->block_size = heap / 8 < ((VkDeviceSize)16 << 20) ? ((VkDeviceSize)16 << 20) : heap / 8;
    if (c->block_size > c->max_alloc)
        c->block_size = c->max_alloc;

    enum seg_status st;
    if (!c->host_mapped) {
        c->staging_size = VK_STAGING_DEFAULT;
        st = make_buffer(c, c->staging_size, false, &c->staging_buf, &c->staging_mem, &c->staging_ptr,
                         "staging buffer");
        if (st)
            return st;
    }
    return vk_alloc_new(c, 256, &c->dummy);
}

enum seg_status vk_scratch(struct vk_ctx *c, size_t nbytes, struct vk_alloc **out)
{
    if (c->scratch && c->scratch->size >= nbytes) {
        *out = c->scratch;
        return SEG_STATUS_OK;
    }
    size_t want = (size_t)1 << 20;
    while (want < nbytes)
        want *= 2;
    if (c->scratch) {
        enum seg_status st = vk_wait_all(c, "scratch"); /* queued work may still use it */
        if (st)
            return st;
        vk_alloc_free(c, c->scratch);
        c->scratch = NULL;
    }
    enum seg_status st = vk_alloc_new(c, want, &c->scratch);
    if (st == SEG_STATUS_OUT_OF_MEMORY && want > nbytes)
        st = vk_alloc_new(c, nbytes, &c->scratch);
    if (st)
        return st;
    *out = c->scratch;
    return SEG_STATUS_OK;
}

void vk_memory_destroy(struct vk_ctx *c)
{
    if (c->scratch) {
        free(c->scratch);
        c->scratch = NULL;
    }
    if (c->dummy) {
        free(c->dummy);
        c->dummy = NULL;
    }
    while (c->blocks) {
        struct vk_block *b = c->blocks;
        c->blocks = b->next;
        block_release(c, b);
    }
    if (c->staging_ptr)
        vkUnmapMemory(c->dev, c->staging_mem);
    if (c->staging_buf)
        vkDestroyBuffer(c->dev, c->staging_buf, NULL);
    if (c->staging_mem)
        vkFreeMemory(c->dev, c->staging_mem, NULL);
    c->staging_ptr = NULL;
    c->staging_buf = VK_NULL_HANDLE;
    c->staging_mem = VK_NULL_HANDLE;
}

/* ---- the vtable's buffer functions ----------------------------------------------- */

enum seg_status vk_buf_alloc(struct seg_backend *be, size_t nbytes, struct seg_buf *out)
{
    struct vk_alloc *a;
    enum seg_status st = vk_alloc_new(vk_ctx_of(be), nbytes, &a);
    if (st)
        return st;
    out->handle = a;
    out->size = nbytes;
    return SEG_STATUS_OK;
}

void vk_buf_free(struct seg_backend *be, struct seg_buf *b)
{
    if (!b || !b->handle)
        return;
    vk_alloc_free(vk_ctx_of(be), b->handle);
    b->handle = NULL;
    b->size = 0;
}

static enum seg_status check_range(const struct seg_buf *b, size_t off, size_t n, const char *where)
{
    const struct vk_alloc *a = b ? b->handle : NULL;
    if (!a)
        return seg_error(SEG_STATUS_INVALID, "vulkan: %s: null buffer", where);
    if (off > a->size || n > a->size - off)
        return seg_error(SEG_STATUS_INVALID, "vulkan: %s: range [%zu, +%zu) outside a %zu-byte buffer",
                         where, off, n, (size_t)a->size);
    return SEG_STATUS_OK;
}

/* Where tensor bytes [off, off + n) of allocation a lie, as a tracked span. */
static struct vk_span span_of(const struct vk_alloc *a, size_t off, size_t n, bool write)
{
    return (struct vk_span){a->block->buf, a->offset + off, a->offset + off + n, write};
}

enum seg_status vk_buf_write(struct seg_backend *be, struct seg_buf *dst, size_t off,
                             const void *src, size_t n)
{
    struct vk_ctx *c = vk_ctx_of(be);
    enum seg_status st = check_range(dst, off, n, "buf_write");
    if (st || n == 0)
        return st;
    const struct vk_alloc *a = dst->handle;
    if (a->block->mapped && vk_idle(c)) { /* nothing queued can touch it */
        memcpy((char *)a->block->mapped + a->offset + off, src, n);
        return SEG_STATUS_OK;
    }
    /* a copy in the command stream, ordered after queued work on the region */
    VkBuffer ub;
    VkDeviceSize uoff;
    void *p;
    if ((st = vk_upload_space(c, n, &ub, &uoff, &p)))
        return st;
    memcpy(p, src, n);
    VkCommandBuffer cmd;
    if ((st = vk_record_begin(c, "buf_write", &cmd)))
        return st;
    struct vk_span s = span_of(a, off, n, true);
    vk_order(c, &s, 1);
    VkBufferCopy region = {uoff, a->offset + off, n};
    vkCmdCopyBuffer(cmd, ub, a->block->buf, 1, &region);
    return vk_record_end(c, "buf_write");
}

enum seg_status vk_buf_read(struct seg_backend *be, const struct seg_buf *src, size_t off,
                            void *dst, size_t n)
{
    struct vk_ctx *c = vk_ctx_of(be);
    enum seg_status st = check_range(src, off, n, "buf_read");
    if (st || n == 0)
        return st;
    const struct vk_alloc *a = src->handle;
    if (a->block->mapped) {
        if ((st = vk_wait_all(c, "buf_read")))
            return st;
        memcpy(dst, (const char *)a->block->mapped + a->offset + off, n);
        return SEG_STATUS_OK;
    }
    /* device-local: a copy to the readback buffer recorded after the queued work, then one
     * wait for everything */
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < c->staging_size ? n - done : (size_t)c->staging_size;
        VkCommandBuffer cmd;
        if ((st = vk_record_begin(c, "buf_read", &cmd)))
            return st;
        struct vk_span s[2] = {span_of(a, off + done, chunk, false),
                               {c->staging_buf, 0, chunk, true}};
        vk_order(c, s, 2);
        VkBufferCopy region = {a->offset + off + done, 0, chunk};
        vkCmdCopyBuffer(cmd, a->block->buf, c->staging_buf, 1, &region);
        if ((st = vk_record_end(c, "buf_read")) || (st = vk_wait_all(c, "buf_read")))
            return st;
        memcpy((char *)dst + done, c->staging_ptr, chunk);
        done += chunk;
    }
    return SEG_STATUS_OK;
}

enum seg_status vk_buf_copy(struct seg_backend *be, struct seg_buf *dst, size_t doff,
                            const struct seg_buf *src, size_t soff, size_t n)
{
    struct vk_ctx *c = vk_ctx_of(be);
    enum seg_status st;
    if ((st = check_range(dst, doff, n, "buf_copy")) || (st = check_range(src, soff, n, "buf_copy")))
        return st;
    if (n == 0)
        return SEG_STATUS_OK;
    const struct vk_alloc *d = dst->handle, *s = src->handle;
    VkCommandBuffer cmd;
    if ((st = vk_record_begin(c, "buf_copy", &cmd)))
        return st;
    struct vk_span sp[2] = {span_of(s, soff, n, false), span_of(d, doff, n, true)};
    vk_order(c, sp, 2);
    VkBufferCopy region = {s->offset + soff, d->offset + doff, n};
    vkCmdCopyBuffer(cmd, s->block->buf, d->block->buf, 1, &region);
    return vk_record_end(c, "buf_copy");
}

/* ---- upload arenas ----------------------------------------------------------------- */

enum seg_status vk_arena_new(struct vk_ctx *c, VkDeviceSize size, struct vk_arena **out)
{
    struct vk_arena *a = calloc(1, sizeof *a);
    if (!a)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: out of host memory");
    enum seg_status st = make_buffer(c, size, false, &a->buf, &a->mem, &a->ptr, "upload arena");
    if (st) {
        free(a);
        return st;
    }
    a->size = size;
    *out = a;
    return SEG_STATUS_OK;
}

void vk_arena_free(struct vk_ctx *c, struct vk_arena *a)
{
    if (!a)
        return;

    if (a->ptr)
        vkUnmapMemory(c->dev, a->mem);
    if (a->buf)
        vkDestroyBuffer(c->dev, a->buf, NULL);
    if (a->mem)
        vkFreeMemory(c->dev, a->mem, NULL);
    free(a);
}
