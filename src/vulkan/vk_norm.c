/* vk_norm.c: batch normalization. Statistics and the backward pass run one workgroup per
 * channel (shared-memory sums; the backward writes dx of its channel after its sums). */
#include "vulkan/vk_internal.h"

/* Loop iterations of one invocation of the per-channel shaders (two sweeps over N*P). */
static uint64_t bn_trips(const struct seg_op_args *a)
{
    uint64_t c = (uint64_t)a->ip[1], m = (uint64_t)a->ip[0] * (uint64_t)a->ip[2];
    return (2 * ((m + SEG_VK_WG - 1) / SEG_VK_WG) + 20) * ((c + SEG_VK_MAX_GROUPS - 1) / SEG_VK_MAX_GROUPS);
}

VK_KERNEL(vk_batchnorm_stats)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->dst[1], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    uint64_t c = (uint64_t)a->ip[1];
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "BATCHNORM_STATS");
    if (st || c == 0)
        return st;
    if ((st = vk_check_trips(vk_ctx_of(be), bn_trips(a), "BATCHNORM_STATS")))
        return st;
    return vk_dispatch(be, SEG_VK_SHADER_BN_STATS, t, &pc, vk_groups(c, 1), 1, 1, "BATCHNORM_STATS");
}

VK_KERNEL(vk_batchnorm)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1],
                                                   a->src[2], a->src[3], a->src[4]};
    struct vk_push pc = vk_push_from(a);
    int64_t n = seg_numel_of(a->dst[0]);
    pc.ip[3] = a->src[3] != NULL;
    pc.ip[4] = a->src[4] != NULL;
    pc.ip[5] = (int32_t)n;
    return vk_dispatch_n(be, SEG_VK_SHADER_BN_FWD, t, &pc, (uint64_t)n, "BATCHNORM");
}

VK_KERNEL(vk_batchnorm_bwd)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->dst[1], a->dst[2], a->src[0],
                                                   a->src[1], a->src[2], a->src[3], a->src[4]};
    struct vk_push pc = vk_push_from(a);
    uint64_t c = (uint64_t)a->ip[1];
    enum seg_status st = vk_check_u32((uint64_t)seg_numel_of(a->src[0]), "BATCHNORM_BWD");
    if (st || c == 0 || (!a->dst[0] && !a->dst[1] && !a->dst[2]))
        return st;
    if ((st = vk_check_trips(vk_ctx_of(be), bn_trips(a), "BATCHNORM_BWD")))
        return st;
    pc.ip[4] = a->dst[0] != NULL;
    pc.ip[5] = a->dst[1] != NULL;
    pc.ip[6] = a->dst[2] != NULL;
    pc.ip[7] = a->src[4] != NULL;
    return vk_dispatch(be, SEG_VK_SHADER_BN_BWD, t, &pc, vk_groups(c, 1), 1, 1, "BATCHNORM_BWD");
}
