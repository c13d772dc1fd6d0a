/* vk_gemm.c: MATMUL and CONV2D_DIRECT through our GEMM shaders (shaders/gemm.comp with
 * shared-memory tiles, shaders/gemm_reg.comp for CPU-like devices), the kernel and tile
 * choice, and the K split of drivers that limit loop trips. */
#include <stdio.h>
#include <string.h>

#include "vulkan/vk_internal.h"

struct vk_gemm_tile vk_gemm_tile_reg(const struct vk_ctx *c, uint32_t mv, uint32_t tn)
{
    uint32_t s = c->reg_lanes;
    return (struct vk_gemm_tile){mv * s, tn * s, 1, mv, tn, 1};
}

void vk_gemm_tile_name(const struct vk_gemm_tile *t, char *out, size_t size)
{
    if (t->reg)
        snprintf(out, size, "register %ux%u vectors", t->tm, t->tn);
    else
        snprintf(out, size, "tile %ux%ux%u %ux%u", t->bm, t->bn, t->bk, t->tm, t->tn);
}

void vk_gemm_describe(struct seg_backend *be)
{
    const struct vk_ctx *c = vk_ctx_of(be);
    char k[64];
    vk_gemm_tile_name(&c->gemm, k, sizeof k);
    const char *coop = "";
    if (c->gemm_force && !strcmp(c->gemm_force, "coopmat"))
        coop = c->coopmat_state > 0    ? "gemm_coopmat.comp fp16 16x16x16 (self-test passed), convs "
               : c->coopmat_state == 0 ? "gemm_coopmat.comp fp16 16x16x16 (self-test at first use), convs "
                                       : "gemm_coopmat.comp off (failed its self-test), ";
    char split[48] = "";
    if (!c->gemm.reg && c->splitk_force > 1)
        snprintf(split, sizeof split, ", split-K %d (forced)", c->splitk_force);
    else if (!c->gemm.reg && c->splitk_force < 0 && c->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU)
        snprintf(split, sizeof split, ", split-K by shape");
    snprintf(be->gemm_kernel, sizeof be->gemm_kernel, "%s%s%s%s%s", coop, c->gemm.reg ? "gemm_reg.comp " : "gemm.comp ",
             k, c->gemm.reg ? (c->max_texels ? ", texel loads" : ", buffer loads") : "", split);
}

struct vk_gemm_tile vk_gemm_tile_default(const struct vk_ctx *c)
{
    /* On a CPU (llvmpipe: a subgroup is one SIMD register, shared memory is plain memory
     * and every barrier switches coroutines) the register GEMM with 1 A and 8 B vectors a
     * lane: on lavapipe it is 14x the shared-memory tiles over the bench's GEMM shapes, and
     * 1.4x / 1.1x the 1x4 / 2x4 tiles (geometric means, README). SEGDA_VK_GEMM=tiled or
     * register overrides the choice (and the tuning cache). */
    const char *force = c->gemm_force;
    bool reg = c->reg_lanes && (force ? !strcmp(force, "register") : c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU);
    if (reg)
        return vk_gemm_tile_reg(c, 1, 8);
    /* 64x64 blocks, BK = 16, 4x4 micro-tiles on 16x16 invocations (8x8 micro-tiles on 8x8
     * invocations where 256 invocations are not available) */
    struct vk_gemm_tile t = {64, 64, 16, 4, 4, 0};
    const VkPhysicalDeviceLimits *lim = &c->props.limits;
    if (lim->maxComputeWorkGroupInvocations < 256 || lim->maxComputeWorkGroupSize[0] < 16 ||
        lim->maxComputeWorkGroupSize[1] < 16) {
        t.tm = 8;
        t.tn = 8;
    }
    return t;
}

bool vk_gemm_tile_ok(const struct vk_ctx *c, const struct vk_gemm_tile *t)
{
    const VkPhysicalDeviceLimits *lim = &c->props.limits;
    if (t->reg > 1) /* 0: gemm.comp, 1: gemm_reg.comp (a tuning file may hold anything) */
        return false;
    if (t->reg) /* MV * S * TN accumulators a lane */
        return c->reg_lanes && t->tm >= 1 && t->tm <= 4 && t->tn >= 1 && t->tn <= 16 &&
               t->tm * t->tn * c->reg_lanes <= 128 && t->bm == t->tm * c->reg_lanes &&
               t->bn == t->tn * c->reg_lanes && t->bk == 1;
    if (!t->bm || !t->bn || !t->bk || !t->tm || !t->tn || t->bm % t->tm || t->bn % t->tn)
        return false;
    if (t->tm * t->tn > 128 || t->bk > 64)
        return false;
    uint32_t lx = t->bn / t->tn, ly = t->bm / t->tm;
    if (lx * ly > lim->maxComputeWorkGroupInvocations || lx > lim->maxComputeWorkGroupSize[0] ||
        ly > lim->maxComputeWorkGroupSize[1])
        return false;
    uint64_t shared = 2ull * 4 * t->bk * (t->bm + 1 + t->bn + 1); /* double-buffered tiles */
    return shared <= lim->maxComputeSharedMemorySize;
}

enum seg_status vk_gemm_tile_set(struct vk_ctx *c, const struct vk_gemm_tile *t)
{
    if (!vk_gemm_tile_ok(c, t))
        return seg_error(SEG_STATUS_INVALID, "vulkan: GEMM tile %ux%ux%u / %ux%u does not fit this device",
                         t->bm, t->bn, t->bk, t->tm, t->tn);
    enum seg_status st = vk_wait_all(c, "GEMM tile change");
    if (st)
        return st;
    static const enum seg_vk_shader users[] = {
        SEG_VK_SHADER_GEMM,        SEG_VK_SHADER_CONV2D_DIRECT, SEG_VK_SHADER_GEMM_REG4,
        SEG_VK_SHADER_GEMM_REG8,   SEG_VK_SHADER_GEMM_REG16,    SEG_VK_SHADER_CONV2D_REG4,
        SEG_VK_SHADER_CONV2D_REG8, SEG_VK_SHADER_CONV2D_REG16};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
        for (int v = 0; v < SEG_VK_VARIANTS; v++)
            if (c->pipelines[users[i]][v]) {
                vkDestroyPipeline(c->dev, c->pipelines[users[i]][v], NULL);
                c->pipelines[users[i]][v] = VK_NULL_HANDLE;
            }
    c->gemm = *t;
    return SEG_STATUS_OK;
}

/* The K range one dispatch may cover (a multiple of BK, at least BK; all of K where loops
 * are unlimited), or 0 when even BK would exceed the driver's loop budget. tiles = block
 * tiles one workgroup loops over. Trips per BK step: the two tile loads, the BK loop and
 * (assuming only the innermost loop unrolled) its TM loop. */
static uint64_t k_chunk(const struct vk_ctx *c, uint64_t tiles, uint64_t k)
{
    if (!c->loop_budget)
        return k ? k : 1;
    const struct vk_gemm_tile *t = &c->gemm;
    uint64_t per_step;
    if (t->reg) { /* per k: the k loop and, if not unrolled, the A, B and broadcast loops */
        per_step = 1 + t->tm + t->tn + (uint64_t)t->tm * c->reg_lanes * (1 + t->tn);
    } else {
        uint64_t threads = (uint64_t)(t->bn / t->tn) * (t->bm / t->tm);
        per_step = (t->bm * t->bk + threads - 1) / threads + (t->bn * t->bk + threads - 1) / threads +
                   (uint64_t)t->bk * (1 + t->tm) + 2;
    }
    uint64_t budget = c->loop_budget > 20000 ? c->loop_budget - 20000 : c->loop_budget / 2;
    uint64_t steps = budget / (tiles ? tiles : 1) / per_step;
    return steps * t->bk;
}

/* The workgroup grid of an M x N (x batch) GEMM in block tiles, and the block tiles one
 * workgroup loops over (more than one where the grid hits the dispatch limits). */
static uint64_t gemm_grid(const struct vk_gemm_tile *g, uint64_t m, uint64_t n, uint64_t batch, uint32_t *gx,
                          uint32_t *gy, uint32_t *gz)
{
    *gx = vk_groups(n, g->bn);
    *gy = vk_groups(m, g->bm);
    *gz = vk_groups(batch, 1);
    uint64_t tn = (n + g->bn - 1) / g->bn, tm = (m + g->bm - 1) / g->bm;
    return ((tn + *gx - 1) / *gx) * ((tm + *gy - 1) / *gy) * ((batch + *gz - 1) / *gz);
}

/* The shader of MATMUL (conv false) or CONV2D_DIRECT for the kernel in use. */
static enum seg_vk_shader gemm_shader(const struct vk_ctx *c, bool conv)
{
    if (!c->gemm.reg)
        return conv ? SEG_VK_SHADER_CONV2D_DIRECT : SEG_VK_SHADER_GEMM;
    switch (c->reg_lanes) {
    case 4: return conv ? SEG_VK_SHADER_CONV2D_REG4 : SEG_VK_SHADER_GEMM_REG4;
    case 8: return conv ? SEG_VK_SHADER_CONV2D_REG8 : SEG_VK_SHADER_GEMM_REG8;
    default: return conv ? SEG_VK_SHADER_CONV2D_REG16 : SEG_VK_SHADER_GEMM_REG16;
    }
}

/* The variant: -1 for gemm.comp; for gemm_reg.comp 1 where texel views reach both inputs
 * (texelFetch), else 0 (storage-buffer loads). */
static int gemm_fn(const struct vk_ctx *c, const struct seg_tensor *a, const struct seg_tensor *b)
{
    if (!c->gemm.reg)
        return -1;
    return vk_texel_ok(c, a) && vk_texel_ok(c, b) ? 1 : 0;
}

/* Split-K: the K slices of a MATMUL on gemm.comp whose block grid (groups workgroups) would
 * leave a GPU idle, e.g. the ASPP classifier's 19 rows against K = 18432. Each slice runs in
 * its own workgroups on a workspace and gemm_splitk.comp sums them, so skinny shapes fill
 * the device instead of queueing K. SEGDA_VK_SPLITK = N forces N slices (tests); 0 or 1 none.
 * Default: none on CPU devices and the register kernel; elsewhere enough slices for two
 * workgroups a compute unit (64 workgroups where the count is unknown), each at least
 * 4 BK deep, at most 16, within a 256 MiB workspace. */
static uint32_t splitk_slices(const struct seg_backend *be, const struct vk_ctx *c, uint64_t groups, uint64_t batch,
                              uint64_t m, uint64_t n, uint64_t k)
{
    const struct vk_gemm_tile *g = &c->gemm;
    uint64_t want;
    if (c->splitk_force >= 0) {
        want = (uint64_t)c->splitk_force;
    } else {
        if (g->reg || c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU)
            return 1;
        uint64_t target = be->info.compute_units ? 2ull * be->info.compute_units : 64;
        if (groups >= target || k < 8ull * g->bk)
            return 1;
        want = (target + groups - 1) / groups;
        if (want > k / (4ull * g->bk))
            want = k / (4ull * g->bk);
        if (want > 16)
            want = 16;
    }
    if (g->reg || want > k)
        want = g->reg ? 1 : k;
    uint64_t cap = (uint64_t)256 << 20;
    if (cap > c->max_range)
        cap = c->max_range;
    while (want > 1 && want * batch * m * n * 4 > cap)
        want--;
    return want > 1 ? (uint32_t)want : 1;
}

static enum seg_status matmul_splitk(struct seg_backend *be, const struct seg_op_args *a, uint64_t slices)
{
    struct vk_ctx *c = vk_ctx_of(be);
    const struct vk_gemm_tile *g = &c->gemm;
    uint64_t batch = (uint64_t)a->ip[0], m = (uint64_t)a->ip[1], n = (uint64_t)a->ip[2];
    uint64_t k = (uint64_t)a->ip[3];
    /* slices of whole BK steps; where loop trips are limited, no longer than one dispatch's */
    uint64_t slen = ((k + slices - 1) / slices + g->bk - 1) / g->bk * g->bk;
    uint32_t gx, gy, gz;
    uint64_t tiles = gemm_grid(g, m, n, batch * slices, &gx, &gy, &gz);
    uint64_t kchunk = k_chunk(c, tiles, k);
    if (kchunk == 0)
        return vk_check_trips(c, (uint64_t)c->loop_budget + tiles, "MATMUL");
    if (slen > kchunk) {
        slen = kchunk;
        slices = (k + slen - 1) / slen;
        tiles = gemm_grid(g, m, n, batch * slices, &gx, &gy, &gz);
        if (k_chunk(c, tiles, k) < slen)
            return seg_error(SEG_STATUS_UNSUPPORTED, "vulkan: MATMUL %llux%llux%llu: no split of K fits the "
                             "driver's loop limit", (unsigned long long)m, (unsigned long long)n,
                             (unsigned long long)k);
    }
    slices = (k + slen - 1) / slen;
    enum seg_status st;
    uint64_t ws = slices * batch * m * n;
    if ((st = vk_check_u32(ws, "MATMUL (split-K workspace)")))
        return st;
    struct vk_alloc *scr;
    if ((st = vk_scratch(c, (size_t)ws * 4, &scr)))
        return st;
    struct seg_tensor w = vk_scratch_tensor(scr, 0, (int64_t)ws, SEG_DTYPE_F32);
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {&w, a->src[0], a->src[1]};
    struct vk_push pc = vk_push_from(a);
    pc.ip[9] = 0;
    pc.ip[10] = (int32_t)k;
    pc.ip[11] = (int32_t)slices;
    pc.ip[12] = (int32_t)slen;
    pc.fp[0] = 1.0f;
    pc.fp[1] = 0.0f;
    if ((st = vk_dispatch_fn(be, SEG_VK_SHADER_GEMM, -1, t, &pc, gx, gy, gz, "MATMUL (split-K)")))
        return st;
    const struct seg_tensor *r[SEG_VK_BINDINGS] = {a->dst[0], &w};
    struct vk_push rp = {0};
    rp.ip[0] = (int32_t)batch;
    rp.ip[1] = (int32_t)(m * n);
    rp.ip[2] = (int32_t)slices;
    rp.ip[3] = a->ip[8];
    rp.fp[0] = a->fp[0];
    rp.fp[1] = a->fp[1];
    return vk_dispatch_n(be, SEG_VK_SHADER_GEMM_SPLITK, r, &rp, batch * m * n, "MATMUL (split-K sum)");
}

enum seg_status vk_matmul_simt(struct seg_backend *be, const struct seg_op_args *a)
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
    const struct vk_gemm_tile *g = &c->gemm;
    struct vk_push pc = vk_push_from(a);
    uint32_t gx, gy, gz;
    uint64_t tiles = gemm_grid(g, m, n, batch, &gx, &gy, &gz);
    int fn = gemm_fn(c, a->src[0], a->src[1]);
    uint64_t groups = (uint64_t)gx * gy * gz;
    uint32_t slices = k > 0 ? splitk_slices(be, c, groups, batch, m, n, k) : 1;
    if (slices > 1)
        return matmul_splitk(be, a, slices);
    /* Where loop trips are limited, split K over dispatches that accumulate (beta = 1). */
    uint64_t kchunk = k_chunk(c, tiles, k);
    if (kchunk == 0)
        return vk_check_trips(c, (uint64_t)c->loop_budget + tiles, "MATMUL");
    if (k == 0) { /* C = beta * C */
        pc.ip[9] = 0;
        pc.ip[10] = 0;
        return vk_dispatch_fn(be, gemm_shader(c, false), fn, t, &pc, gx, gy, gz, "MATMUL");
    }
    for (uint64_t k0 = 0; k0 < k; k0 += kchunk) {
        pc.ip[9] = (int32_t)k0;
        pc.ip[10] = (int32_t)(k0 + kchunk < k ? k0 + kchunk : k);
        if (k0 > 0)
            pc.fp[1] = 1.0f;
        if ((st = vk_dispatch_fn(be, gemm_shader(c, false), fn, t, &pc, gx, gy, gz, "MATMUL")))
            return st;
    }
    return SEG_STATUS_OK;
}

VK_KERNEL(vk_matmul)
{
    uint64_t batch = (uint64_t)a->ip[0], m = (uint64_t)a->ip[1], n = (uint64_t)a->ip[2];
    uint64_t k = (uint64_t)a->ip[3];
    bool done = false;
    enum seg_status st;
    if ((st = vk_check_u32(batch * m * n, "MATMUL")) || (st = vk_check_u32(batch * m * k, "MATMUL")) ||
        (st = vk_check_u32(batch * k * n, "MATMUL")))
        return st;
    if (batch > 0 && m > 0 && n > 0 && (st = vk_coopmat_matmul(be, a, &done)))
        return st;
    return done ? SEG_STATUS_OK : vk_matmul_simt(be, a);
}

VK_KERNEL(vk_conv2d_direct)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[1], a->src[0], a->src[2]};
    const int32_t *ip = a->ip;
    uint64_t batch = (uint64_t)ip[0], co = (uint64_t)ip[14];
    uint64_t p = (uint64_t)ip[12] * (uint64_t)ip[13], k = (uint64_t)ip[1] * ip[4] * ip[5];
    enum seg_status st;
    if ((st = vk_check_u32(batch * co * p, "CONV2D_DIRECT")) ||
        (st = vk_check_u32(seg_numel_of(a->src[0]), "CONV2D_DIRECT")) ||
        (st = vk_check_u32(co * k, "CONV2D_DIRECT")))
        return st;
    if (batch == 0 || co == 0 || p == 0)
        return SEG_STATUS_OK;
    struct vk_ctx *c = vk_ctx_of(be);
    const struct vk_gemm_tile *g = &c->gemm;
    struct vk_push pc = vk_push_from(a);
    uint32_t gx, gy, gz;
    uint64_t tiles = gemm_grid(g, co, p, batch, &gx, &gy, &gz);
    int fn = gemm_fn(c, a->src[1], a->src[0]);
    uint64_t kchunk = k_chunk(c, tiles, k);
    if (kchunk == 0)
        return vk_check_trips(c, (uint64_t)c->loop_budget + tiles, "CONV2D_DIRECT");
    pc.fp[1] = a->src[2] ? 1.0f : 0.0f;
    for (uint64_t k0 = 0; k0 < k; k0 += kchunk) { /* k >= 1: C, KH, KW >= 1 */
        uint32_t kend = (uint32_t)(k0 + kchunk < k ? k0 + kchunk : k);
        pc.ip[15] = (int32_t)k0;
        memcpy(&pc.fp[0], &kend, sizeof kend);
        if ((st = vk_dispatch_fn(be, gemm_shader(c, true), fn, t, &pc, gx, gy, gz, "CONV2D_DIRECT")))
            return st;
    }
    return SEG_STATUS_OK;
}
