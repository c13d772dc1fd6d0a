/* segda.h: the public C API of libsegda (tensors, devices, ops). */
#ifndef SEGDA_H
#define SEGDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEG_MAX_DIMS 4

/* Every fallible call returns one of these; the message is in seg_last_error(). */
enum seg_status {
    SEG_STATUS_OK            = 0,
    SEG_STATUS_INVALID       = -1, /* bad argument or shape */
    SEG_STATUS_OUT_OF_MEMORY = -2,
    SEG_STATUS_BACKEND       = -3, /* the driver or library reported an error */
    SEG_STATUS_UNSUPPORTED   = -4, /* op or feature not available on this backend */
    SEG_STATUS_IO            = -5,
    SEG_STATUS_NO_DEVICE     = -6,
    SEG_STATUS_FORMAT        = -7, /* malformed file or data */
};

const char *seg_status_name(enum seg_status s);
/* The message of the last error set on this thread ("" if none). */
const char *seg_last_error(void);
/* Records a formatted message for seg_last_error() and returns s. */
enum seg_status seg_error(enum seg_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void seg_error_clear(void);

enum seg_dtype { SEG_DTYPE_F32 = 0, SEG_DTYPE_I32 = 1, SEG_DTYPE_U8 = 2 };
size_t seg_dtype_size(enum seg_dtype t);
const char *seg_dtype_name(enum seg_dtype t);

enum seg_op {
#define SEG_OP(name, ndst, nsrc, diff) SEG_OP_##name,
#include "core/ops.def"
#undef SEG_OP
    SEG_OP_COUNT
};
const char *seg_op_name(enum seg_op op);
int seg_op_ndst(enum seg_op op);
int seg_op_nsrc(enum seg_op op);
bool seg_op_differentiable(enum seg_op op);

enum seg_binary_fn {
    SEG_BINARY_ADD, SEG_BINARY_SUB, SEG_BINARY_MUL, SEG_BINARY_DIV, SEG_BINARY_POW,
    SEG_BINARY_MAX, SEG_BINARY_MIN,
    SEG_BINARY_EQ, SEG_BINARY_NE, SEG_BINARY_LT, SEG_BINARY_LE, SEG_BINARY_GT, SEG_BINARY_GE,
    SEG_BINARY_COUNT
};
/* fp[0] = p0, fp[1] = p1 of UNARY. */
enum seg_unary_fn {
    SEG_UNARY_NEG, SEG_UNARY_EXP, SEG_UNARY_LOG, SEG_UNARY_SQRT, SEG_UNARY_ABS,
    SEG_UNARY_RELU,
    SEG_UNARY_LEAKY_RELU, /* x > 0 ? x : p0 * x */
    SEG_UNARY_SIGMOID,
    SEG_UNARY_SOFTPLUS,   /* log(1 + exp(x)), stable: max(x,0) + log1p(exp(-|x|)) */
    SEG_UNARY_TANH,
    SEG_UNARY_AFFINE,     /* p0 * x + p1 */
    SEG_UNARY_CLAMP,      /* min(max(x, p0), p1) */
    SEG_UNARY_POWS,       /* powf(x, p0) */
    SEG_UNARY_SQUARE,
    SEG_UNARY_RECIP,      /* 1 / x */
    SEG_UNARY_COUNT
};
enum seg_reduce_fn { SEG_REDUCE_SUM, SEG_REDUCE_MEAN, SEG_REDUCE_MAX, SEG_REDUCE_MIN, SEG_REDUCE_COUNT };

/* ---- devices and backends ---------------------------------------------------- */

struct seg_backend;

struct seg_device_info {
    char     backend[16];      /* "cpu", "opencl", "vulkan" */
    char     spec[32];         /* what --device takes: "cpu", "opencl:0.1", "vulkan:0" */
    char     name[128];
    char     vendor[64];
    char     driver[128];      /* driver / platform version */
    uint64_t memory_bytes;
    uint32_t compute_units;
    bool     fp16;
    uint32_t subgroup_size;    /* 0 when unknown or unsupported */
    uint64_t max_buffer_bytes; /* the largest single buffer (Vulkan: maxStorageBufferRange and
                                * maxMemoryAllocationSize, OpenCL: CL_DEVICE_MAX_MEM_ALLOC_SIZE);
                                * 0: no limit of its own (the cpu backend) */
    bool     is_cpu;           /* a software device (PoCL, lavapipe) or the cpu backend */
    char     matrix[32];       /* matrix hardware segda can use ("VK_NV fp16 16x16x16"), or "" */
};

/* Lists the devices of every backend compiled in. Fills at most max entries of out
 * (out may be NULL to count) and sets *count to the number found. Backends that fail
 * to enumerate are skipped; their reason is written to notes (if not NULL). */
enum seg_status seg_devices_list(struct seg_device_info *out, int max, int *count,
                                 char *notes, size_t notes_size);

/* spec: "cpu", "opencl", "opencl:P.D", "vulkan", "vulkan:N", or "auto" (first GPU, else cpu). */
enum seg_status seg_backend_create(const char *spec, struct seg_backend **out);
void seg_backend_destroy(struct seg_backend *be);
/* How "auto" chose this backend's device (one line, e.g. "cpu: no GPU found (...)"); "" when
 * the spec named the device. */
const char *seg_backend_choice(const struct seg_backend *be);
const struct seg_device_info *seg_backend_device(const struct seg_backend *be);
const char *seg_backend_name(const struct seg_backend *be);
/* Waits for all work queued on the backend. */
enum seg_status seg_backend_sync(struct seg_backend *be);
/* True when the backend implements op (the harness prints "not implemented" otherwise). */
bool seg_backend_has_op(const struct seg_backend *be, enum seg_op op);
/* Bytes of device memory in live tensors now, and the peak since the last reset. */
size_t seg_backend_mem_in_use(const struct seg_backend *be);
size_t seg_backend_mem_peak(const struct seg_backend *be);
/* What a backend's execution has cost since its creation (bench step reports them per step;
 * a GPU backend should wait for the device once a training step). */
struct seg_exec_counts {
    uint64_t host_syncs; /* host waits for the device: blocking reads, fence waits, finishes */
    uint64_t dispatches; /* kernels recorded or enqueued (a CLBlast call counts one) */
    uint64_t barriers;   /* pipeline barriers recorded (Vulkan) */
    uint64_t submits;    /* queue submissions (Vulkan) */
    uint64_t chunked;    /* convolutions run in chunks to keep their columns under the
                          * largest buffer (seg_backend_max_buffer) */
};
const struct seg_exec_counts *seg_backend_counts(const struct seg_backend *be);
void seg_backend_mem_peak_reset(struct seg_backend *be);
/* The largest buffer an op may allocate for its temporaries, in bytes (0: no limit): the
 * device's (seg_device_info.max_buffer_bytes), lowered by SEGDA_MAX_BUFFER_MB when that is
 * set (so that tests can prove the chunked paths on any device). Convolutions whose im2col
 * columns would exceed it run over chunks of the batch, or bands of output rows. */
uint64_t seg_backend_max_buffer(const struct seg_backend *be);
/* The forward convolution algorithm: direct (CONV2D_DIRECT, implicit GEMM) or im2col +
 * GEMM (for a 1x1 stride-1 conv, a GEMM on the input itself). AUTO (the default on OpenCL and Vulkan) times both on
 * each new shape at its first use and keeps the faster in the device's cache file, so later
 * runs reuse the choice; SEGDA_CONV_ALGO=auto|im2col|direct sets it at backend creation.
 * The cpu reference backend always uses im2col + GEMM unless told otherwise. */
enum seg_conv_algo { SEG_CONV_ALGO_AUTO, SEG_CONV_ALGO_IM2COL, SEG_CONV_ALGO_DIRECT };
enum seg_conv_algo seg_backend_conv_algo(const struct seg_backend *be);
void seg_backend_set_conv_algo(struct seg_backend *be, enum seg_conv_algo algo);
const char *seg_conv_algo_name(enum seg_conv_algo algo); /* "auto" | "im2col" | "direct" */
/* Which backends were compiled in: "cpu", "opencl", "vulkan". */
bool seg_backend_compiled(const char *backend);

/* Returns expr's status from the calling function when it is not SEG_STATUS_OK. */
#define SEG_TRY(expr)                                                                        \
    do {                                                                                     \
        enum seg_status seg_try_st_ = (expr);                                                \
        if (seg_try_st_)                                                                     \
            return seg_try_st_;                                                              \
    } while (0)

/* ---- tensors ------------------------------------------------------------------ */

struct seg_buf {
    void  *handle;  /* backend-specific: host pointer (cpu), cl_mem (opencl), block (vulkan) */
    size_t size;    /* bytes */
};

/* A contiguous row-major tensor. Views share their parent's buffer at a byte offset. */
struct seg_tensor {
    struct seg_backend *be;
    enum seg_dtype      dtype;
    int                 ndim;
    int64_t             shape[SEG_MAX_DIMS];
    struct seg_buf      buf;
    size_t              offset;   /* bytes, a multiple of 4 */
    bool                owns_buf;
};

int64_t seg_tensor_numel(const struct seg_tensor *t);
size_t  seg_tensor_nbytes(const struct seg_tensor *t);
/* "[2,3,97,131] f32" into buf. */
const char *seg_tensor_shape_str(const struct seg_tensor *t, char *buf, size_t size);
bool seg_tensor_same_shape(const struct seg_tensor *a, const struct seg_tensor *b);

enum seg_status seg_tensor_new(struct seg_backend *be, enum seg_dtype dtype, int ndim,
                               const int64_t *shape, struct seg_tensor **out);
/* A tensor with t's shape and dtype (contents undefined). */
enum seg_status seg_tensor_new_like(const struct seg_tensor *t, struct seg_tensor **out);
/* A view of `count` consecutive elements starting at element `start`, with the given shape. */
enum seg_status seg_tensor_view(struct seg_tensor *t, int64_t start, int ndim,
                                const int64_t *shape, struct seg_tensor **out);
/* Same data, another shape with the same element count (a view). */
enum seg_status seg_tensor_reshape(struct seg_tensor *t, int ndim, const int64_t *shape,
                                   struct seg_tensor **out);
/* Changes t's shape in place (same element count). */
enum seg_status seg_tensor_set_shape(struct seg_tensor *t, int ndim, const int64_t *shape);
void seg_tensor_free(struct seg_tensor *t);

enum seg_status seg_tensor_write(struct seg_tensor *t, const void *src, size_t nbytes);
enum seg_status seg_tensor_read(const struct seg_tensor *t, void *dst, size_t nbytes);
/* Copies between backends (through the host) or within one. Shapes must have equal numel. */
enum seg_status seg_tensor_copy(struct seg_tensor *dst, const struct seg_tensor *src);

/* ---- ops ------------------------------------------------------------------------
 * The raw op call: every op goes through here (validation, then the backend's kernel). */
struct seg_op_args;
enum seg_status seg_op_run(struct seg_backend *be, const struct seg_op_args *a);

#ifdef __cplusplus
}
#endif
#endif
