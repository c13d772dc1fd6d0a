/* vk_timer.c: device timestamps (vkCmdWriteTimestamp) around queued work, for bench. Two
 * queries: written at the bottom of the pipe, so each marks the completion of everything
 * recorded before it; the difference times the work in between on the device. */
#include <stdlib.h>

#include "vulkan/vk_internal.h"

enum seg_status vk_timer_init(struct vk_ctx *c)
{
    c->tquery = VK_NULL_HANDLE;
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &n, NULL);
    if (c->qfamily >= n)
        return SEG_STATUS_OK;
    VkQueueFamilyProperties *q = calloc(n, sizeof *q);
    if (!q)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: out of host memory");
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &n, q);
    uint32_t bits = q[c->qfamily].timestampValidBits;
    free(q);
    /* timestampComputeAndGraphics promises timestamps on every compute queue; otherwise the
     * family's validBits tell (0: none). */
    if (bits == 0 || c->props.limits.timestampPeriod <= 0.0f)
        return SEG_STATUS_OK;
    VkQueryPoolCreateInfo qi = {
        .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
        .queryType = VK_QUERY_TYPE_TIMESTAMP,
        .queryCount = 2,
    };
    if (vkCreateQueryPool(c->dev, &qi, NULL, &c->tquery) != VK_SUCCESS) {
        c->tquery = VK_NULL_HANDLE; /* no timestamps: bench shows wall clock only */
        return SEG_STATUS_OK;
    }
    c->tmask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
    c->tperiod_ns = c->props.limits.timestampPeriod;
    return SEG_STATUS_OK;
}

void vk_timer_destroy(struct vk_ctx *c)
{
    if (c->tquery)
        vkDestroyQueryPool(c->dev, c->tquery, NULL);
    c->tquery = VK_NULL_HANDLE;
}

enum seg_status vk_timer_start(struct seg_backend *be)
{
    struct vk_ctx *c = vk_ctx_of(be);
    if (!c->tquery)
        return seg_error(SEG_STATUS_UNSUPPORTED, "vulkan: this queue has no timestamps");
    VkCommandBuffer cmd;
    enum seg_status st = vk_record_begin(c, "timer_start", &cmd);
    if (st)
        return st;
    vk_barrier_all(c); /* the mark follows everything queued before it */
    vkCmdResetQueryPool(cmd, c->tquery, 0, 2);
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->tquery, 0);
    c->tstarted = true;
    return vk_record_end(c, "timer_start");
}

enum seg_status vk_timer_stop(struct seg_backend *be, double *device_ms)
{
    struct vk_ctx *c = vk_ctx_of(be);
    *device_ms = 0.0;
    if (!c->tquery || !c->tstarted)
        return seg_error(SEG_STATUS_INVALID, "vulkan: timer_stop without timer_start");
    c->tstarted = false;
    VkCommandBuffer cmd;
    enum seg_status st = vk_record_begin(c, "timer_stop", &cmd);
    if (st)
        return st;
    vk_barrier_all(c);
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->tquery, 1);
    if ((st = vk_record_end(c, "timer_stop")) || (st = vk_wait_all(c, "timer_stop")))
        return st;
    uint64_t t[2] = {0, 0};
    VkResult r = vkGetQueryPoolResults(c->dev, c->tquery, 0, 2, sizeof t, t, sizeof t[0],
                                       VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkGetQueryPoolResults", "timer_stop");
    uint64_t ticks = (t[1] - t[0]) & c->tmask;
    *device_ms = (double)ticks * c->tperiod_ns / 1e6;
    return SEG_STATUS_OK;
}
