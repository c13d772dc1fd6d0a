/* vk_gemm.c: MATMUL through our tiled GEMM shader (shaders/gemm.comp). */
#include "vulkan/vk_internal.h"

#define VK_GEMM_BM 64 /* must match the block sizes of vk_pipeline.c's spec_for() */
#define VK_GEMM_BN 64
#define VK_GEMM_BK 16

VK_KERNEL(vk_matmul)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1]};
    uint64_t batch = (uint64_t)a->ip[0], m = (uint64_t)a->ip[1], n = (uint64_t)a->ip[2];
    uint64_t k = (uint64_t)a->ip[3];
    enum seg_status st;
    if ((st = vk_check_u32(batch * m * n, "MATMUL")) || (st = vk_check_u32(batch * m * k, "MATMUL")) ||
        (st = vk_check_u32(batch * k * n, "MATMUL")))
        return st;
    if (batch == 0 || m == 0 || n == 0)
        return SEG_STATUS_OK;
    struct vk_ctx *c = vk_ctx_of(be);
    struct vk_push pc = vk_push_from(a);
    uint32_t gx = vk_groups(n, VK_GEMM_BN), gy = vk_groups(m, VK_GEMM_BM), gz = vk_groups(batch, 1);
    /* Where loop trips are limited, split K over dispatches that accumulate (beta = 1). */
    uint64_t tn = (n + VK_GEMM_BN - 1) / VK_GEMM_BN, tm = (m + VK_GEMM_BM - 1) / VK_GEMM_BM;
    uint64_t tiles = ((tn + gx - 1) / gx) * ((tm + gy - 1) / gy) * ((batch + gz - 1) / gz);
    uint64_t kchunk = k ? k : 1;
    if (c->loop_budget) {
        kchunk = 8192 / tiles / VK_GEMM_BK * VK_GEMM_BK;
        if (kchunk < VK_GEMM_BK)
            return vk_check_trips(c, (uint64_t)c->loop_budget + tiles, "MATMUL");
    }
    if (k == 0) { /* C = beta * C */
        pc.ip[9] = 0;
        pc.ip[10] = 0;
        return vk_dispatch(be, SEG_VK_SHADER_GEMM, t, &pc, gx, gy, gz, "MATMUL");
    }
    for (uint64_t k0 = 0; k0 < k; k0 += kchunk) {
        pc.ip[9] = (int32_t)k0;
        pc.ip[10] = (int32_t)(k0 + kchunk < k ? k0 + kchunk : k);
        if (k0 > 0)
            pc.fp[1] = 1.0f;
        if ((st = vk_dispatch(be, SEG_VK_SHADER_GEMM, t, &pc, gx, gy, gz, "MATMUL")))
            return st;
    }
    return SEG_STATUS_OK;
}
