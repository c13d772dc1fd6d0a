/* vk_optim.c: in-place SGD (momentum) and Adam steps. */
#include "vulkan/vk_internal.h"

VK_KERNEL(vk_sgd_step)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->dst[1], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[1] = (int32_t)n;
    pc.ip[2] = a->dst[1] != NULL;
    return vk_dispatch_n(be, SEG_VK_SHADER_SGD_STEP, t, &pc, (uint64_t)n, "SGD_STEP");
}

VK_KERNEL(vk_adam_step)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->dst[1], a->dst[2], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[0] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_ADAM_STEP, t, &pc, (uint64_t)n, "ADAM_STEP");
}
