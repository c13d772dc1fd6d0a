/* vk_command.c: command recording, barriers where they are needed, batched submission.
 *
 * Ops are recorded into the recording frame's command buffer and submitted in batches of
 * SEG_VK_BATCH_MAX commands, before a host read and at sync. Frames form a ring in
 * submission order, used from its start after each wait: a stretch between waits longer
 * than the ring adds frames (up to SEG_VK_FRAMES_MAX) rather than make the host wait.
 * Fence signals cover every earlier submission on the queue, so draining everything waits
 * on the newest fence alone: one host wait.
 *
 * Barriers: the ranges accessed since the last barrier are tracked (vk_order); a command
 * gets a global barrier before it only where it reads a range written since, or writes a
 * range read or written since. Independent kernels (the branches of ASPP, the optimizer's
 * per-parameter updates) then overlap. */
#include <string.h>

#include "vulkan/vk_internal.h"

static enum seg_status frame_create(struct vk_ctx *c, struct vk_frame *f)
{
    memset(f, 0, sizeof *f);
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = c->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VkResult r = vkAllocateCommandBuffers(c->dev, &ai, &f->cmd);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkAllocateCommandBuffers", "command frame");
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = vkCreateFence(c->dev, &fi, NULL, &f->fence)) != VK_SUCCESS)
        return vk_fail(r, "vkCreateFence", "command frame");
    return SEG_STATUS_OK;
}

static void arenas_free(struct vk_ctx *c, struct vk_arena *a)
{
    while (a) {
        struct vk_arena *next = a->next;
        vk_arena_free(c, a);
        a = next;
    }
}

static void frame_destroy(struct vk_ctx *c, struct vk_frame *f)
{
    if (f->fence)
        vkDestroyFence(c->dev, f->fence, NULL);
    arenas_free(c, f->arena);
    arenas_free(c, f->retired);
    memset(f, 0, sizeof *f);
}

enum seg_status vk_command_init(struct vk_ctx *c)
{
    VkCommandPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = c->qfamily,
    };
    VkResult r = vkCreateCommandPool(c->dev, &pi, NULL, &c->cmd_pool);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkCreateCommandPool", "backend creation");
    for (int i = 0; i < SEG_VK_FRAMES; i++) {
        enum seg_status st = frame_create(c, &c->frames[i]);
        c->nframes = i + 1;
        if (st)
            return st;
    }
    return vk_dset_init(c);
}

void vk_command_destroy(struct vk_ctx *c)
{
    vk_dset_destroy(c);
    for (int i = 0; i < c->nframes; i++)
        frame_destroy(c, &c->frames[i]);
    arenas_free(c, c->idle_arenas);
    c->idle_arenas = NULL;
    c->nframes = 0;
    if (c->cmd_pool)
        vkDestroyCommandPool(c->dev, c->cmd_pool, NULL); /* frees the command buffers */
    c->cmd_pool = VK_NULL_HANDLE;
}

static enum seg_status wait_fence(struct vk_ctx *c, struct vk_frame *f, const char *where)
{
    c->counts->host_syncs++;
    VkResult r = vkWaitForFences(c->dev, 1, &f->fence, VK_TRUE, UINT64_MAX);
    return r == VK_SUCCESS ? SEG_STATUS_OK : vk_fail(r, "vkWaitForFences", where);
}

static void arena_to_idle(struct vk_ctx *c, struct vk_arena *a)
{
    while (a) {
        struct vk_arena *next = a->next;
        a->next = c->idle_arenas;
        c->idle_arenas = a;
        a = next;
    }
}

/* Makes a submitted frame reusable: waits for it if asked (else it must have signalled) and
 * gives its upload arenas back to the idle list, so that whichever frame records the next
 * step's uploads finds one without allocating. */
static enum seg_status frame_reclaim(struct vk_ctx *c, struct vk_frame *f, bool wait, const char *where)
{
    if (!f->submitted)
        return SEG_STATUS_OK;
    enum seg_status st = SEG_STATUS_OK;
    if (wait)
        st = wait_fence(c, f, where);
    if (st)
        return st;
    f->submitted = false;
    VkResult r = vkResetFences(c->dev, 1, &f->fence);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkResetFences", where);
    arena_to_idle(c, f->retired);
    arena_to_idle(c, f->arena);
    f->retired = NULL;
    f->arena = NULL;
    f->arena_used = 0;
    return SEG_STATUS_OK;
}

/* After a submit: the frame after cur becomes the recording one. A frame still submitted
 * there (more submissions since the last wait than the ring has frames) is not reused even
 * if its fence has signalled: a new frame goes in instead, up to SEG_VK_FRAMES_MAX, and only
 * a full ring waits for its oldest frame. The ring's size, its upload arenas and the host
 * waits then follow from the work alone, never from how far behind the device is, so a
 * step makes the same API calls on a loaded machine (tests/test_callcount.py counts them);
 * a stretch between waits holds all its frames until the wait reclaims them. */
static enum seg_status next_frame(struct vk_ctx *c, const char *where)
{
    int nx = (c->cur + 1) % c->nframes;
    struct vk_frame *f = &c->frames[nx];
    if (f->submitted) {
        if (c->nframes < SEG_VK_FRAMES_MAX) {
            /* inserted at nx, which keeps the ring in submission order (the oldest in
             * flight moves to nx + 1) */
            memmove(&c->frames[nx + 1], &c->frames[nx], (size_t)(c->nframes - nx) * sizeof *f);
            c->nframes++;
            SEG_TRY(frame_create(c, &c->frames[nx]));
        } else {
            SEG_TRY(frame_reclaim(c, f, true, where));
        }
    }
    c->cur = nx;
    return SEG_STATUS_OK;
}

enum seg_status vk_record_begin(struct vk_ctx *c, const char *where, VkCommandBuffer *out)
{
    struct vk_frame *f = &c->frames[c->cur];
    if (!f->recording) {
        VkCommandBufferBeginInfo bi = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
            .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
        };
        VkResult r = vkBeginCommandBuffer(f->cmd, &bi);
        if (r != VK_SUCCESS)
            return vk_fail(r, "vkBeginCommandBuffer", where);
        f->recording = true;
        f->ncmd = 0;
    }
    *out = f->cmd;
    return SEG_STATUS_OK;
}

static void barrier(struct vk_ctx *c, VkPipelineStageFlags dst_stage, VkAccessFlags dst_access)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = dst_access,
    };
    vkCmdPipelineBarrier(c->frames[c->cur].cmd,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, dst_stage,
                         0, 1, &mb, 0, NULL, 0, NULL);
    c->counts->barriers++;
}

void vk_barrier_all(struct vk_ctx *c)
{
    if (c->npending == 0)
        return;
    barrier(c, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                VK_ACCESS_TRANSFER_WRITE_BIT);
    c->npending = 0;
}

static bool conflicts(const struct vk_span *a, const struct vk_span *b)
{
    return (a->write || b->write) && a->buf == b->buf && a->lo < b->hi && b->lo < a->hi;
}

void vk_order(struct vk_ctx *c, const struct vk_span *s, int n)
{
    bool need = c->npending + n > SEG_VK_PENDING_MAX;
    for (int i = 0; i < n && !need; i++)
        for (int j = 0; j < c->npending && !need; j++)
            need = conflicts(&s[i], &c->pending[j]);
    if (need)
        vk_barrier_all(c);
    for (int i = 0; i < n; i++)
        c->pending[c->npending++] = s[i];
}

enum seg_status vk_record_end(struct vk_ctx *c, const char *where)
{
    struct vk_frame *f = &c->frames[c->cur];
    f->ncmd++;
    if (f->ncmd >= SEG_VK_BATCH_MAX)
        return vk_flush(c, where);
    return SEG_STATUS_OK;
}

enum seg_status vk_flush(struct vk_ctx *c, const char *where)
{
    struct vk_frame *f = &c->frames[c->cur];
    if (!f->recording)
        return SEG_STATUS_OK;
    /* results become visible to host reads of mapped memory after the fence */
    barrier(c, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    f->recording = false;
    VkResult r = vkEndCommandBuffer(f->cmd);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkEndCommandBuffer", where);
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &f->cmd,
    };
    r = vkQueueSubmit(c->queue, 1, &si, f->fence);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkQueueSubmit", where);
    c->counts->submits++;
    f->submitted = true;
    return next_frame(c, where);
}

bool vk_idle(const struct vk_ctx *c)
{
    for (int i = 0; i < c->nframes; i++)
        if (c->frames[i].submitted || (c->frames[i].recording && c->frames[i].ncmd > 0))
            return false;
    return true;
}

enum seg_status vk_wait_all(struct vk_ctx *c, const char *where)
{
    if (!c->nframes || !c->frames[0].fence)
        return SEG_STATUS_OK; /* partially created backend */
    enum seg_status st = vk_flush(c, where);
    if (st)
        return st;
    /* the newest submission is the one before cur in the ring */
    struct vk_frame *newest = &c->frames[(c->cur + c->nframes - 1) % c->nframes];
    if (newest->submitted && (st = frame_reclaim(c, newest, true, where)))
        return st;
    for (int i = 0; i < c->nframes; i++) {
        struct vk_frame *f = &c->frames[i];
        if (!f->submitted)
            continue;
        VkResult r = vkGetFenceStatus(c->dev, f->fence);
        if (r != VK_SUCCESS && r != VK_NOT_READY)
            return vk_fail(r, "vkGetFenceStatus", where);
        if ((st = frame_reclaim(c, f, r == VK_NOT_READY, where)))
            return st;
    }
    c->npending = 0;
    /* nothing in flight: the ring starts again at frame 0, so that a step that repeats the
     * previous one records (and uploads) into the same frames */
    c->cur = 0;
    return SEG_STATUS_OK;
}

enum seg_status vk_sync(struct seg_backend *be) { return vk_wait_all(vk_ctx_of(be), "sync"); }

enum seg_status vk_upload_space(struct vk_ctx *c, VkDeviceSize n, VkBuffer *buf, VkDeviceSize *off,
                                void **ptr)
{
    struct vk_frame *f = &c->frames[c->cur];
    VkDeviceSize at = (f->arena_used + 15) / 16 * 16;
    if (!f->arena || at + n > f->arena->size) {
        /* another arena: an idle one that fits, else a new one; the old one may still be
         * read by this frame's copies */
        struct vk_arena *a = NULL, **pp;
        for (pp = &c->idle_arenas; *pp; pp = &(*pp)->next)
            if ((*pp)->size >= n) {
                a = *pp;
                *pp = a->next;
                break;
            }
        if (!a) {
            VkDeviceSize want = f->arena ? f->arena->size * 2 : ((VkDeviceSize)1 << 20);
            while (want < n)
                want *= 2;
            SEG_TRY(vk_arena_new(c, want, &a));
        }
        a->next = NULL;
        if (f->arena) {
            f->arena->next = f->retired;
            f->retired = f->arena;
        }
        f->arena = a;
        at = 0;
    }
    f->arena_used = at + n;
    *buf = f->arena->buf;
    *off = at;
    *ptr = (char *)f->arena->ptr + at;
    return SEG_STATUS_OK;
}

/* ---- dispatch ------------------------------------------------------------------ */

enum seg_status vk_dispatch(struct seg_backend *be, enum seg_vk_shader sh,
                            const struct seg_tensor *const t[SEG_VK_BINDINGS], struct vk_push *pc,
                            uint32_t gx, uint32_t gy, uint32_t gz, const char *where)
{
    return vk_dispatch_fn(be, sh, -1, t, pc, gx, gy, gz, where);
}

static bool overlaps(const struct seg_tensor *x, VkBuffer buf, VkDeviceSize lo, VkDeviceSize hi)
{
    const struct vk_alloc *a = x ? x->buf.handle : NULL;
    if (!a)
        return false;
    VkDeviceSize xlo = a->offset + x->offset, xhi = xlo + seg_tensor_nbytes(x);
    return a->block->buf == buf && xlo < hi && lo < xhi;
}

/* A binding is only read when it is one of the op's sources and none of its destinations;
 * anything else (destinations, scratch, an op's own temporaries) counts as written. */
static bool read_only(const struct vk_ctx *c, VkBuffer buf, VkDeviceSize lo, VkDeviceSize hi)
{
    if (!c->op)
        return false;
    for (int j = 0; j < 3; j++)
        if (overlaps(c->op->dst[j], buf, lo, hi))
            return false;
    for (int j = 0; j < 6; j++)
        if (overlaps(c->op->src[j], buf, lo, hi))
            return true;
    return false;
}

bool vk_texel_ok(const struct vk_ctx *c, const struct seg_tensor *x)
{
    const struct vk_alloc *a = x && x->buf.handle ? x->buf.handle : NULL;
    if (!a || !a->block->view || a->block->size > c->max_range)
        return false; /* no view, or bound from an offset (texel indices count from 0) */
    VkDeviceSize end = a->offset + x->offset + seg_tensor_nbytes(x);
    return end <= a->block->view_bytes && end / 4 <= INT32_MAX;
}

enum seg_status vk_dispatch_fn(struct seg_backend *be, enum seg_vk_shader sh, int fn,
                               const struct seg_tensor *const t[SEG_VK_BINDINGS], struct vk_push *pc,
                               uint32_t gx, uint32_t gy, uint32_t gz, const char *where)
{
    struct vk_ctx *c = vk_ctx_of(be);
    struct vk_dset_key key;
    memset(&key, 0, sizeof key); /* padding included: keys are compared bytewise */
    VkDescriptorBufferInfo *infos = key.buf;
    struct vk_span spans[SEG_VK_BINDINGS];
    int nspans = 0;
    for (int k = 0; k < SEG_VK_BINDINGS; k++) {
        const struct seg_tensor *x = t[k];
        const struct vk_alloc *a = x ? x->buf.handle : c->dummy;
        if (!a)
            return seg_error(SEG_STATUS_INVALID, "vulkan: %s: tensor %d has no buffer", where, k);
        /* The whole memory block is bound and the tensor's element offset goes in push
         * constants, so a set depends only on which blocks an op touches, not on where the
         * pool put its tensors this step: the cached sets keep matching. A block larger than
         * maxStorageBufferRange is bound from the tensor's aligned offset instead. */
        VkDeviceSize pos = a->offset + (x ? x->offset : 0), nb = x ? seg_tensor_nbytes(x) : 4;
        VkDeviceSize base = 0, range = a->block->size;
        if (range > c->max_range || pos / 4 > UINT32_MAX) {
            base = pos / c->align * c->align;
            range = a->block->size - base;
            if (range > c->max_range) {
                if (pos - base + nb > c->max_range)
                    return seg_error(SEG_STATUS_UNSUPPORTED,
                                     "vulkan: %s: a %llu-byte tensor exceeds maxStorageBufferRange (%llu)",
                                     where, (unsigned long long)nb, (unsigned long long)c->max_range);
                range = c->max_range / 4 * 4;
            }
        }
        infos[k] = (VkDescriptorBufferInfo){a->block->buf, base, range};
        if (k >= 1 && k <= SEG_VK_TEXELS && c->max_texels) /* every set has valid texel views */
            key.texel[k - 1] = a->block->view ? a->block->view : c->dummy->block->view;
        pc->off[k] = (uint32_t)((pos - base) / 4);
        if (x) {
            struct vk_span *s = &spans[nspans++];
            s->buf = a->block->buf;
            s->lo = pos;
            s->hi = pos + nb;
            s->write = a == c->scratch || !read_only(c, s->buf, s->lo, s->hi);
        }
    }
    VkPipeline pipe;
    enum seg_status st = vk_pipeline_get(c, sh, fn, &pipe);
    VkDescriptorSet set;
    if (!st) st = vk_dset_get(c, &key, &set, where);
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    if (!st) st = vk_record_begin(c, where, &cmd);
    if (st)
        return st;
    vk_order(c, spans, nspans);
    vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->playout, 0, 1, &set, 0, NULL);
    vkCmdPushConstants(cmd, c->playout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof *pc, pc);
    vkCmdDispatch(cmd, gx, gy, gz);
    c->counts->dispatches++;
    return vk_record_end(c, where);
}

enum seg_status vk_dispatch_n_fn(struct seg_backend *be, enum seg_vk_shader sh, int fn,
                                 const struct seg_tensor *const t[SEG_VK_BINDINGS],
                                 struct vk_push *pc, uint64_t n, const char *where)
{
    enum seg_status st = vk_check_u32(n, where);
    if (st)
        return st;
    if (n == 0)
        return SEG_STATUS_OK;
    return vk_dispatch_fn(be, sh, fn, t, pc, vk_groups(n, SEG_VK_WG), 1, 1, where);
}

enum seg_status vk_dispatch_n(struct seg_backend *be, enum seg_vk_shader sh,
                              const struct seg_tensor *const t[SEG_VK_BINDINGS],
                              struct vk_push *pc, uint64_t n, const char *where)
{
    return vk_dispatch_n_fn(be, sh, -1, t, pc, n, where);
}
