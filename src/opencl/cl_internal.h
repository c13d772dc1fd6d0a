/* cl_internal.h: state and helpers shared by the OpenCL backend's files (src/opencl/). */
#ifndef SEGDA_CL_INTERNAL_H
#define SEGDA_CL_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "backend/backend.h"

/* Work-group and tile sizes: chosen once per device in seg_cl_tuning_init() and passed to
 * every program as -D options (cl/common.h refuses to compile without them). */
struct seg_cl_tuning {
    int wg;         /* SEG_WG: 1-D elementwise kernels */
    int red_wg;     /* SEG_RED_WG: reductions (power of two); local arrays are this long */
    int scan_wg;    /* SEG_SCAN_WG: cumsum chunk (power of two) */
    int sort_local; /* SEG_SORT_LOCAL: bitonic elements sorted in local memory (power of two) */
    /* Host-only choices: */
    int cumsum_cols_min_inner;  /* inner >= this: CUMSUM scans one column per work-item */
    int reduce_split_groups;    /* REDUCE with fewer work-groups than this splits long rows */
    int reduce_split_min_items; /* ... into chunks of at least this many elements per item */
};

struct seg_cl_kernel_entry {
    char      prog[32];
    char      name[64];
    cl_kernel kernel;
    size_t    max_wg; /* CL_KERNEL_WORK_GROUP_SIZE */
};

struct seg_cl_program_entry {
    char      name[32];
    char     *options;
    cl_program program;
};

struct seg_cl_ctx {
    cl_platform_id   platform;
    cl_device_id     device;
    cl_context       context;
    cl_command_queue queue;

    char   device_name[128];
    char   driver_version[128];
    char   platform_version[128];
    size_t max_wg;        /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    size_t max_alloc;     /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    cl_ulong local_mem;   /* CL_DEVICE_LOCAL_MEM_SIZE */
    int    peak_vw;       /* PEAK_FMA vector width: 1, 4, 8 or 16 (native float width) */
    bool   profiling;     /* the queue was created with CL_QUEUE_PROFILING_ENABLE */
    cl_event tstart;      /* the open device-timer mark (cl_timer.c) */

    /* GEMM parameters loaded from the tuning cache or found by `segda tune` (cl_tune.c) */
    bool   gemm_tuned;

    struct seg_cl_tuning tuning;
    char build_options[256];

    /* Built programs and created kernels, looked up by name. */
    struct seg_cl_program_entry *programs;
    int nprograms, cap_programs;
    struct seg_cl_kernel_entry *kernels;
    int nkernels, cap_kernels;

    /* On-disk binary cache ("" when off). */
    char cache_dir[1024];

    /* Scratch buffer reused by ops that need temporaries (the queue is in order). */
    cl_mem scratch;
    size_t scratch_size;
    /* A 4-byte buffer bound where an optional tensor is NULL. */
    cl_mem dummy;
};

static inline struct seg_cl_ctx *seg_cl_ctx_of(struct seg_backend *be)
{
    return (struct seg_cl_ctx *)be->ctx;
}

/* ---- errors ------------------------------------------------------------------------ */

const char *seg_cl_error_name(cl_int err);
/* Records "<api> failed: <NAME> (<code>) in <where>" and returns SEG_STATUS_BACKEND
 * (SEG_STATUS_OUT_OF_MEMORY for allocation failures). */
enum seg_status seg_cl_fail(cl_int err, const char *api, const char *where);

/* SEG_CL_CALL(clFinish, "sync", queue): calls the API and returns on error. */
#define SEG_CL_CALL(fn, where, ...)                                                          \
    do {                                                                                     \
        cl_int seg_cl_e_ = fn(__VA_ARGS__);                                                  \
        if (seg_cl_e_ != CL_SUCCESS) return seg_cl_fail(seg_cl_e_, #fn, (where));            \
    } while (0)
/* SEG_CL_CHECK(err, "clCreateBuffer", "buf_alloc") for calls that return their error through a pointer. */
#define SEG_CL_CHECK(err, api, where)                                                        \
    do {                                                                                     \
        cl_int seg_cl_e_ = (err);                                                            \
        if (seg_cl_e_ != CL_SUCCESS) return seg_cl_fail(seg_cl_e_, (api), (where));          \
    } while (0)
#define SEG_CL_TRY(expr)                                                                     \
    do {                                                                                     \
        enum seg_status seg_cl_s_ = (expr);                                                  \
        if (seg_cl_s_ != SEG_STATUS_OK) return seg_cl_s_;                                    \
    } while (0)

/* ---- programs, kernels, launches (cl_program_cache.c) -------------------------------- */

void seg_cl_tuning_init(struct seg_cl_ctx *c);
void seg_cl_cache_init(struct seg_cl_ctx *c);
void seg_cl_programs_release(struct seg_cl_ctx *c);
/* The kernel `name` of program `prog` (cl/<prog>.cl), built on first use. */
enum seg_status seg_cl_kernel_get(struct seg_cl_ctx *c, const char *prog, const char *name,
                                  struct seg_cl_kernel_entry **out);

struct seg_cl_arg {
    size_t      size;
    const void *ptr; /* NULL: a __local buffer of `size` bytes */
};

#define SEG_CL_MEMT(t)  ((struct seg_cl_arg){sizeof(cl_mem), (const void *)&(t)->buf.handle})
#define SEG_CL_MEM(m)   ((struct seg_cl_arg){sizeof(cl_mem), (const void *)&(cl_mem){(m)}})
#define SEG_CL_INT(v)   ((struct seg_cl_arg){sizeof(cl_int), (const void *)&(cl_int){(cl_int)(v)}})
#define SEG_CL_UINT(v)  ((struct seg_cl_arg){sizeof(cl_uint), (const void *)&(cl_uint){(cl_uint)(v)}})
#define SEG_CL_FLOAT(v) ((struct seg_cl_arg){sizeof(cl_float), (const void *)&(cl_float){(cl_float)(v)}})
#define SEG_CL_LOCAL(n) ((struct seg_cl_arg){(size_t)(n), NULL})
/* A tensor as two arguments: its buffer and its element offset. */
#define SEG_CL_T(t)     SEG_CL_MEMT(t), SEG_CL_INT(seg_cl_elem_offset(t))
/* An optional tensor: (buffer or the dummy, element offset, present flag). */
#define SEG_CL_OPT(c, t)                                                                     \
    SEG_CL_MEM((t) ? (cl_mem)(t)->buf.handle : (c)->dummy),                                  \
        SEG_CL_INT((t) ? seg_cl_elem_offset(t) : 0), SEG_CL_INT((t) != NULL)

static inline cl_int seg_cl_elem_offset(const struct seg_tensor *t)
{
    return (cl_int)(t->offset / seg_dtype_size(t->dtype));
}

/* Enqueues kernel prog/name over `dims` dimensions. gws[] is the number of work-items
 * needed per dimension; it is rounded up to a multiple of lws[] (lws NULL: {wg, 1, 1}).
 * Nothing is launched when a gws[] is 0. `op` names the op in error messages. */
enum seg_status seg_cl_run(struct seg_backend *be, const char *op, const char *prog,
                           const char *name, cl_uint dims, const size_t *gws,
                           const size_t *lws, int nargs, const struct seg_cl_arg *args);

#define SEG_CL_NARGS(...) ((int)(sizeof((struct seg_cl_arg[]){__VA_ARGS__}) / sizeof(struct seg_cl_arg)))
#define SEG_CL_RUN(be, op, prog, name, dims, gws, lws, ...)                                  \
    seg_cl_run((be), (op), (prog), (name), (dims), (gws), (lws), SEG_CL_NARGS(__VA_ARGS__),  \
               (struct seg_cl_arg[]){__VA_ARGS__})
/* 1-D over n work-items with the default work-group size. */
#define SEG_CL_RUN1(be, op, prog, name, n, ...)                                              \
    SEG_CL_RUN((be), (op), (prog), (name), 1, (size_t[]){(size_t)(n)}, NULL, __VA_ARGS__)

/* want (a power of two) lowered to what kernel prog/name allows on this device (some
 * drivers allow heavy kernels less than CL_DEVICE_MAX_WORK_GROUP_SIZE). */
size_t seg_cl_wg_limit(struct seg_backend *be, const char *prog, const char *name, size_t want);

/* A device buffer of at least nbytes owned by the ctx, valid until the next call
 * (every use is queued before the buffer can be replaced: the queue is in order). */
enum seg_status seg_cl_scratch(struct seg_backend *be, size_t nbytes, const char *op, cl_mem *out);

/* Work-group shape for a reduction over n of [outer, n, inner] with `wg` items:
 * lx items along inner times ly (a power of two) along n. */
void seg_cl_row_layout(int wg, int64_t n, int64_t inner, size_t *lx, size_t *ly);
size_t seg_cl_pow2_ceil(size_t v);

/* ---- device timer (cl_timer.c), GEMM tuning (cl_tune.c) -------------------------------- */

enum seg_status seg_cl_timer_start(struct seg_backend *be);
enum seg_status seg_cl_timer_stop(struct seg_backend *be, double *device_ms);
/* Applies the tuning cache's GEMM parameters for this device, if any (at creation). */
void seg_cl_tune_load(struct seg_backend *be);
enum seg_status seg_cl_tune(struct seg_backend *be, const struct seg_tune_opts *o);

/* ---- kernels (one file per op family) ------------------------------------------------ */

#define SEG_CL_KERNEL(fn) enum seg_status fn(struct seg_backend *be, const struct seg_op_args *a)
/* cl_pointwise.c */
SEG_CL_KERNEL(seg_cl_fill);
SEG_CL_KERNEL(seg_cl_cast);
SEG_CL_KERNEL(seg_cl_binary);
SEG_CL_KERNEL(seg_cl_expand);
SEG_CL_KERNEL(seg_cl_unary);
SEG_CL_KERNEL(seg_cl_unary_bwd);
SEG_CL_KERNEL(seg_cl_where);
SEG_CL_KERNEL(seg_cl_rng_uniform);
/* cl_reduce.c */
SEG_CL_KERNEL(seg_cl_reduce);
SEG_CL_KERNEL(seg_cl_argreduce);
SEG_CL_KERNEL(seg_cl_softmax);
SEG_CL_KERNEL(seg_cl_softmax_bwd);
/* cl_loss.c */
SEG_CL_KERNEL(seg_cl_cross_entropy);
SEG_CL_KERNEL(seg_cl_cross_entropy_bwd);
/* cl_gemm_clblast.c */
SEG_CL_KERNEL(seg_cl_matmul);
/* cl_conv.c */
SEG_CL_KERNEL(seg_cl_im2col);
SEG_CL_KERNEL(seg_cl_col2im);
/* cl_norm.c */
SEG_CL_KERNEL(seg_cl_batchnorm_stats);
SEG_CL_KERNEL(seg_cl_batchnorm);
SEG_CL_KERNEL(seg_cl_batchnorm_bwd);
/* cl_pool_resize.c */
SEG_CL_KERNEL(seg_cl_maxpool2d);
SEG_CL_KERNEL(seg_cl_maxpool2d_bwd);
SEG_CL_KERNEL(seg_cl_resize_bilinear);
SEG_CL_KERNEL(seg_cl_resize_bilinear_bwd);
SEG_CL_KERNEL(seg_cl_resize_nearest);
/* cl_index.c */
SEG_CL_KERNEL(seg_cl_one_hot);
SEG_CL_KERNEL(seg_cl_gather);
SEG_CL_KERNEL(seg_cl_scatter_add);
SEG_CL_KERNEL(seg_cl_slice);
SEG_CL_KERNEL(seg_cl_slice_assign);
SEG_CL_KERNEL(seg_cl_permute);
/* cl_sort_scan.c */
SEG_CL_KERNEL(seg_cl_sort);
SEG_CL_KERNEL(seg_cl_cumsum);
/* cl_optim.c */
SEG_CL_KERNEL(seg_cl_sgd_step);
SEG_CL_KERNEL(seg_cl_adam_step);
SEG_CL_KERNEL(seg_cl_nonfinite_any);
/* cl_peak.c */
SEG_CL_KERNEL(seg_cl_peak_fma);
/* cl_conv.c */
SEG_CL_KERNEL(seg_cl_conv2d_direct);

#endif
