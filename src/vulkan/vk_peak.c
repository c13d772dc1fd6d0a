/* vk_peak.c: PEAK_FMA (shaders/peak.comp). */
#include "vulkan/vk_internal.h"

VK_KERNEL(vk_peak_fma)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    struct vk_push pc = vk_push_from(a);
    uint64_t n = (uint64_t)a->ip[1];
    enum seg_status st = vk_check_trips(vk_ctx_of(be), vk_grid_trips(n) * ((uint64_t)a->ip[0] + 1),
                                        "PEAK_FMA");
    if (st)
        return st;
    return vk_dispatch_n(be, SEG_VK_SHADER_PEAK_FMA, t, &pc, n, "PEAK_FMA");
}
