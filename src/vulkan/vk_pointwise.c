/* vk_pointwise.c: fill, cast, binary, expand, unary (+ backward), where, rng. */
#include "vulkan/vk_internal.h"

VK_KERNEL(vk_fill)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[1] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_FILL, t, &pc, (uint64_t)n, "FILL");
}

VK_KERNEL(vk_cast)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    enum seg_status st = vk_check_u32((uint64_t)n + 3, "CAST");
    if (st)
        return st;
    pc.ip[0] = (int32_t)n;
    pc.ip[1] = (int32_t)a->src[0]->dtype;
    pc.ip[2] = (int32_t)a->dst[0]->dtype;
    uint64_t threads = a->dst[0]->dtype == SEG_DTYPE_U8 ? ((uint64_t)n + 3) / 4 : (uint64_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_CAST, t, &pc, threads, "CAST");
}

VK_KERNEL(vk_binary)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[13] = (int32_t)n;
    /* ip[14]: bit 0 = a is read at the element's own index, bit 1 = b is (no broadcast) */
    int64_t st3 = 1, st2 = st3 * a->ip[4], st1 = st2 * a->ip[3], st0 = st1 * a->ip[2];
    bool a_id = a->ip[5] == st0 && a->ip[6] == st1 && a->ip[7] == st2 && a->ip[8] == st3;
    bool b_id = a->ip[9] == st0 && a->ip[10] == st1 && a->ip[11] == st2 && a->ip[12] == st3;
    pc.ip[14] = (a_id ? 1 : 0) | (b_id ? 2 : 0);
    enum seg_vk_shader sh = a_id && b_id ? SEG_VK_SHADER_BINARY_DIRECT : SEG_VK_SHADER_BINARY;
    return vk_dispatch_n_fn(be, sh, a->ip[0], t, &pc, (uint64_t)n, "BINARY");
}

VK_KERNEL(vk_expand)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[9] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_EXPAND, t, &pc, (uint64_t)n, "EXPAND");
}

VK_KERNEL(vk_unary)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[1] = (int32_t)n;
    return vk_dispatch_n_fn(be, SEG_VK_SHADER_UNARY, a->ip[0], t, &pc, (uint64_t)n, "UNARY");
}

VK_KERNEL(vk_unary_bwd)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[1] = (int32_t)n;
    return vk_dispatch_n_fn(be, SEG_VK_SHADER_UNARY_BWD, a->ip[0], t, &pc, (uint64_t)n, "UNARY_BWD");
}

VK_KERNEL(vk_where)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1], a->src[2]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[0] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_WHERE, t, &pc, (uint64_t)n, "WHERE");
}

VK_KERNEL(vk_rng_uniform)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[2] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_RNG_UNIFORM, t, &pc, (uint64_t)n, "RNG_UNIFORM");
}
