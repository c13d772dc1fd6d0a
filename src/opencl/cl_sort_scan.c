/* cl_sort_scan.c: SORT (bitonic) and CUMSUM (kernels in cl/sort_scan.cl). */
#include "opencl/cl_internal.h"

#define PROG "sort_scan"

/* ip: rows, n, descending. */
SEG_CL_KERNEL(seg_cl_sort)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const int32_t *ip = a->ip;
    const int rows = ip[0], n = ip[1], desc = ip[2] != 0;
    if (rows <= 0 || n <= 0) return SEG_STATUS_OK;
    const struct seg_tensor *dv = a->dst[0], *di = a->dst[1], *s = a->src[0];
    const size_t L = (size_t)c->tuning.sort_local;
    size_t P = seg_cl_pow2_ceil((size_t)n);
    if (P < 2) P = 2;
    if ((int64_t)P * rows > INT32_MAX)
        return seg_error(SEG_STATUS_UNSUPPORTED, "opencl: SORT of %d rows of %d is too large",
                         rows, n);
    size_t wg = (size_t)c->tuning.wg;

    if (P <= L) {
        size_t lsz = seg_cl_wg_limit(be, PROG, "sort_local_f32", P / 2 < wg ? P / 2 : wg);
        size_t gws[2] = {lsz, (size_t)rows}, lws[2] = {lsz, 1};
        return SEG_CL_RUN(be, "SORT", PROG, "sort_local_f32", 2, gws, lws, SEG_CL_T(dv),
                          SEG_CL_T(di), SEG_CL_T(s), SEG_CL_INT(n), SEG_CL_INT(P),
                          SEG_CL_INT(desc));
    }

    /* Scratch: keys [rows, P] then indices [rows, P]. */
    cl_mem scr;
    size_t total = P * (size_t)rows;
    SEG_CL_TRY(seg_cl_scratch(be, total * 8, "SORT", &scr));
    const cl_int koff = 0, xoff = (cl_int)total;
    /* sort_chunks and sort_merge share the local size (the same local arrays). */
    size_t lsz = L / 2 < wg ? L / 2 : wg;
    lsz = seg_cl_wg_limit(be, PROG, "sort_chunks_f32", lsz);
    lsz = seg_cl_wg_limit(be, PROG, "sort_merge_f32", lsz);
    size_t chunks = P / L;
    size_t cgws[2] = {chunks * lsz, (size_t)rows}, clws[2] = {lsz, 1};
    SEG_CL_TRY(SEG_CL_RUN(be, "SORT", PROG, "sort_chunks_f32", 2, cgws, clws, SEG_CL_MEM(scr),
                          SEG_CL_INT(koff), SEG_CL_MEM(scr), SEG_CL_INT(xoff), SEG_CL_T(s),
                          SEG_CL_INT(n), SEG_CL_INT(P), SEG_CL_INT(desc)));
    size_t sgws[2] = {P / 2, (size_t)rows};
    size_t slws[2] = {seg_cl_wg_limit(be, PROG, "sort_step_f32", wg), 1};
    for (size_t k = 2 * L; k <= P; k <<= 1) {
        for (size_t j = k / 2; j >= L; j >>= 1)
            SEG_CL_TRY(SEG_CL_RUN(be, "SORT", PROG, "sort_step_f32", 2, sgws, slws,
                                  SEG_CL_MEM(scr), SEG_CL_INT(koff), SEG_CL_MEM(scr),
                                  SEG_CL_INT(xoff), SEG_CL_INT(n), SEG_CL_INT(P), SEG_CL_INT(k),
                                  SEG_CL_INT(j), SEG_CL_INT(desc)));
        SEG_CL_TRY(SEG_CL_RUN(be, "SORT", PROG, "sort_merge_f32", 2, cgws, clws, SEG_CL_MEM(scr),
                              SEG_CL_INT(koff), SEG_CL_MEM(scr), SEG_CL_INT(xoff), SEG_CL_INT(n),
                              SEG_CL_INT(P), SEG_CL_INT(k), SEG_CL_INT(desc)));
    }
    size_t ogws[2] = {(size_t)n, (size_t)rows};
    size_t olws[2] = {seg_cl_wg_limit(be, PROG, "sort_output_f32", wg), 1};
    return SEG_CL_RUN(be, "SORT", PROG, "sort_output_f32", 2, ogws, olws, SEG_CL_T(dv),
                      SEG_CL_T(di), SEG_CL_MEM(scr), SEG_CL_INT(koff), SEG_CL_MEM(scr),
                      SEG_CL_INT(xoff), SEG_CL_INT(n), SEG_CL_INT(P));
}

/* ip: reverse, outer, n, inner. */
SEG_CL_KERNEL(seg_cl_cumsum)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    const int32_t *ip = a->ip;
    const int outer = ip[1], n = ip[2], inner = ip[3];
    if (outer <= 0 || n <= 0 || inner <= 0) return SEG_STATUS_OK;
    if (inner >= c->tuning.cumsum_cols_min_inner || n == 1) {
        size_t wg = (size_t)c->tuning.wg;
        size_t lx = seg_cl_pow2_ceil((size_t)inner);
        if (lx > wg) lx = wg;
        lx = seg_cl_wg_limit(be, PROG, "cumsum_cols_f32", lx);
        size_t gws[2] = {(size_t)inner, (size_t)outer}, lws[2] = {lx, 1};
        return SEG_CL_RUN(be, "CUMSUM", PROG, "cumsum_cols_f32", 2, gws, lws, SEG_CL_T(a->dst[0]),
                          SEG_CL_T(a->src[0]), SEG_CL_INT(ip[0] != 0), SEG_CL_INT(n),
                          SEG_CL_INT(inner));
    }
    size_t lsz = seg_cl_pow2_ceil((size_t)n);
    if (lsz > (size_t)c->tuning.scan_wg) lsz = (size_t)c->tuning.scan_wg;
    lsz = seg_cl_wg_limit(be, PROG, "cumsum_rows_f32", lsz);
    size_t gws[1] = {(size_t)outer * (size_t)inner * lsz}, lws[1] = {lsz};
    return SEG_CL_RUN(be, "CUMSUM", PROG, "cumsum_rows_f32", 1, gws, lws, SEG_CL_T(a->dst[0]),
                      SEG_CL_T(a->src[0]), SEG_CL_INT(ip[0] != 0), SEG_CL_INT(n),
                      SEG_CL_INT(inner));
}
