/* vk_optim.c: in-place SGD (momentum) and Adam steps, each skipped where the optional flag is
 * set; the non-finite test that sets it. */
#include "vulkan/vk_internal.h"

VK_KERNEL(vk_sgd_step)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->dst[1], a->src[0], a->src[1]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[1] = (int32_t)n;
    pc.ip[2] = a->dst[1] != NULL;
    pc.ip[3] = a->src[1] != NULL;
    return vk_dispatch_n(be, SEG_VK_SHADER_SGD_STEP, t, &pc, (uint64_t)n, "SGD_STEP");
}

VK_KERNEL(vk_adam_step)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->dst[1], a->dst[2], a->src[0], a->src[1]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[0] = (int32_t)n;
    pc.ip[1] = a->src[1] != NULL;
    return vk_dispatch_n(be, SEG_VK_SHADER_ADAM_STEP, t, &pc, (uint64_t)n, "ADAM_STEP");
}

VK_KERNEL(vk_nonfinite_any)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    uint64_t n = (uint64_t)a->ip[0];
    enum seg_status st = vk_check_trips(vk_ctx_of(be), (n + SEG_VK_WG - 1) / SEG_VK_WG, "NONFINITE_ANY");
    if (st)
        return st;
    return vk_dispatch(be, SEG_VK_SHADER_NONFINITE_ANY, t, &pc, 1, 1, 1, "NONFINITE_ANY");
}
