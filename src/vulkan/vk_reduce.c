/* vk_reduce.c: reductions along an axis of [outer, n, inner] (REDUCE, ARGREDUCE, SOFTMAX,
 * SOFTMAX_BWD). Shader variants:
 *   _col: one thread per (outer, inner) column, sequential along n, coalesced across
 *         threads when inner > 1 (many short rows, e.g. softmax over channels);
 *   _row: one workgroup per output row (shared-memory tree); REDUCE and ARGREDUCE split
 *         long rows into chunks reduced by separate workgroups into scratch partials, then
 *         reduce the partials (two passes): parallel on GPUs, and within llvmpipe's loop
 *         limit. */
#include "vulkan/vk_internal.h"

#define VK_COL_MAX_N     8192u   /* longest row a single thread walks */
#define VK_SPLIT_MIN_N   65536u  /* rows at least this long are reduced in two passes... */
#define VK_SPLIT_MAX_ROWS 4096u  /* ...when there are few of them */
#define VK_SPLIT_CHUNK   16384u  /* target chunk length of the first pass */
#define VK_SPLIT_MAX_G   1024u   /* at most this many partials per row */

static bool use_columns(uint64_t rows, uint64_t n, uint64_t inner)
{
    if (n > VK_COL_MAX_N)
        return false;
    return (inner > 1 && rows >= 1024) || (n <= 64 && rows >= 4096);
}

/* Loop iterations of one invocation of a _row shader doing `passes` sweeps of n. */
static uint64_t row_trips(uint64_t rows, uint64_t n, uint64_t passes)
{
    uint64_t per_row = passes * ((n + SEG_VK_WG - 1) / SEG_VK_WG + 10);
    return per_row * ((rows + SEG_VK_MAX_GROUPS - 1) / SEG_VK_MAX_GROUPS);
}

static enum seg_status reduce_axis(struct seg_backend *be, const struct seg_op_args *a, bool arg,
                                   const char *name)
{
    struct vk_ctx *c = vk_ctx_of(be);
    uint64_t outer = (uint64_t)a->ip[1], n = (uint64_t)a->ip[2], inner = (uint64_t)a->ip[3];
    uint64_t rows = outer * inner;
    enum seg_status st;
    if ((st = vk_check_u32(rows * (n ? n : 1), name)))
        return st;
    if (rows == 0)
        return SEG_STATUS_OK;
    enum seg_vk_shader row_sh = arg ? SEG_VK_SHADER_ARGREDUCE_ROW : SEG_VK_SHADER_REDUCE_ROW;
    enum seg_vk_shader col_sh = arg ? SEG_VK_SHADER_ARGREDUCE_COL : SEG_VK_SHADER_REDUCE_COL;
    struct vk_push pc = vk_push_from(a);
    pc.ip[4] = 1;
    pc.ip[5] = 0;
    pc.ip[6] = 0;
    pc.ip[7] = (int32_t)n;

    if (use_columns(rows, n, inner)) {
        const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
        if ((st = vk_check_trips(c, vk_grid_trips(rows) * n, name)))
            return st;
        return vk_dispatch_n(be, col_sh, t, &pc, rows, name);
    }
    if (n < VK_SPLIT_MIN_N || rows > VK_SPLIT_MAX_ROWS) {
        const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
        if ((st = vk_check_trips(c, row_trips(rows, n, 1), name)))
            return st;
        return vk_dispatch(be, row_sh, t, &pc, vk_groups(rows, 1), 1, 1, name);
    }

    /* two passes: partials [rows, G] in scratch, then the partials' reduction */
    uint64_t G = (n + VK_SPLIT_CHUNK - 1) / VK_SPLIT_CHUNK;
    if (G > VK_SPLIT_MAX_G)
        G = VK_SPLIT_MAX_G;
    uint64_t CH = (n + G - 1) / G;
    G = (n + CH - 1) / CH;
    if ((st = vk_check_trips(c, row_trips(rows * G, CH, 1), name)))
        return st;
    size_t part = (size_t)(rows * G) * 4, part_al = (part + 255) / 256 * 256;
    struct vk_alloc *s;
    if ((st = vk_scratch(c, arg ? 2 * part_al : part, &s)))
        return st;
    struct seg_tensor vals = vk_scratch_tensor(s, 0, (int64_t)(rows * G), SEG_DTYPE_F32);
    struct seg_tensor idx = vk_scratch_tensor(s, part_al, (int64_t)(rows * G), SEG_DTYPE_I32);

    struct vk_push p1 = pc;
    if (!arg && a->ip[0] == SEG_REDUCE_MEAN)
        p1.ip[0] = SEG_REDUCE_SUM;
    p1.ip[4] = (int32_t)G;
    p1.ip[5] = (int32_t)CH;
    p1.ip[6] = arg ? 2 : 0;
    const struct seg_tensor *t1[SEG_VK_BINDINGS] = {arg ? &idx : &vals, a->src[0], NULL,
                                                    arg ? &vals : NULL};
    if ((st = vk_dispatch(be, row_sh, t1, &p1, vk_groups(rows * G, 1), 1, 1, name)))
        return st;

    struct vk_push p2 = pc;
    p2.ip[1] = (int32_t)rows;
    p2.ip[2] = (int32_t)G;
    p2.ip[3] = 1;
    p2.ip[6] = arg ? 1 : 0;
    const struct seg_tensor *t2[SEG_VK_BINDINGS] = {a->dst[0], &vals, arg ? &idx : NULL};
    return vk_dispatch(be, row_sh, t2, &p2, vk_groups(rows, 1), 1, 1, name);
}

VK_KERNEL(vk_reduce) { return reduce_axis(be, a, false, "REDUCE"); }

VK_KERNEL(vk_argreduce) { return reduce_axis(be, a, true, "ARGREDUCE"); }

static enum seg_status softmax_axis(struct seg_backend *be, const struct seg_op_args *a, bool bwd,
                                    const struct seg_tensor *const t[SEG_VK_BINDINGS], const char *name)
{
    struct vk_ctx *c = vk_ctx_of(be);
    uint64_t outer = (uint64_t)a->ip[1], n = (uint64_t)a->ip[2], inner = (uint64_t)a->ip[3];
    uint64_t rows = outer * inner, passes = bwd ? 2 : 3;
    enum seg_status st;
    if ((st = vk_check_u32(rows * (n ? n : 1), name)))
        return st;
    if (rows == 0)
        return SEG_STATUS_OK;
    struct vk_push pc = vk_push_from(a);
    if (use_columns(rows, n, inner)) {
        if ((st = vk_check_trips(c, vk_grid_trips(rows) * passes * n, name)))
            return st;
        return vk_dispatch_n(be, bwd ? SEG_VK_SHADER_SOFTMAX_BWD_COL : SEG_VK_SHADER_SOFTMAX_COL, t,
                             &pc, rows, name);
    }
    if ((st = vk_check_trips(c, row_trips(rows, n, passes), name)))
        return st;
    return vk_dispatch(be, bwd ? SEG_VK_SHADER_SOFTMAX_BWD_ROW : SEG_VK_SHADER_SOFTMAX_ROW, t, &pc,
                       vk_groups(rows, 1), 1, 1, name);
}

VK_KERNEL(vk_softmax)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0]};
    return softmax_axis(be, a, false, t, "SOFTMAX");
}

VK_KERNEL(vk_softmax_bwd)
{
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1]};
    return softmax_axis(be, a, true, t, "SOFTMAX_BWD");
}
