/* vk_sort_scan.c: SORT (bitonic, keyed by (value, index)) and CUMSUM (workgroup scan). */
#include "vulkan/vk_internal.h"

/* keys per workgroup chunk of sort_local: 2 * its workgroup size */
static uint32_t sort_chunk(const struct vk_ctx *c)
{
    uint32_t wg = SEG_VK_WG, maxwg = c->props.limits.maxComputeWorkGroupInvocations;
    if (c->props.limits.maxComputeWorkGroupSize[0] < maxwg)
        maxwg = c->props.limits.maxComputeWorkGroupSize[0];
    while (wg > maxwg)
        wg /= 2;
    while ((size_t)wg * 16 > c->props.limits.maxComputeSharedMemorySize && wg > 32)
        wg /= 2;
    return 2 * wg; /* must match vk_pipeline.c's spec_for() */
}

VK_KERNEL(vk_sort)
{
    struct vk_ctx *c = vk_ctx_of(be);
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->dst[1], a->src[0]};
    uint64_t rows = (uint64_t)a->ip[0], n = (uint64_t)a->ip[1];
    if (rows == 0 || n == 0)
        return SEG_STATUS_OK;
    uint64_t P = 2;
    while (P < n)
        P *= 2;
    enum seg_status st = vk_check_u32(rows * P, "SORT");
    if (st)
        return st;
    uint64_t CL = P < sort_chunk(c) ? P : sort_chunk(c);
    struct vk_push pc = vk_push_from(a);
    pc.ip[3] = (int32_t)P;
    pc.ip[4] = 0;
    pc.ip[5] = 0;
    pc.ip[6] = 0; /* mode 0: sort each chunk from src */
    uint32_t chunk_groups = vk_groups(rows * (P / CL), 1);
    if ((st = vk_dispatch(be, SEG_VK_SHADER_SORT_LOCAL, t, &pc, chunk_groups, 1, 1, "SORT")))
        return st;
    for (uint64_t k = 2 * CL; k <= P; k *= 2) {
        for (uint64_t d = k / 2; d >= CL; d /= 2) {
            pc.ip[4] = (int32_t)k;
            pc.ip[5] = (int32_t)d;
            pc.ip[6] = d == k / 2; /* the first step of a stage compares mirrored pairs */
            if ((st = vk_dispatch_n(be, SEG_VK_SHADER_SORT_GLOBAL, t, &pc, rows * (P / 2), "SORT")))
                return st;
        }
        pc.ip[4] = (int32_t)k;
        pc.ip[6] = 1; /* mode 1: the steps d < CL of stage k, in shared memory */
        if ((st = vk_dispatch(be, SEG_VK_SHADER_SORT_LOCAL, t, &pc, chunk_groups, 1, 1, "SORT")))
            return st;
    }
    return SEG_STATUS_OK;
}

/* CUMSUM: short rows in bulk run one thread per column; otherwise one workgroup per row,
 * and rows longer than VK_SCAN_SPLIT_N in three passes over chunks (chunk totals, their
 * scan, the chunks' scans from their offsets), parallel across chunks. */
#define VK_SCAN_SPLIT_N 32768u
#define VK_SCAN_CHUNK   8192u

VK_KERNEL(vk_cumsum)
{
    struct vk_ctx *c = vk_ctx_of(be);
    uint64_t outer = (uint64_t)a->ip[1], n = (uint64_t)a->ip[2], inner = (uint64_t)a->ip[3];
    uint64_t rows = outer * inner;
    enum seg_status st = vk_check_u32(rows * (n ? n : 1) + SEG_VK_WG, "CUMSUM");
    if (st)
        return st;
    if (rows == 0 || n == 0)
        return SEG_STATUS_OK;
    struct vk_push pc = vk_push_from(a);
    pc.ip[4] = 1;
    pc.ip[5] = 0;
    pc.ip[6] = 0;
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    if (n <= 8192 && ((inner > 1 && rows >= 1024) || (n <= 64 && rows >= 4096))) {
        if ((st = vk_check_trips(c, vk_grid_trips(rows) * n, "CUMSUM")))
            return st;
        return vk_dispatch_n(be, SEG_VK_SHADER_CUMSUM_COL, t, &pc, rows, "CUMSUM");
    }
    /* per chunk of WG: one iteration, log2(WG) scan steps */
    uint64_t row_groups = (rows + SEG_VK_MAX_GROUPS - 1) / SEG_VK_MAX_GROUPS;
    if (n <= VK_SCAN_SPLIT_N || rows > 65536) {
        if ((st = vk_check_trips(c, row_groups * ((n + SEG_VK_WG - 1) / SEG_VK_WG) * 10, "CUMSUM")))
            return st;
        return vk_dispatch(be, SEG_VK_SHADER_CUMSUM_ROW, t, &pc, vk_groups(rows, 1), 1, 1, "CUMSUM");
    }
    uint64_t G = (n + VK_SCAN_CHUNK - 1) / VK_SCAN_CHUNK, CH = VK_SCAN_CHUNK;
    uint64_t groups_tot = (rows * G + SEG_VK_MAX_GROUPS - 1) / SEG_VK_MAX_GROUPS;
    if ((st = vk_check_trips(c, groups_tot * (CH / SEG_VK_WG) * 10, "CUMSUM")) ||
        (st = vk_check_trips(c, row_groups * ((G + SEG_VK_WG - 1) / SEG_VK_WG) * 10, "CUMSUM")))
        return st;
    struct vk_alloc *s;
    if ((st = vk_scratch(c, (size_t)(rows * G) * 4, &s)))
        return st;
    struct seg_tensor part = vk_scratch_tensor(s, 0, (int64_t)(rows * G), SEG_DTYPE_F32);
    /* 1: chunk totals */
    struct vk_push p1 = pc;
    p1.ip[4] = (int32_t)G;
    p1.ip[5] = (int32_t)CH;
    p1.ip[6] = 1;
    const struct seg_tensor *t1[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], &part};
    if ((st = vk_dispatch(be, SEG_VK_SHADER_CUMSUM_ROW, t1, &p1, vk_groups(rows * G, 1), 1, 1, "CUMSUM")))
        return st;
    /* 2: inclusive scan of the totals, in place, in scan order */
    struct vk_push p2 = pc;
    p2.ip[0] = 0;
    p2.ip[1] = (int32_t)rows;
    p2.ip[2] = (int32_t)G;
    p2.ip[3] = 1;
    const struct seg_tensor *t2[SEG_VK_BINDINGS] = {&part, &part};
    if ((st = vk_dispatch(be, SEG_VK_SHADER_CUMSUM_ROW, t2, &p2, vk_groups(rows, 1), 1, 1, "CUMSUM")))
        return st;
    /* 3: every chunk from its offset */
    struct vk_push p3 = p1;
    p3.ip[6] = 0;
    return vk_dispatch(be, SEG_VK_SHADER_CUMSUM_ROW, t1, &p3, vk_groups(rows * G, 1), 1, 1, "CUMSUM");
}
