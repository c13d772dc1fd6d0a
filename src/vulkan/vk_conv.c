/* vk_conv.c: IM2COL and its adjoint COL2IM (gather formulation: deterministic). */
#include "vulkan/vk_internal.h"

VK_KERNEL(vk_im2col)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[14] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_IM2COL, t, &pc, (uint64_t)n, "IM2COL");
}

VK_KERNEL(vk_col2im)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "COL2IM");
    if (st)
        return st;
    pc.ip[14] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_COL2IM, t, &pc, (uint64_t)n, "COL2IM");
}
