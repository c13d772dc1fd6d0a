/* vk_pool.c: max pooling and resizing; the adjoints gather (one thread per input element,
 * fixed summation order, no atomics). */
#include "vulkan/vk_internal.h"

VK_KERNEL(vk_maxpool2d)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->dst[1], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "MAXPOOL2D");
    if (st)
        return st;
    pc.ip[12] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_MAXPOOL, t, &pc, (uint64_t)n, "MAXPOOL2D");
}

VK_KERNEL(vk_maxpool2d_bwd)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "MAXPOOL2D_BWD");
    if (st)
        return st;
    pc.ip[12] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_MAXPOOL_BWD, t, &pc, (uint64_t)n, "MAXPOOL2D_BWD");
}

VK_KERNEL(vk_resize_bilinear)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "RESIZE_BILINEAR");
    if (st)
        return st;
    pc.ip[6] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_RESIZE_BILINEAR, t, &pc, (uint64_t)n, "RESIZE_BILINEAR");
}

VK_KERNEL(vk_resize_bilinear_bwd)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "RESIZE_BILINEAR_BWD");
    if (st)
        return st;
    /* each input element walks the outputs that may read it: about 2*out/in + 5 per axis */
    uint64_t h = (uint64_t)a->ip[1], w = (uint64_t)a->ip[2], oh = (uint64_t)a->ip[3], ow = (uint64_t)a->ip[4];
    uint64_t rh = h > 1 ? 2 * (oh + h - 1) / h + 6 : oh, rw = w > 1 ? 2 * (ow + w - 1) / w + 6 : ow;
    if ((st = vk_check_trips(vk_ctx_of(be), vk_grid_trips((uint64_t)n) * rh * (rw + 1), "RESIZE_BILINEAR_BWD")))
        return st;
    pc.ip[6] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_RESIZE_BILINEAR_BWD, t, &pc, (uint64_t)n,
                         "RESIZE_BILINEAR_BWD");
}

VK_KERNEL(vk_resize_nearest)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "RESIZE_NEAREST");
    if (st)
        return st;
    pc.ip[6] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_RESIZE_NEAREST, t, &pc, (uint64_t)n, "RESIZE_NEAREST");
}
