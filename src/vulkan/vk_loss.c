/* vk_loss.c: per-pixel cross-entropy terms and their gradient (one thread per pixel). */
#include "vulkan/vk_internal.h"

VK_KERNEL(vk_cross_entropy)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1], a->src[2]};
    struct vk_push pc = vk_push_from(a);
    uint64_t np = (uint64_t)a->ip[0] * (uint64_t)a->ip[2];
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]) + 2 * np, "CROSS_ENTROPY");
    if (st)
        return st;
    pc.ip[4] = a->src[2] != NULL;
    return vk_dispatch_n(be, SEG_VK_SHADER_CROSS_ENTROPY, t, &pc, np, "CROSS_ENTROPY");
}

VK_KERNEL(vk_cross_entropy_bwd)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1], a->src[2],
                                                   a->src[3]};
    struct vk_push pc = vk_push_from(a);
    uint64_t np = (uint64_t)a->ip[0] * (uint64_t)a->ip[2];
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "CROSS_ENTROPY_BWD");
    if (st)
        return st;
    pc.ip[4] = a->src[2] != NULL;
    return vk_dispatch_n(be, SEG_VK_SHADER_CROSS_ENTROPY_BWD, t, &pc, np, "CROSS_ENTROPY_BWD");
}
