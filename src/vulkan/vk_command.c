/* vk_command.c: command recording and batched submission.
 *
 * Ops are recorded into the open frame's command buffer, each followed by a global memory
 * barrier (compute/transfer -> compute/transfer), and submitted in batches: when a frame
 * is full (SEG_VK_BATCH_MAX commands), at sync, and before any host transfer. Two frames
 * alternate so the host records the next batch while the device runs the previous one;
 * a frame's fence is waited on (and its descriptor pool reset) before it is reused. */
#include <string.h>

#include "vulkan/vk_internal.h"

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
    VkCommandBuffer cmds[SEG_VK_FRAMES + 1];
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = c->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = SEG_VK_FRAMES + 1,
    };
    r = vkAllocateCommandBuffers(c->dev, &ai, cmds);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkAllocateCommandBuffers", "backend creation");
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SEG_VK_BATCH_MAX * SEG_VK_BINDINGS};
    VkDescriptorPoolCreateInfo dpi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = SEG_VK_BATCH_MAX,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    for (int i = 0; i < SEG_VK_FRAMES; i++) {
        struct vk_frame *f = &c->frames[i];
        f->cmd = cmds[i];
        if ((r = vkCreateFence(c->dev, &fi, NULL, &f->fence)) != VK_SUCCESS)
            return vk_fail(r, "vkCreateFence", "backend creation");
        if ((r = vkCreateDescriptorPool(c->dev, &dpi, NULL, &f->dpool)) != VK_SUCCESS)
            return vk_fail(r, "vkCreateDescriptorPool", "backend creation");
    }
    c->xfer_cmd = cmds[SEG_VK_FRAMES];
    if ((r = vkCreateFence(c->dev, &fi, NULL, &c->xfer_fence)) != VK_SUCCESS)
        return vk_fail(r, "vkCreateFence", "backend creation");
    return SEG_STATUS_OK;
}

void vk_command_destroy(struct vk_ctx *c)
{
    for (int i = 0; i < SEG_VK_FRAMES; i++) {
        struct vk_frame *f = &c->frames[i];
        if (f->fence)
            vkDestroyFence(c->dev, f->fence, NULL);
        if (f->dpool)
            vkDestroyDescriptorPool(c->dev, f->dpool, NULL);
        memset(f, 0, sizeof *f);
    }
    if (c->xfer_fence)
        vkDestroyFence(c->dev, c->xfer_fence, NULL);
    c->xfer_fence = VK_NULL_HANDLE;
    if (c->cmd_pool)
        vkDestroyCommandPool(c->dev, c->cmd_pool, NULL); /* frees the command buffers */
    c->cmd_pool = VK_NULL_HANDLE;
}

static enum seg_status frame_wait(struct vk_ctx *c, struct vk_frame *f, const char *where)
{
    if (!f->submitted)
        return SEG_STATUS_OK;
    VkResult r = vkWaitForFences(c->dev, 1, &f->fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkWaitForFences", where);
    f->submitted = false;
    r = vkResetFences(c->dev, 1, &f->fence);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkResetFences", where);
    return SEG_STATUS_OK;
}

enum seg_status vk_record_begin(struct vk_ctx *c, const char *where, VkCommandBuffer *out)
{
    struct vk_frame *f = &c->frames[c->cur];
    if (!f->recording) {
        enum seg_status st = frame_wait(c, f, where);
        if (st)
            return st;
        VkResult r = vkResetDescriptorPool(c->dev, f->dpool, 0);
        if (r != VK_SUCCESS)
            return vk_fail(r, "vkResetDescriptorPool", where);
        VkCommandBufferBeginInfo bi = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
            .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
        };
        r = vkBeginCommandBuffer(f->cmd, &bi);
        if (r != VK_SUCCESS)
            return vk_fail(r, "vkBeginCommandBuffer", where);
        f->recording = true;
        f->ncmd = 0;
        f->nsets = 0;
    }
    *out = f->cmd;
    return SEG_STATUS_OK;
}

static void global_barrier(VkCommandBuffer cmd, VkPipelineStageFlags dst_stage, VkAccessFlags dst_access)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = dst_access,
    };
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         dst_stage, 0, 1, &mb, 0, NULL, 0, NULL);
}

enum seg_status vk_record_end(struct vk_ctx *c, const char *where)
{
    struct vk_frame *f = &c->frames[c->cur];
    global_barrier(f->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                       VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
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
    global_barrier(f->cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
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
    f->submitted = true;
    c->cur = (c->cur + 1) % SEG_VK_FRAMES;
    return SEG_STATUS_OK;
}

enum seg_status vk_wait_all(struct vk_ctx *c, const char *where)
{
    if (!c->frames[0].fence)
        return SEG_STATUS_OK; /* partially created backend */
    enum seg_status st = vk_flush(c, where);
    for (int i = 0; i < SEG_VK_FRAMES; i++) {
        enum seg_status s2 = frame_wait(c, &c->frames[i], where);
        if (!st)
            st = s2;
    }
    return st;
}

enum seg_status vk_sync(struct seg_backend *be) { return vk_wait_all(vk_ctx_of(be), "sync"); }

enum seg_status vk_xfer_begin(struct vk_ctx *c, const char *where, VkCommandBuffer *out)
{
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VkResult r = vkBeginCommandBuffer(c->xfer_cmd, &bi);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkBeginCommandBuffer", where);
    *out = c->xfer_cmd;
    return SEG_STATUS_OK;
}

enum seg_status vk_xfer_submit(struct vk_ctx *c, const char *where)
{
    global_barrier(c->xfer_cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    VkResult r = vkEndCommandBuffer(c->xfer_cmd);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkEndCommandBuffer", where);
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &c->xfer_cmd,
    };
    r = vkQueueSubmit(c->queue, 1, &si, c->xfer_fence);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkQueueSubmit", where);
    r = vkWaitForFences(c->dev, 1, &c->xfer_fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkWaitForFences", where);
    r = vkResetFences(c->dev, 1, &c->xfer_fence);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkResetFences", where);
    return SEG_STATUS_OK;
}

/* ---- dispatch ------------------------------------------------------------------ */

enum seg_status vk_dispatch(struct seg_backend *be, enum seg_vk_shader sh,
                            const struct seg_tensor *const t[SEG_VK_BINDINGS], struct vk_push *pc,
                            uint32_t gx, uint32_t gy, uint32_t gz, const char *where)
{
    return vk_dispatch_fn(be, sh, -1, t, pc, gx, gy, gz, where);
}

enum seg_status vk_dispatch_fn(struct seg_backend *be, enum seg_vk_shader sh, int fn,
                               const struct seg_tensor *const t[SEG_VK_BINDINGS], struct vk_push *pc,
                               uint32_t gx, uint32_t gy, uint32_t gz, const char *where)
{
    struct vk_ctx *c = vk_ctx_of(be);
    VkDescriptorBufferInfo infos[SEG_VK_BINDINGS];
    for (int k = 0; k < SEG_VK_BINDINGS; k++) {
        const struct seg_tensor *x = t[k];
        const struct vk_alloc *a = x ? x->buf.handle : c->dummy;
        if (!a)
            return seg_error(SEG_STATUS_INVALID, "vulkan: %s: tensor %d has no buffer", where, k);
        VkDeviceSize toff = x ? x->offset : 0;
        VkDeviceSize base = toff / c->align * c->align;
        VkDeviceSize range = a->size - base;
        if (range > c->max_range) {
            VkDeviceSize need = (toff - base) + (VkDeviceSize)seg_numel_of(x) * 4;
            if (need > c->max_range)
                return seg_error(SEG_STATUS_UNSUPPORTED,
                                 "vulkan: %s: a %llu-byte tensor exceeds maxStorageBufferRange (%llu)",
                                 where, (unsigned long long)need, (unsigned long long)c->max_range);
            range = c->max_range / 4 * 4;
        }
        infos[k] = (VkDescriptorBufferInfo){a->block->buf, a->offset + base, range};
        pc->off[k] = (uint32_t)((toff - base) / 4);
    }
    VkPipeline pipe;
    enum seg_status st = vk_pipeline_get(c, sh, fn, &pipe);
    if (st)
        return st;
    VkCommandBuffer cmd;
    if ((st = vk_record_begin(c, where, &cmd)))
        return st;
    struct vk_frame *f = &c->frames[c->cur];
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = f->dpool,
        .descriptorSetCount = 1,
        .pSetLayouts = &c->dsl,
    };
    VkDescriptorSet set;
    VkResult r = vkAllocateDescriptorSets(c->dev, &ai, &set);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkAllocateDescriptorSets", where);
    f->nsets++;
    VkWriteDescriptorSet w = {
        .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
        .dstSet = set,
        .dstBinding = 0,
        .descriptorCount = SEG_VK_BINDINGS,
        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .pBufferInfo = infos,
    };
    vkUpdateDescriptorSets(c->dev, 1, &w, 0, NULL);
    vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->playout, 0, 1, &set, 0, NULL);
    vkCmdPushConstants(cmd, c->playout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof *pc, pc);
    vkCmdDispatch(cmd, gx, gy, gz);
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
