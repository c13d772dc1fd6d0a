/* cl_backend.c: the OpenCL backend: devices, context, queue, buffers and the vtable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "opencl/cl_internal.h"

/* ---- errors ------------------------------------------------------------------------ */

const char *seg_cl_error_name(cl_int err)
{
    switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
    E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
    E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
    E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE)
    E(CL_INVALID_HOST_PTR) E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    E(CL_INVALID_IMAGE_SIZE) E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY)
    E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE)
    E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL)
    E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST)
    E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT)
    E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE)
    E(CL_INVALID_PROPERTY) E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS)
    E(CL_INVALID_LINKER_OPTIONS) E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "CL_UNKNOWN_ERROR";
}

enum seg_status seg_cl_fail(cl_int err, const char *api, const char *where)
{
    enum seg_status s = SEG_STATUS_BACKEND;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY)
        s = SEG_STATUS_OUT_OF_MEMORY;
    return seg_error(s, "opencl: %s failed: %s (%d) in %s", api, seg_cl_error_name(err), (int)err,
                     where ? where : "?");
}

/* ---- device queries ---------------------------------------------------------------- */

/* Device / platform strings, truncated to fit (the API fails on a short buffer). */
static void cl_info_str(cl_device_id d, cl_platform_id p, cl_uint what, char *out, size_t size)
{
    out[0] = '\0';
    size_t n = 0;
    cl_int err = d ? clGetDeviceInfo(d, what, 0, NULL, &n) : clGetPlatformInfo(p, what, 0, NULL, &n);
    if (err != CL_SUCCESS || n == 0) return;
    char *tmp = malloc(n + 1);
    if (!tmp) return;
    err = d ? clGetDeviceInfo(d, what, n, tmp, NULL) : clGetPlatformInfo(p, what, n, tmp, NULL);
    if (err == CL_SUCCESS) {
        tmp[n] = '\0';
        snprintf(out, size, "%s", tmp);
    }
    free(tmp);
}

static void cl_str(cl_device_id d, cl_device_info what, char *out, size_t size)
{
    cl_info_str(d, NULL, what, out, size);
}

static void cl_platform_str(cl_platform_id p, cl_platform_info what, char *out, size_t size)
{
    cl_info_str(NULL, p, what, out, size);
}

static bool cl_has_extension(cl_device_id d, const char *ext)
{
    size_t n = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0) return false;
    char *s = malloc(n + 1);
    if (!s) return false;
    bool found = false;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, n, s, NULL) == CL_SUCCESS) {
        s[n] = '\0';
        size_t len = strlen(ext);
        for (const char *p = s; (p = strstr(p, ext)) != NULL; p += len) {
            if ((p == s || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0')) {
                found = true;
                break;
            }
        }
    }
    free(s);
    return found;
}

/* Vendor extensions report the SIMD width; 0 when none does. */
static uint32_t cl_subgroup_size(cl_device_id d)
{
    if (cl_has_extension(d, "cl_nv_device_attribute_query")) {
        cl_uint w = 0; /* CL_DEVICE_WARP_SIZE_NV */
        if (clGetDeviceInfo(d, 0x4003, sizeof w, &w, NULL) == CL_SUCCESS) return w;
    }
    if (cl_has_extension(d, "cl_amd_device_attribute_query")) {
        cl_uint w = 0; /* CL_DEVICE_WAVEFRONT_WIDTH_AMD */
        if (clGetDeviceInfo(d, 0x4043, sizeof w, &w, NULL) == CL_SUCCESS) return w;
    }
    if (cl_has_extension(d, "cl_intel_required_subgroup_size")) {
        size_t sizes[16] = {0}, n = 0; /* CL_DEVICE_SUB_GROUP_SIZES_INTEL */
        if (clGetDeviceInfo(d, 0x4108, sizeof sizes, sizes, &n) == CL_SUCCESS) {
            size_t best = 0;
            for (size_t i = 0; i < n / sizeof sizes[0] && i < 16; i++)
                if (sizes[i] > best) best = sizes[i];
            return (uint32_t)best;
        }
    }
    return 0;
}

static void cl_fill_info(cl_platform_id p, cl_device_id d, int pi, int di,
                         struct seg_device_info *info)
{
    memset(info, 0, sizeof *info);
    snprintf(info->backend, sizeof info->backend, "opencl");
    snprintf(info->spec, sizeof info->spec, "opencl:%d.%d", pi, di);
    cl_str(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    cl_str(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    char drv[64], plat[128];
    cl_str(d, CL_DRIVER_VERSION, drv, sizeof drv);
    cl_platform_str(p, CL_PLATFORM_VERSION, plat, sizeof plat);
    snprintf(info->driver, sizeof info->driver, "%.40s (%.80s)", drv, plat);
    cl_ulong mem = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL) == CL_SUCCESS)
        info->memory_bytes = mem;
    cl_ulong maxalloc = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL) == CL_SUCCESS)
        info->max_buffer_bytes = maxalloc;
    cl_uint cu = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL) == CL_SUCCESS)
        info->compute_units = cu;
    info->fp16 = cl_has_extension(d, "cl_khr_fp16");
    info->subgroup_size = cl_subgroup_size(d);
    cl_device_type type = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL) == CL_SUCCESS)
        info->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
}

static enum seg_status cl_platforms(cl_platform_id **out, cl_uint *count)
{
    *out = NULL;
    *count = 0;
    cl_uint n = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &n);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && n == 0))
        return seg_error(SEG_STATUS_NO_DEVICE, "opencl: no OpenCL platform is installed");
    SEG_CL_CHECK(err, "clGetPlatformIDs", "device enumeration");
    cl_platform_id *ps = calloc(n, sizeof *ps);
    if (!ps) return seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: out of host memory");
    err = clGetPlatformIDs(n, ps, NULL);
    if (err != CL_SUCCESS) {
        free(ps);
        return seg_cl_fail(err, "clGetPlatformIDs", "device enumeration");
    }
    *out = ps;
    *count = n;
    return SEG_STATUS_OK;
}

/* The devices of platform p (*out NULL and count 0 when it has none). */
static enum seg_status cl_devices_of(cl_platform_id p, cl_device_id **out, cl_uint *count)
{
    *out = NULL;
    *count = 0;
    cl_uint n = 0;
    cl_int err = clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, NULL, &n);
    if (err == CL_DEVICE_NOT_FOUND || n == 0) return SEG_STATUS_OK;
    SEG_CL_CHECK(err, "clGetDeviceIDs", "device enumeration");
    cl_device_id *ds = calloc(n, sizeof *ds);
    if (!ds) return seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: out of host memory");
    err = clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, n, ds, NULL);
    if (err != CL_SUCCESS) {
        free(ds);
        return seg_cl_fail(err, "clGetDeviceIDs", "device enumeration");
    }
    *out = ds;
    *count = n;
    return SEG_STATUS_OK;
}

enum seg_status seg_cl_devices(struct seg_device_info *out, int max, int *count)
{
    *count = 0;
    cl_platform_id *ps;
    cl_uint np;
    SEG_CL_TRY(cl_platforms(&ps, &np));
    int found = 0;
    for (cl_uint pi = 0; pi < np; pi++) {
        cl_device_id *ds;
        cl_uint nd;
        if (cl_devices_of(ps[pi], &ds, &nd) != SEG_STATUS_OK) continue; /* skip a broken platform */
        for (cl_uint di = 0; di < nd; di++) {
            if (out && found < max) cl_fill_info(ps[pi], ds[di], (int)pi, (int)di, &out[found]);
            found++;
        }
        free(ds);
    }
    free(ps);
    *count = found;
    return SEG_STATUS_OK;
}

/* platform < 0 or device < 0: the first GPU of any platform, else the first device. */
static enum seg_status cl_pick(int platform, int device, cl_platform_id *pp, cl_device_id *pd,
                               int *pi_out, int *di_out)
{
    cl_platform_id *ps;
    cl_uint np;
    SEG_CL_TRY(cl_platforms(&ps, &np));
    enum seg_status st = SEG_STATUS_NO_DEVICE;
    bool auto_pick = platform < 0 || device < 0;
    if (!auto_pick && (cl_uint)platform >= np) {
        free(ps);
        return seg_error(SEG_STATUS_NO_DEVICE, "opencl: platform %d not found (%u platforms)",
                         platform, (unsigned)np);
    }
    bool have_any = false;
    for (int pass = 0; pass < (auto_pick ? 2 : 1) && st != SEG_STATUS_OK; pass++) {
        for (cl_uint pi = 0; pi < np && st != SEG_STATUS_OK; pi++) {
            if (!auto_pick && (int)pi != platform) continue;
            cl_device_id *ds;
            cl_uint nd;
            if (cl_devices_of(ps[pi], &ds, &nd) != SEG_STATUS_OK) continue;
            for (cl_uint di = 0; di < nd; di++) {
                if (!auto_pick && (int)di != device) continue;
                if (auto_pick) {
                    cl_device_type type = 0;
                    clGetDeviceInfo(ds[di], CL_DEVICE_TYPE, sizeof type, &type, NULL);
                    if (pass == 0 && !(type & CL_DEVICE_TYPE_GPU)) continue;
                }
                *pp = ps[pi];
                *pd = ds[di];
                *pi_out = (int)pi;
                *di_out = (int)di;
                st = SEG_STATUS_OK;
                break;
            }
            have_any |= nd > 0;
            free(ds);
        }
    }
    free(ps);
    if (st != SEG_STATUS_OK) {
        if (auto_pick || !have_any)
            return seg_error(SEG_STATUS_NO_DEVICE, "opencl: no OpenCL device found");
        return seg_error(SEG_STATUS_NO_DEVICE, "opencl: device %d.%d not found", platform, device);
    }
    return SEG_STATUS_OK;
}

/* ---- buffers ------------------------------------------------------------------------ */

static enum seg_status cl_buf_alloc(struct seg_backend *be, size_t nbytes, struct seg_buf *out)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    size_t n = nbytes < 4 ? 4 : nbytes;
    if (n > c->max_alloc)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY,
                         "opencl: buffer of %zu bytes exceeds CL_DEVICE_MAX_MEM_ALLOC_SIZE (%zu)",
                         nbytes, c->max_alloc);
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c->context, CL_MEM_READ_WRITE, n, NULL, &err);
    if (err == CL_INVALID_BUFFER_SIZE) err = CL_MEM_OBJECT_ALLOCATION_FAILURE;
    SEG_CL_CHECK(err, "clCreateBuffer", "buf_alloc");
    out->handle = m;
    out->size = nbytes;
    return SEG_STATUS_OK;
}

static void cl_buf_free(struct seg_backend *be, struct seg_buf *b)
{
    (void)be;
    if (b && b->handle) clReleaseMemObject((cl_mem)b->handle);
    if (b) {
        b->handle = NULL;
        b->size = 0;
    }
}

static void CL_CALLBACK free_staging(cl_event ev, cl_int status, void *p)
{
    (void)ev;
    (void)status;
    free(p);
}

/* Non-blocking: the data goes to a host copy that lives until the write has completed, so
 * the caller's memory is free at once and the host never waits for queued work here. */
static enum seg_status cl_buf_write(struct seg_backend *be, struct seg_buf *dst, size_t off,
                                    const void *src, size_t n)
{
    if (n == 0) return SEG_STATUS_OK;
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    void *copy = malloc(n);
    if (!copy)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: buf_write: out of host memory");
    memcpy(copy, src, n);
    cl_event ev = NULL;
    cl_int err = clEnqueueWriteBuffer(c->queue, (cl_mem)dst->handle, CL_FALSE, off, n, copy, 0, NULL, &ev);
    if (err == CL_SUCCESS)
        err = clSetEventCallback(ev, CL_COMPLETE, free_staging, copy);
    if (err != CL_SUCCESS) {
        /* the copy may still be read by an enqueued write: drain before freeing it */
        if (ev) clWaitForEvents(1, &ev);
        be->counts.host_syncs += ev != NULL;
        free(copy);
    }
    if (ev) clReleaseEvent(ev);
    if (err != CL_SUCCESS) return seg_cl_fail(err, "clEnqueueWriteBuffer", "buf_write");
    return SEG_STATUS_OK;
}

static enum seg_status cl_buf_read(struct seg_backend *be, const struct seg_buf *src, size_t off,
                                   void *dst, size_t n)
{
    if (n == 0) return SEG_STATUS_OK;
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    be->counts.host_syncs++; /* a blocking read waits for the queued work */
    SEG_CL_CALL(clEnqueueReadBuffer, "buf_read", c->queue, (cl_mem)src->handle, CL_TRUE, off, n,
                dst, 0, NULL, NULL);
    return SEG_STATUS_OK;
}

static enum seg_status cl_buf_copy(struct seg_backend *be, struct seg_buf *dst, size_t doff,
                                   const struct seg_buf *src, size_t soff, size_t n)
{
    if (n == 0) return SEG_STATUS_OK;
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    SEG_CL_CALL(clEnqueueCopyBuffer, "buf_copy", c->queue, (cl_mem)src->handle,
                (cl_mem)dst->handle, soff, doff, n, 0, NULL, NULL);
    return SEG_STATUS_OK;
}

static enum seg_status cl_sync(struct seg_backend *be)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    be->counts.host_syncs++;
    SEG_CL_CALL(clFinish, "sync", c->queue);
    return SEG_STATUS_OK;
}

/* ---- lifetime ------------------------------------------------------------------------ */

static void cl_ctx_free(struct seg_cl_ctx *c)
{
    if (!c) return;
    if (c->queue) clFinish(c->queue);
    if (c->tstart) clReleaseEvent(c->tstart);
    seg_cl_programs_release(c);
    if (c->scratch) clReleaseMemObject(c->scratch);
    if (c->dummy) clReleaseMemObject(c->dummy);
    if (c->queue) clReleaseCommandQueue(c->queue);
    if (c->context) {
        /* CLBlast keeps compiled programs (which hold the context) in a process-wide
         * cache; drop them so the context can go. Others rebuild on their next call. */
        CLBlastClearCache();
        clReleaseContext(c->context);
    }
    free(c);
}

static void cl_destroy(struct seg_backend *be)
{
    if (!be) return;
    cl_ctx_free(seg_cl_ctx_of(be));
    free(be);
}

static const seg_kernel_fn cl_kernels[SEG_OP_COUNT] = {
    [SEG_OP_FILL] = seg_cl_fill,
    [SEG_OP_CAST] = seg_cl_cast,
    [SEG_OP_BINARY] = seg_cl_binary,
    [SEG_OP_EXPAND] = seg_cl_expand,
    [SEG_OP_UNARY] = seg_cl_unary,
    [SEG_OP_UNARY_BWD] = seg_cl_unary_bwd,
    [SEG_OP_WHERE] = seg_cl_where,
    [SEG_OP_REDUCE] = seg_cl_reduce,
    [SEG_OP_ARGREDUCE] = seg_cl_argreduce,
    [SEG_OP_SOFTMAX] = seg_cl_softmax,
    [SEG_OP_SOFTMAX_BWD] = seg_cl_softmax_bwd,
    [SEG_OP_CROSS_ENTROPY] = seg_cl_cross_entropy,
    [SEG_OP_CROSS_ENTROPY_BWD] = seg_cl_cross_entropy_bwd,
    [SEG_OP_MATMUL] = seg_cl_matmul,
    [SEG_OP_IM2COL] = seg_cl_im2col,
    [SEG_OP_COL2IM] = seg_cl_col2im,
    [SEG_OP_BATCHNORM_STATS] = seg_cl_batchnorm_stats,
    [SEG_OP_BATCHNORM] = seg_cl_batchnorm,
    [SEG_OP_BATCHNORM_BWD] = seg_cl_batchnorm_bwd,
    [SEG_OP_MAXPOOL2D] = seg_cl_maxpool2d,
    [SEG_OP_MAXPOOL2D_BWD] = seg_cl_maxpool2d_bwd,
    [SEG_OP_RESIZE_BILINEAR] = seg_cl_resize_bilinear,
    [SEG_OP_RESIZE_BILINEAR_BWD] = seg_cl_resize_bilinear_bwd,
    [SEG_OP_RESIZE_NEAREST] = seg_cl_resize_nearest,
    [SEG_OP_ONE_HOT] = seg_cl_one_hot,
    [SEG_OP_GATHER] = seg_cl_gather,
    [SEG_OP_SCATTER_ADD] = seg_cl_scatter_add,
    [SEG_OP_SLICE] = seg_cl_slice,
    [SEG_OP_SLICE_ASSIGN] = seg_cl_slice_assign,
    [SEG_OP_PERMUTE] = seg_cl_permute,
    [SEG_OP_SORT] = seg_cl_sort,
    [SEG_OP_CUMSUM] = seg_cl_cumsum,
    [SEG_OP_RNG_UNIFORM] = seg_cl_rng_uniform,
    [SEG_OP_SGD_STEP] = seg_cl_sgd_step,
    [SEG_OP_ADAM_STEP] = seg_cl_adam_step,
    [SEG_OP_NONFINITE_ANY] = seg_cl_nonfinite_any,
    [SEG_OP_PEAK_FMA] = seg_cl_peak_fma,
    [SEG_OP_CONV2D_DIRECT] = seg_cl_conv2d_direct,
};
_Static_assert(sizeof cl_kernels / sizeof cl_kernels[0] == SEG_OP_COUNT,
               "cl_kernels must have one entry per op in ops.def");

static const struct seg_backend_iface cl_iface = {
    .name = "opencl",
    .destroy = cl_destroy,
    .buf_alloc = cl_buf_alloc,
    .buf_free = cl_buf_free,
    .buf_write = cl_buf_write,
    .buf_read = cl_buf_read,
    .buf_copy = cl_buf_copy,
    .sync = cl_sync,
    .kernels = cl_kernels,
    .timer_start = seg_cl_timer_start,
    .timer_stop = seg_cl_timer_stop,
    .tune = seg_cl_tune,
};

static enum seg_status cl_ctx_init(struct seg_cl_ctx *c)
{
    cl_int err = CL_SUCCESS;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)c->platform, 0};
    c->context = clCreateContext(props, 1, &c->device, NULL, NULL, &err);
    SEG_CL_CHECK(err, "clCreateContext", "backend creation");
    /* no profiling until a device timer asks for it (cl_timer.c) */
    c->queue = clCreateCommandQueue(c->context, c->device, 0, &err);
    c->profiling = false;
    SEG_CL_CHECK(err, "clCreateCommandQueue", "backend creation");
    c->dummy = clCreateBuffer(c->context, CL_MEM_READ_WRITE, 16, NULL, &err);
    SEG_CL_CHECK(err, "clCreateBuffer", "backend creation");

    cl_str(c->device, CL_DEVICE_NAME, c->device_name, sizeof c->device_name);
    cl_str(c->device, CL_DRIVER_VERSION, c->driver_version, sizeof c->driver_version);
    cl_platform_str(c->platform, CL_PLATFORM_VERSION, c->platform_version,
                    sizeof c->platform_version);
    SEG_CL_CALL(clGetDeviceInfo, "backend creation", c->device, CL_DEVICE_MAX_WORK_GROUP_SIZE,
                sizeof c->max_wg, &c->max_wg, NULL);
    cl_ulong max_alloc = 0;
    SEG_CL_CALL(clGetDeviceInfo, "backend creation", c->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE,
                sizeof max_alloc, &max_alloc, NULL);
    c->max_alloc = (size_t)max_alloc;
    SEG_CL_CALL(clGetDeviceInfo, "backend creation", c->device, CL_DEVICE_LOCAL_MEM_SIZE,
                sizeof c->local_mem, &c->local_mem, NULL);
    cl_uint vw = 1;
    if (clGetDeviceInfo(c->device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof vw, &vw, NULL) !=
        CL_SUCCESS)
        vw = 1;
    c->peak_vw = vw >= 16 ? 16 : vw >= 8 ? 8 : vw >= 4 ? 4 : 1;

    seg_cl_tuning_init(c);
    seg_cl_cache_init(c);
    return SEG_STATUS_OK;
}

enum seg_status seg_cl_backend_create(int platform, int device, struct seg_backend **out)
{
    *out = NULL;
    cl_platform_id p = NULL;
    cl_device_id d = NULL;
    int pi = 0, di = 0;
    SEG_CL_TRY(cl_pick(platform, device, &p, &d, &pi, &di));

    struct seg_backend *be = calloc(1, sizeof *be);
    struct seg_cl_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: out of host memory");
    }
    c->platform = p;
    c->device = d;
    enum seg_status st = cl_ctx_init(c);
    if (st != SEG_STATUS_OK) {
        cl_ctx_free(c);
        free(be);
        return st;
    }
    be->iface = &cl_iface;
    snprintf(be->gemm_kernel, sizeof be->gemm_kernel, "CLBlast SGEMM");
    /* Each conv shape's forward algorithm is measured at its first use (src/core/conv_algo.c).
     * Without a cache directory: the direct kernel on CPU devices (on PoCL its 3x3 forward is
     * 5-7x faster than im2col + CLBlast, bench conv), CLBlast's tuned GEMM elsewhere. */
    be->conv_algo = SEG_CONV_ALGO_AUTO;
    be->ctx = c;
    cl_fill_info(p, d, pi, di, &be->info);
    be->conv_direct_default = be->info.is_cpu;
    seg_cl_tune_load(be);
    *out = be;
    return SEG_STATUS_OK;
}
