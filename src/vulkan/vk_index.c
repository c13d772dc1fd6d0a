/* vk_index.c: one-hot, gather, scatter-add, slice, slice-assign, permute. */
#include "vulkan/vk_internal.h"

VK_KERNEL(vk_one_hot)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[3] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_ONE_HOT, t, &pc, (uint64_t)n, "ONE_HOT");
}

VK_KERNEL(vk_gather)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "GATHER");
    if (st)
        return st;
    pc.ip[5] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_GATHER, t, &pc, (uint64_t)n, "GATHER");
}

/* Without the uniqueness promise: one thread per destination element, looping over m
 * (deterministic, no float atomics). With it: zero fill, then direct writes. */
VK_KERNEL(vk_scatter_add)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1]};
    struct vk_push pc = vk_push_from(a);
    int64_t nd = seg_numel_of(a->dst[0]), ns = seg_numel_of(a->src[0]);
    enum seg_status st = vk_check_u32((uint64_t)(nd > ns ? nd : ns), "SCATTER_ADD");
    if (st)
        return st;
    if (!a->ip[4]) {
        /* chunks of m accumulate in dst where loop trips are limited */
        struct vk_ctx *c = vk_ctx_of(be);
        uint64_t m = (uint64_t)a->ip[2], trips = vk_grid_trips((uint64_t)nd);
        uint64_t chunk = c->loop_budget ? (c->loop_budget / 2) / trips : m;
        if (chunk == 0)
            return vk_check_trips(c, (uint64_t)c->loop_budget + trips, "SCATTER_ADD");
        if (m == 0 || chunk > m)
            chunk = m ? m : 1;
        for (uint64_t j = 0; j < (m ? m : 1); j += chunk) {
            pc.ip[6] = (int32_t)j;
            pc.ip[7] = (int32_t)(j + chunk < m ? j + chunk : m);
            pc.ip[8] = j > 0;
            if ((st = vk_dispatch_n(be, SEG_VK_SHADER_SCATTER_ADD, t, &pc, (uint64_t)nd, "SCATTER_ADD")))
                return st;
        }
        return SEG_STATUS_OK;
    }
    const struct seg_tensor *tf[SEG_VK_BINDINGS] = {a->dst[0]};
    struct vk_push fill = {.off = {0}};
    fill.ip[0] = 0;
    fill.ip[1] = (int32_t)nd;
    if ((st = vk_dispatch_n(be, SEG_VK_SHADER_FILL, tf, &fill, (uint64_t)nd, "SCATTER_ADD")))
        return st;
    pc.ip[5] = (int32_t)ns;
    return vk_dispatch_n(be, SEG_VK_SHADER_SCATTER_ADD_UNIQUE, t, &pc, (uint64_t)ns, "SCATTER_ADD");
}

VK_KERNEL(vk_slice)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "SLICE");
    if (st)
        return st;
    pc.ip[5] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_SLICE, t, &pc, (uint64_t)n, "SLICE");
}

VK_KERNEL(vk_slice_assign)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->src[0]);
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->dst[0]), "SLICE_ASSIGN");
    if (st)
        return st;
    pc.ip[5] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_SLICE_ASSIGN, t, &pc, (uint64_t)n, "SLICE_ASSIGN");
}

/* A permutation is an EXPAND with the source strides permuted. */
VK_KERNEL(vk_permute)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    const int32_t *s = a->ip, *perm = a->ip + 4;
    int64_t stride[4];
    stride[3] = 1;
    for (int k = 2; k >= 0; k--)
        stride[k] = stride[k + 1] * s[k + 1];
    struct vk_push pc = {.off = {0}};
    for (int k = 0; k < 4; k++) {
        int p = perm[k];
        if (p < 0 || p > 3)
            return seg_error(SEG_STATUS_INVALID, "vulkan: PERMUTE: bad permutation entry %d", p);
        pc.ip[1 + k] = s[p];
        pc.ip[5 + k] = (int32_t)stride[p];
    }
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[9] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_EXPAND, t, &pc, (uint64_t)n, "PERMUTE");
}
