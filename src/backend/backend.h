/* backend.h: the backend vtable. Only src/core, src/backend and the backends include it. */
#ifndef SEGDA_BACKEND_H
#define SEGDA_BACKEND_H

#include "segda.h"

/* One op call as a backend kernel sees it: sizes are precomputed by src/core/ops.c,
 * so a kernel only reads ip[]/fp[] and the tensors' buffers and byte offsets. */
struct seg_op_args {
    enum seg_op              op;
    struct seg_tensor       *dst[3];
    const struct seg_tensor *src[6];
    int32_t                  ip[16];
    float                    fp[8];
};

typedef enum seg_status (*seg_kernel_fn)(struct seg_backend *be, const struct seg_op_args *a);

struct seg_tune_opts; /* src/core/ops.h */

struct seg_backend_iface {
    const char *name; /* "cpu" | "opencl" | "vulkan" */
    void (*destroy)(struct seg_backend *be);
    /* Raw device allocations; the core keeps a pool on top (src/core/pool.c). */
    enum seg_status (*buf_alloc)(struct seg_backend *be, size_t nbytes, struct seg_buf *out);
    void (*buf_free)(struct seg_backend *be, struct seg_buf *b);
    /* Host <-> device transfers; they complete before returning (reads wait for queued work). */
    enum seg_status (*buf_write)(struct seg_backend *be, struct seg_buf *dst, size_t off,
                                 const void *src, size_t n);
    enum seg_status (*buf_read)(struct seg_backend *be, const struct seg_buf *src, size_t off,
                                void *dst, size_t n);
    /* Device-side copy, queued like an op. */
    enum seg_status (*buf_copy)(struct seg_backend *be, struct seg_buf *dst, size_t doff,
                                const struct seg_buf *src, size_t soff, size_t n);
    enum seg_status (*sync)(struct seg_backend *be);
    /* [SEG_OP_COUNT]; a NULL entry means "not implemented". */
    const seg_kernel_fn *kernels;
    /* Optional (NULL where the API has none): device timestamps around queued work.
     * timer_start marks the queue; timer_stop marks it again, waits for the queue and
     * gives the device time between the two marks in ms. */
    enum seg_status (*timer_start)(struct seg_backend *be);
    enum seg_status (*timer_stop)(struct seg_backend *be, double *device_ms);
    /* Optional: searches GEMM parameters for this device (segda tune), applies the best,
     * stores them in the tuning cache (read again at the next backend creation) and
     * updates be->tuned. */
    enum seg_status (*tune)(struct seg_backend *be, const struct seg_tune_opts *o);
    /* Optional: matrix hardware for MATMUL on (true) or off (seg_backend_set_matrix_gemm). */
    enum seg_status (*set_matrix_gemm)(struct seg_backend *be, bool on);
};

struct seg_pool; /* src/core/pool.c */
struct seg_conv_choices; /* src/core/conv_algo.c */

struct seg_backend {
    const struct seg_backend_iface *iface;
    void                           *ctx;   /* the backend's own state */
    struct seg_device_info          info;
    struct seg_pool                *pool;
    size_t                          mem_in_use, mem_peak;
    /* "" or a short description of the tuned parameters the backend uses (bench prints it). */
    char                            tuned[160];
    /* "" or the GEMM kernel MATMUL runs (bench prints it; Vulkan: which shader and tile). */
    char                            gemm_kernel[160];
    /* The forward algorithm of every convolution, and so of the 1x1 convolutions the backward
     * passes run as (SEGDA_CONV_ALGO or seg_backend_set_conv_algo); with AUTO, each shape's is
     * measured at its first use and kept in conv_choices and the device's cache file
     * (src/core/conv_algo.c). conv_direct_default: what AUTO uses where nothing can be
     * measured or cached (no cache directory). */
    enum seg_conv_algo              conv_algo;
    bool                            conv_direct_default;
    struct seg_conv_choices        *conv_choices;
    struct seg_exec_counts          counts; /* kept by each backend */
    uint64_t                        max_buffer; /* seg_backend_max_buffer */
    /* Why this device: "" when the spec named it, else how "auto" chose (seg_backend_choice). */
    char                            choice[512];
};

/* The file where this device's kind of cached knowledge lives ("tuned", "conv"):
 * <cache>/<backend>/<kind>-<hash of device name and driver>.txt, <cache> being
 * $SEGDA_CACHE_DIR, else $XDG_CACHE_HOME/segda, else $HOME/.cache/segda. false: no cache
 * directory (or create failed to make it). */
bool seg_backend_cache_path(const struct seg_backend *be, const char *kind, bool create, char *out,
                            size_t size);
/* <cache>/<backend> itself (create: made if missing; $XDG_CACHE_HOME and $HOME count only
 * when they exist). false: no cache directory. */
bool seg_cache_dir(const char *backend, bool create, char *out, size_t size);
/* Frees the measured convolution choices (seg_backend_destroy). */
void seg_conv_choices_free(struct seg_conv_choices *c);

/* Each backend's entry points (defined only when compiled in). */
enum seg_status seg_cpu_backend_create(struct seg_backend **out);
enum seg_status seg_cpu_devices(struct seg_device_info *out, int max, int *count);
enum seg_status seg_cl_backend_create(int platform, int device, struct seg_backend **out);
enum seg_status seg_cl_devices(struct seg_device_info *out, int max, int *count);
enum seg_status seg_vk_backend_create(int device, struct seg_backend **out);
enum seg_status seg_vk_devices(struct seg_device_info *out, int max, int *count);

/* Helpers for backends. */
int64_t seg_numel_of(const struct seg_tensor *t);

#endif
