/* vk_internal.h: the Vulkan backend's private state and helpers (src/vulkan only).
 *
 * Design:
 *  - Memory: big VkDeviceMemory blocks, one VkBuffer each, suballocated first-fit
 *    (vk_memory.c); seg_buf.handle points to a struct vk_alloc {block, offset, size}.
 *  - Every pipeline shares one descriptor-set layout of SEG_VK_BINDINGS storage buffers
 *    and one 128-byte push-constant block (struct vk_push, mirrored by shaders/common.glsl).
 *    A binding covers a tensor's whole memory block and the tensor's element offset in it
 *    goes in push constants (blocks beyond maxStorageBufferRange: bound from the offset
 *    aligned down to minStorageBufferOffsetAlignment), so views at any 4-byte offset work
 *    and a descriptor set depends only on the blocks an op touches.
 *  - Commands (vk_command.c): ops are recorded into a frame's command buffer and submitted
 *    in batches of SEG_VK_BATCH_MAX commands, at a host read and at sync. A barrier comes
 *    only before a command that reads or overwrites a buffer range an earlier command since
 *    the last barrier wrote (or overwrites one it read). Frames form a ring that grows
 *    (up to SEG_VK_FRAMES_MAX) rather than make the host wait for the device; a host read
 *    waits on the newest frame's fence alone. Host writes go through the recording frame's
 *    upload arena and a copy recorded in the stream, so they never drain the queue.
 *  - Descriptor sets are cached by their eight bindings (vk_dset.c): a training step that
 *    repeats the previous one's buffers allocates and writes none.
 *  - Pipelines are created lazily, once per shader variant, through a VkPipelineCache that
 *    persists on disk (vk_pipeline.c). SPIR-V comes from the build (shaders/compile.cmake). */
#ifndef SEGDA_VK_INTERNAL_H
#define SEGDA_VK_INTERNAL_H

#include <vulkan/vulkan.h>

#include "backend/backend.h"
#include "segda_vk_shaders.h"

#define SEG_VK_BINDINGS   8
/* Bindings 8 and 9: uniform texel buffers (R32_SFLOAT) over the blocks of bindings 1 and 2,
 * for shaders that read their inputs with texelFetch (gemm_reg.comp: llvmpipe gathers
 * texels with vector loads but reads a storage buffer one lane at a time). */
#define SEG_VK_TEXELS     2
#define SEG_VK_BATCH_MAX  256
#define SEG_VK_FRAMES     16  /* frames at creation (a ResNet-101 step submits ~9 batches);
                               * a longer stretch between waits grows the ring */
#define SEG_VK_FRAMES_MAX 64
#define SEG_VK_PENDING_MAX 256 /* buffer ranges tracked since the last barrier */
#define SEG_VK_DSET_CACHE 8192 /* descriptor sets kept (a power of two) */
#define SEG_VK_MAX_GROUPS 65535u
#define SEG_VK_WG         256u /* default workgroup size (specialization constant 0) */
/* Pipelines per shader: variant 0 is generic; variant v > 0 sets specialization constant
 * SEG_VK_SPEC_FN to v - 1 (a shader's function selector, e.g. the unary function), so the
 * driver compiles only that function (llvmpipe would otherwise run every case). */
#define SEG_VK_VARIANTS   17
#define SEG_VK_SPEC_FN    10

/* The push-constant block of every shader (128 bytes, the guaranteed minimum). */
struct vk_push {
    uint32_t off[SEG_VK_BINDINGS]; /* element offset of each binding's tensor */
    int32_t  ip[16];
    float    fp[8];
};
_Static_assert(sizeof(struct vk_push) == 128, "push constants must stay within 128 bytes");

struct vk_range {
    VkDeviceSize offset, size;
};

struct vk_block {
    VkDeviceMemory   mem;
    VkBuffer         buf;
    VkDeviceSize     size;
    void            *mapped;     /* when device memory is host-visible */
    bool             dedicated;  /* one allocation only; released when freed */
    VkBufferView     view;       /* R32_SFLOAT texels from offset 0, view_bytes long, or
                                  * VK_NULL_HANDLE (no texel-buffer support) */
    VkDeviceSize     view_bytes;
    struct vk_range *free;       /* sorted by offset, coalesced */
    size_t           nfree, cap;
    struct vk_block *next;
};

struct vk_alloc {
    struct vk_block *block;
    VkDeviceSize     offset, size;
};

/* Host-visible memory that a frame's recorded uploads copy from. */
struct vk_arena {
    VkBuffer        buf;
    VkDeviceMemory  mem;
    void           *ptr;
    VkDeviceSize    size;
    struct vk_arena *next;       /* in a list: a frame's retired ones, or the idle ones */
};

struct vk_frame {
    VkCommandBuffer  cmd;
    VkFence          fence;
    uint32_t         ncmd;       /* commands recorded in the open batch */
    bool             recording;
    bool             submitted;  /* fence not yet waited on */
    struct vk_arena *arena;      /* uploads of this frame; used bytes below */
    VkDeviceSize     arena_used;
    struct vk_arena *retired;    /* arenas this frame outgrew (its copies may read them) */
};

/* A buffer range one recorded command reads or writes (hazard tracking). */
struct vk_span {
    VkBuffer     buf;
    VkDeviceSize lo, hi;
    bool         write;
};

struct vk_dset_key {
    VkDescriptorBufferInfo buf[SEG_VK_BINDINGS];
    VkBufferView           texel[SEG_VK_TEXELS];
};

struct vk_dset_entry {
    struct vk_dset_key     key;
    VkDescriptorSet        set;   /* VK_NULL_HANDLE: empty slot */
};

/* The GEMM kernel and tile of MATMUL and CONV2D_DIRECT. reg = 0: shaders/gemm.comp (shared-
 * memory tiles; LX = bn / tn and LY = bm / tm invocations). reg = 1: shaders/gemm_reg.comp
 * (one subgroup of S = vk_ctx.reg_lanes lanes, no shared memory; tm = MV A vectors and
 * tn = TN B vectors per lane, so bm = tm * S and bn = tn * S, bk = 1). Default from the
 * device (vk_gemm_tile_default), replaced by the tuning cache or `segda tune` (vk_tune.c). */
struct vk_gemm_tile {
    uint32_t bm, bn, bk, tm, tn;
    uint32_t reg;
};

struct vk_ctx {
    VkInstance                       instance;
    VkPhysicalDevice                 phys;
    VkDevice                         dev;
    VkQueue                          queue;
    uint32_t                         qfamily;
    VkPhysicalDeviceProperties       props;
    VkPhysicalDeviceMemoryProperties memprops;

    /* memory */
    uint32_t         dev_type_bits;    /* memory types usable for storage buffers */
    bool             host_mapped;      /* device memory is host-visible: no staging */
    VkDeviceSize     block_size, align, max_range, max_alloc;
    struct vk_block *blocks;
    VkBuffer         staging_buf;      /* readback of device-local memory */
    VkDeviceMemory   staging_mem;
    void            *staging_ptr;
    VkDeviceSize     staging_size;
    struct vk_alloc *dummy;            /* bound to unused binding slots */
    struct vk_alloc *scratch;          /* multi-pass temporaries (vk_scratch) */

    /* quirks */
    uint32_t         loop_budget;      /* max loop iterations per invocation, 0: unlimited
                                        * (llvmpipe stops a shader's loops after 65535) */
    uint32_t         max_texels;       /* elements a texel view may span, 0: no R32_SFLOAT
                                        * uniform texel buffers */
    const char      *gemm_force;       /* SEGDA_VK_GEMM: "tiled", "register", "coopmat" or NULL */
    int              splitk_force;     /* SEGDA_VK_SPLITK: K slices of MATMUL on gemm.comp, -1 by
                                        * the shape (vk_gemm.c) */
    uint32_t         reg_lanes;        /* subgroup size when gemm_reg.comp can run (4, 8 or
                                        * 16 lanes with subgroup broadcast in compute), else 0 */

    /* commands: a ring of frames in submission order, cur the recording one */
    VkCommandPool    cmd_pool;
    struct vk_frame  frames[SEG_VK_FRAMES_MAX];
    int              nframes, cur;
    struct vk_arena *idle_arenas;      /* upload arenas no frame holds, for reuse */
    struct vk_span   pending[SEG_VK_PENDING_MAX];
    int              npending;
    const struct seg_op_args *op;      /* the op being recorded (its dst are written) */
    struct seg_exec_counts   *counts;  /* the backend's */

    /* the descriptor-set cache (vk_dset.c) */
    VkDescriptorPool       dpool;
    struct vk_dset_entry  *dsets;
    uint32_t               ndsets;

    /* device timestamps (timer_start / timer_stop); VK_NULL_HANDLE when unsupported */
    VkQueryPool      tquery;
    uint64_t         tmask;            /* valid bits of a timestamp */
    double           tperiod_ns;       /* nanoseconds per tick */
    bool             tstarted;

    /* GEMM tile in use */
    struct vk_gemm_tile gemm;
    /* cooperative matrices (vk_coopmat.c): the workgroup size of gemm_coopmat.comp where the
     * device has its shape (VK_NV_cooperative_matrix and shaderFloat16 are then enabled at
     * device creation), else 0 */
    uint32_t         coopmat_wg;
    int              coopmat_state;    /* 0 not yet self-tested, 1 passed, -1 failed: off */
    int              coopmat_standin;  /* test hook SEGDA_VK_COOPMAT_STANDIN (vk_coopmat.c):
                                        * 1 simt, 2 wrong; 0 the real kernel */

    /* pipelines */
    VkDescriptorSetLayout dsl;
    VkPipelineLayout      playout;
    VkPipelineCache       pcache;
    VkPipeline            pipelines[SEG_VK_SHADER_COUNT][SEG_VK_VARIANTS];
    char                  cache_path[1024];
};

static inline struct vk_ctx *vk_ctx_of(struct seg_backend *be) { return be->ctx; }

/* vk_backend.c */
const char *vk_result_name(VkResult r);
bool vk_has_device_ext(VkPhysicalDevice p, const char *name);
/* Records "<what> failed: <VkResult> in <where>" and returns the matching status. */
enum seg_status vk_fail(VkResult r, const char *what, const char *where);

/* vk_memory.c */
enum seg_status vk_memory_init(struct vk_ctx *c);
void vk_memory_destroy(struct vk_ctx *c);
enum seg_status vk_alloc_new(struct vk_ctx *c, size_t nbytes, struct vk_alloc **out);
void vk_alloc_free(struct vk_ctx *c, struct vk_alloc *a);
enum seg_status vk_buf_alloc(struct seg_backend *be, size_t nbytes, struct seg_buf *out);
void vk_buf_free(struct seg_backend *be, struct seg_buf *b);
enum seg_status vk_buf_write(struct seg_backend *be, struct seg_buf *dst, size_t off,
                             const void *src, size_t n);
enum seg_status vk_buf_read(struct seg_backend *be, const struct seg_buf *src, size_t off,
                            void *dst, size_t n);
enum seg_status vk_buf_copy(struct seg_backend *be, struct seg_buf *dst, size_t doff,
                            const struct seg_buf *src, size_t soff, size_t n);

/* Scratch device memory of at least nbytes for one op's intermediate results (valid until
 * the next call; growing it waits for queued work). */
enum seg_status vk_scratch(struct vk_ctx *c, size_t nbytes, struct vk_alloc **out);
/* A 1-D tensor of numel elements at byte offset off of scratch allocation s. */
static inline struct seg_tensor vk_scratch_tensor(struct vk_alloc *s, size_t off, int64_t numel,
                                                  enum seg_dtype dtype)
{
    struct seg_tensor t = {.dtype = dtype, .ndim = 1, .shape = {numel}, .offset = off};
    t.buf.handle = s;
    t.buf.size = (size_t)s->size;
    return t;
}

/* vk_pipeline.c */
enum seg_status vk_pipeline_init(struct vk_ctx *c);
void vk_pipeline_destroy(struct vk_ctx *c);
enum seg_status vk_pipeline_get(struct vk_ctx *c, enum seg_vk_shader sh, int fn, VkPipeline *out);

/* vk_gemm.c */
struct vk_gemm_tile vk_gemm_tile_default(const struct vk_ctx *c);
/* the register-GEMM kernel with mv A and tn B vectors a lane (needs reg_lanes) */
struct vk_gemm_tile vk_gemm_tile_reg(const struct vk_ctx *c, uint32_t mv, uint32_t tn);
/* "register 1x8 vectors" or "tile 64x64x16 4x4", for logs and bench */
void vk_gemm_tile_name(const struct vk_gemm_tile *t, char *out, size_t size);
/* be->gemm_kernel from the kernel and tile in use */
void vk_gemm_describe(struct seg_backend *be);
/* Whether the device can run tile t (workgroup size, shared memory, divisibility). */
bool vk_gemm_tile_ok(const struct vk_ctx *c, const struct vk_gemm_tile *t);
/* Switches the GEMM / conv pipelines to tile t (waits for queued work). */
enum seg_status vk_gemm_tile_set(struct vk_ctx *c, const struct vk_gemm_tile *t);

/* MATMUL through gemm.comp or gemm_reg.comp (vk_matmul adds the cooperative-matrix kernel) */
enum seg_status vk_matmul_simt(struct seg_backend *be, const struct seg_op_args *a);

/* vk_coopmat.c */
/* The workgroup size of gemm_coopmat.comp on this device (subgroup: its subgroup size), or 0
 * where it lacks VK_NV_cooperative_matrix with the 16x16x16 fp16 x fp16 + fp32 subgroup
 * shape, shaderFloat16 or the workgroup's size and shared memory. */
uint32_t vk_coopmat_probe(VkInstance inst, VkPhysicalDevice phys, uint32_t subgroup);
/* Compares the kernel against gemm.comp on a few shapes; why says what disagreed. */
enum seg_status vk_coopmat_self_test(struct seg_backend *be, char *why, size_t size);
/* MATMUL on the cooperative-matrix kernel where it is selected (SEGDA_VK_GEMM=coopmat) and
 * has passed its self-test (run here at first use; a failure warns and turns it off);
 * *done false: the caller runs the SIMT kernel. */
enum seg_status vk_coopmat_matmul(struct seg_backend *be, const struct seg_op_args *a, bool *done);
/* The iface's set_matrix_gemm: SEGDA_VK_GEMM=coopmat on or off at run time. */
enum seg_status vk_set_matrix_gemm(struct seg_backend *be, bool on);

/* vk_timer.c */
enum seg_status vk_timer_init(struct vk_ctx *c);
void vk_timer_destroy(struct vk_ctx *c);
enum seg_status vk_timer_start(struct seg_backend *be);
enum seg_status vk_timer_stop(struct seg_backend *be, double *device_ms);

/* vk_tune.c: the tuning cache (loaded at creation) and `segda tune`. */
void vk_tune_load(struct seg_backend *be);
enum seg_status vk_tune(struct seg_backend *be, const struct seg_tune_opts *o);

/* vk_command.c */
enum seg_status vk_command_init(struct vk_ctx *c);
void vk_command_destroy(struct vk_ctx *c);
/* The recording frame's command buffer, begun if needed. */
enum seg_status vk_record_begin(struct vk_ctx *c, const char *where, VkCommandBuffer *out);
/* Before recording a command that accesses spans s[0..n): a barrier if one of them
 * conflicts with an access since the last barrier (read after write, write after read or
 * write); then they join the tracked accesses. */
void vk_order(struct vk_ctx *c, const struct vk_span *s, int n);
/* A barrier after everything recorded so far (timestamps). */
void vk_barrier_all(struct vk_ctx *c);
/* Ends a recorded command: a flush when the batch is full. */
enum seg_status vk_record_end(struct vk_ctx *c, const char *where);
/* Submits the open batch (if any) without waiting. */
enum seg_status vk_flush(struct vk_ctx *c, const char *where);
/* Submits and waits for everything queued (one fence wait). */
enum seg_status vk_wait_all(struct vk_ctx *c, const char *where);
/* Whether nothing is recorded or in flight (the host may touch mapped memory directly). */
bool vk_idle(const struct vk_ctx *c);
enum seg_status vk_sync(struct seg_backend *be);
/* n bytes of the recording frame's upload arena (grown as needed), to copy from. */
enum seg_status vk_upload_space(struct vk_ctx *c, VkDeviceSize n, VkBuffer *buf, VkDeviceSize *off,
                                void **ptr);

/* vk_dset.c: descriptor sets cached by their bindings */
enum seg_status vk_dset_init(struct vk_ctx *c);
void vk_dset_destroy(struct vk_ctx *c);
/* The set holding infos (allocated and written on the first use of those bindings). */
/* Whether texelFetch through the block's view (bindings 8, 9) reaches all of tensor x. */
bool vk_texel_ok(const struct vk_ctx *c, const struct seg_tensor *x);
enum seg_status vk_dset_get(struct vk_ctx *c, const struct vk_dset_key *key,
                            VkDescriptorSet *out, const char *where);
/* Forgets every set (their buffers may go); the caller has waited for queued work. */
void vk_dset_clear(struct vk_ctx *c);

/* vk_memory.c: host-visible buffers for uploads */
enum seg_status vk_arena_new(struct vk_ctx *c, VkDeviceSize size, struct vk_arena **out);
void vk_arena_free(struct vk_ctx *c, struct vk_arena *a);

/* Records one dispatch of shader sh. t[k] is bound at binding k (NULL: a dummy buffer) and
 * pc->off[k] is filled from it; the rest of *pc is the caller's. */
enum seg_status vk_dispatch(struct seg_backend *be, enum seg_vk_shader sh,
                            const struct seg_tensor *const t[SEG_VK_BINDINGS], struct vk_push *pc,
                            uint32_t gx, uint32_t gy, uint32_t gz, const char *where);
/* vk_dispatch with the pipeline specialized for function fn (-1: the generic one). */
enum seg_status vk_dispatch_fn(struct seg_backend *be, enum seg_vk_shader sh, int fn,
                               const struct seg_tensor *const t[SEG_VK_BINDINGS], struct vk_push *pc,
                               uint32_t gx, uint32_t gy, uint32_t gz, const char *where);
enum seg_status vk_dispatch_n_fn(struct seg_backend *be, enum seg_vk_shader sh, int fn,
                                 const struct seg_tensor *const t[SEG_VK_BINDINGS],
                                 struct vk_push *pc, uint64_t n, const char *where);
/* A 1-D dispatch over n items with SEG_VK_WG-wide workgroups (grid-stride beyond the cap). */
enum seg_status vk_dispatch_n(struct seg_backend *be, enum seg_vk_shader sh,
                              const struct seg_tensor *const t[SEG_VK_BINDINGS],
                              struct vk_push *pc, uint64_t n, const char *where);

static inline uint32_t vk_groups(uint64_t n, uint32_t per_group)
{
    uint64_t g = (n + per_group - 1) / per_group;
    if (g < 1) g = 1;
    return g > SEG_VK_MAX_GROUPS ? SEG_VK_MAX_GROUPS : (uint32_t)g;
}

/* A push block with the op's ip[] and fp[] copied in. */
static inline struct vk_push vk_push_from(const struct seg_op_args *a)
{
    struct vk_push pc = {.off = {0}};
    for (int k = 0; k < 16; k++) pc.ip[k] = a->ip[k];
    for (int k = 0; k < 8; k++) pc.fp[k] = a->fp[k];
    return pc;
}

/* Sizes must fit the shaders' 32-bit indices (and stay below 2^31). */
enum seg_status vk_check_u32(uint64_t n, const char *where);
/* Fails (UNSUPPORTED) when one invocation would loop more than the device allows. */
enum seg_status vk_check_trips(const struct vk_ctx *c, uint64_t trips, const char *where);
/* How many times a grid-stride loop over n items runs in one invocation. */
static inline uint64_t vk_grid_trips(uint64_t n)
{
    uint64_t per = (uint64_t)SEG_VK_MAX_GROUPS * SEG_VK_WG;
    return (n + per - 1) / per;
}

/* Kernels, one family per file. */
#define VK_KERNEL(name) enum seg_status name(struct seg_backend *be, const struct seg_op_args *a)
VK_KERNEL(vk_fill);
VK_KERNEL(vk_cast);
VK_KERNEL(vk_binary);
VK_KERNEL(vk_expand);
VK_KERNEL(vk_unary);
VK_KERNEL(vk_unary_bwd);
VK_KERNEL(vk_where);
VK_KERNEL(vk_rng_uniform);
VK_KERNEL(vk_reduce);
VK_KERNEL(vk_argreduce);
VK_KERNEL(vk_softmax);
VK_KERNEL(vk_softmax_bwd);
VK_KERNEL(vk_cumsum);
VK_KERNEL(vk_sort);
VK_KERNEL(vk_cross_entropy);
VK_KERNEL(vk_cross_entropy_bwd);
VK_KERNEL(vk_matmul);
VK_KERNEL(vk_im2col);
VK_KERNEL(vk_col2im);
VK_KERNEL(vk_batchnorm_stats);
VK_KERNEL(vk_batchnorm);
VK_KERNEL(vk_batchnorm_bwd);
VK_KERNEL(vk_maxpool2d);
VK_KERNEL(vk_maxpool2d_bwd);
VK_KERNEL(vk_resize_bilinear);
VK_KERNEL(vk_resize_bilinear_bwd);
VK_KERNEL(vk_resize_nearest);
VK_KERNEL(vk_one_hot);
VK_KERNEL(vk_gather);
VK_KERNEL(vk_scatter_add);
VK_KERNEL(vk_slice);
VK_KERNEL(vk_slice_assign);
VK_KERNEL(vk_permute);
VK_KERNEL(vk_sgd_step);
VK_KERNEL(vk_adam_step);
VK_KERNEL(vk_nonfinite_any);
VK_KERNEL(vk_peak_fma);
VK_KERNEL(vk_conv2d_direct);

#endif
