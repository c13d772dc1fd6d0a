/* callcount.c: an LD_PRELOAD shim that counts the OpenCL and Vulkan calls of a process
 * (syncs, allocations, dispatches) and writes them as JSON to $SEGDA_CALLCOUNT_OUT at exit.
 *
 * The exported symbols interpose the loaders' (libOpenCL.so.1, libvulkan.so.1) and forward
 * to them through dlsym(RTLD_NEXT). vkGetInstanceProcAddr / vkGetDeviceProcAddr are wrapped
 * too: for a counted name they hand out the wrapper here, which forwards to the loader's
 * exported trampoline (that dispatches on the handle, so it is right for any device).
 *
 * Every call lands in one of two buckets by its caller (dladdr of the return address):
 * "clblast" when the call comes from libclblast, "segda" otherwise, so that GEMM library
 * traffic can be told from the backend's own. Counters are relaxed atomics: the counts are
 * only read at exit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Built with either API or both (CALLCOUNT_OPENCL, CALLCOUNT_VULKAN from CMake). */
#ifdef CALLCOUNT_OPENCL
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#endif
#ifdef CALLCOUNT_VULKAN
#include <vulkan/vulkan.h>
#endif

/* X(counter name). Calls with a blocking flag get two counters; byte totals ride along. */
#define COUNTERS(X)                                                                         \
    X(clFinish) X(clFlush) X(clWaitForEvents)                                                 \
    X(clEnqueueReadBuffer_blocking) X(clEnqueueReadBuffer_nonblocking) X(clEnqueueReadBuffer_bytes) \
    X(clEnqueueWriteBuffer_blocking) X(clEnqueueWriteBuffer_nonblocking) X(clEnqueueWriteBuffer_bytes) \
    X(clEnqueueMapBuffer_blocking) X(clEnqueueMapBuffer_nonblocking)                          \
    X(clEnqueueCopyBuffer) X(clEnqueueFillBuffer)                                             \
    X(clCreateBuffer) X(clReleaseMemObject) X(clEnqueueNDRangeKernel)                         \
    X(vkQueueSubmit) X(vkWaitForFences) X(vkGetFenceStatus) X(vkQueueWaitIdle) X(vkDeviceWaitIdle) \
    X(vkAllocateMemory) X(vkFreeMemory) X(vkCreateBuffer)                                     \
    X(vkAllocateDescriptorSets) X(vkResetDescriptorPool) X(vkUpdateDescriptorSets)            \
    X(vkAllocateCommandBuffers) X(vkBeginCommandBuffer)                                       \
    X(vkCmdPipelineBarrier) X(vkCmdDispatch) X(vkCmdCopyBuffer)

enum {
#define X(n) C_##n,
    COUNTERS(X)
#undef X
    C_COUNT
};
static const char *const names[C_COUNT] = {
#define X(n) #n,
    COUNTERS(X)
#undef X
};

enum { B_SEGDA, B_CLBLAST, B_COUNT };
static const char *const bucket_names[B_COUNT] = {"segda", "clblast"};
static _Atomic uint64_t counts[B_COUNT][C_COUNT];
static atomic_bool any_counted;

static int bucket_of(const void *ret)
{
    Dl_info info;
    if (dladdr(ret, &info) && info.dli_fname && strstr(info.dli_fname, "libclblast"))
        return B_CLBLAST;
    return B_SEGDA;
}

static void add(const void *ret, int c, uint64_t n)
{
    atomic_fetch_add_explicit(&counts[bucket_of(ret)][c], n, memory_order_relaxed);
    atomic_store_explicit(&any_counted, true, memory_order_relaxed);
}
#define COUNT(c) add(__builtin_return_address(0), C_##c, 1)
#define COUNT_N(c, n) add(__builtin_return_address(0), C_##c, (n))

/* The next definition of a symbol (the loader's). A missing one is fatal: the process
 * called it, so it linked a library that should have it. */
static void *next(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        fprintf(stderr, "callcount: no next definition of %s\n", name);
        abort();
    }
    return p;
}
/* The real function, looked up once (a benign race: every thread finds the same pointer). */
#define REAL(fn)                                                                            \
    static _Atomic(void *) real_p;                                                           \
    void *rp_ = atomic_load_explicit(&real_p, memory_order_relaxed);                         \
    if (!rp_) {                                                                              \
        rp_ = next(#fn);                                                                     \
        atomic_store_explicit(&real_p, rp_, memory_order_relaxed);                           \
    }                                                                                        \
    PFN_##fn real = (PFN_##fn)rp_

/* ---- OpenCL ------------------------------------------------------------------------ */
#ifdef CALLCOUNT_OPENCL
/* The OpenCL headers have no PFN_ types for the 1.2 API: declare the ones used. */
typedef cl_int (*PFN_clFinish)(cl_command_queue);
typedef cl_int (*PFN_clFlush)(cl_command_queue);
typedef cl_int (*PFN_clWaitForEvents)(cl_uint, const cl_event *);
typedef cl_int (*PFN_clEnqueueReadBuffer)(cl_command_queue, cl_mem, cl_bool, size_t, size_t, void *,
                                          cl_uint, const cl_event *, cl_event *);
typedef cl_int (*PFN_clEnqueueWriteBuffer)(cl_command_queue, cl_mem, cl_bool, size_t, size_t,
                                           const void *, cl_uint, const cl_event *, cl_event *);
typedef void *(*PFN_clEnqueueMapBuffer)(cl_command_queue, cl_mem, cl_bool, cl_map_flags, size_t, size_t,
                                        cl_uint, const cl_event *, cl_event *, cl_int *);
typedef cl_int (*PFN_clEnqueueCopyBuffer)(cl_command_queue, cl_mem, cl_mem, size_t, size_t, size_t,
                                          cl_uint, const cl_event *, cl_event *);
typedef cl_int (*PFN_clEnqueueFillBuffer)(cl_command_queue, cl_mem, const void *, size_t, size_t, size_t,
                                          cl_uint, const cl_event *, cl_event *);
typedef cl_mem (*PFN_clCreateBuffer)(cl_context, cl_mem_flags, size_t, void *, cl_int *);
typedef cl_int (*PFN_clReleaseMemObject)(cl_mem);
typedef cl_int (*PFN_clEnqueueNDRangeKernel)(cl_command_queue, cl_kernel, cl_uint, const size_t *,
                                             const size_t *, const size_t *, cl_uint, const cl_event *,
                                             cl_event *);

CL_API_ENTRY cl_int CL_API_CALL clFinish(cl_command_queue q)
{
    REAL(clFinish);
    COUNT(clFinish);
    return real(q);
}

CL_API_ENTRY cl_int CL_API_CALL clFlush(cl_command_queue q)
{
    REAL(clFlush);
    COUNT(clFlush);
    return real(q);
}

CL_API_ENTRY cl_int CL_API_CALL clWaitForEvents(cl_uint n, const cl_event *ev)
{
    REAL(clWaitForEvents);
    COUNT(clWaitForEvents);
    return real(n, ev);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueReadBuffer(cl_command_queue q, cl_mem b, cl_bool blocking, size_t off,
                                                    size_t size, void *ptr, cl_uint nw, const cl_event *wl,
                                                    cl_event *ev)
{
    REAL(clEnqueueReadBuffer);
    if (blocking)
        COUNT(clEnqueueReadBuffer_blocking);
    else
        COUNT(clEnqueueReadBuffer_nonblocking);
    COUNT_N(clEnqueueReadBuffer_bytes, size);
    return real(q, b, blocking, off, size, ptr, nw, wl, ev);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueWriteBuffer(cl_command_queue q, cl_mem b, cl_bool blocking, size_t off,
                                                     size_t size, const void *ptr, cl_uint nw,
                                                     const cl_event *wl, cl_event *ev)
{
    REAL(clEnqueueWriteBuffer);
    if (blocking)
        COUNT(clEnqueueWriteBuffer_blocking);
    else
        COUNT(clEnqueueWriteBuffer_nonblocking);
    COUNT_N(clEnqueueWriteBuffer_bytes, size);
    return real(q, b, blocking, off, size, ptr, nw, wl, ev);
}

CL_API_ENTRY void *CL_API_CALL clEnqueueMapBuffer(cl_command_queue q, cl_mem b, cl_bool blocking,
                                                  cl_map_flags flags, size_t off, size_t size, cl_uint nw,
                                                  const cl_event *wl, cl_event *ev, cl_int *err)
{
    REAL(clEnqueueMapBuffer);
    if (blocking)
        COUNT(clEnqueueMapBuffer_blocking);
    else
        COUNT(clEnqueueMapBuffer_nonblocking);
    return real(q, b, blocking, flags, off, size, nw, wl, ev, err);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueCopyBuffer(cl_command_queue q, cl_mem src, cl_mem dst, size_t so,
                                                    size_t dof, size_t size, cl_uint nw, const cl_event *wl,
                                                    cl_event *ev)
{
    REAL(clEnqueueCopyBuffer);
    COUNT(clEnqueueCopyBuffer);
    return real(q, src, dst, so, dof, size, nw, wl, ev);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueFillBuffer(cl_command_queue q, cl_mem b, const void *pat, size_t psize,
                                                    size_t off, size_t size, cl_uint nw, const cl_event *wl,
                                                    cl_event *ev)
{
    REAL(clEnqueueFillBuffer);
    COUNT(clEnqueueFillBuffer);
    return real(q, b, pat, psize, off, size, nw, wl, ev);
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateBuffer(cl_context ctx, cl_mem_flags flags, size_t size, void *host,
                                               cl_int *err)
{
    REAL(clCreateBuffer);
    COUNT(clCreateBuffer);
    return real(ctx, flags, size, host, err);
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseMemObject(cl_mem b)
{
    REAL(clReleaseMemObject);
    COUNT(clReleaseMemObject);
    return real(b);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dim,
                                                       const size_t *goff, const size_t *gsize,
                                                       const size_t *lsize, cl_uint nw, const cl_event *wl,
                                                       cl_event *ev)
{
    REAL(clEnqueueNDRangeKernel);
    COUNT(clEnqueueNDRangeKernel);
    return real(q, k, dim, goff, gsize, lsize, nw, wl, ev);
}

#endif /* CALLCOUNT_OPENCL */

/* ---- Vulkan ------------------------------------------------------------------------ */
#ifdef CALLCOUNT_VULKAN
VKAPI_ATTR VkResult VKAPI_CALL vkQueueSubmit(VkQueue q, uint32_t n, const VkSubmitInfo *s, VkFence f)
{
    REAL(vkQueueSubmit);
    COUNT(vkQueueSubmit);
    return real(q, n, s, f);
}

VKAPI_ATTR VkResult VKAPI_CALL vkWaitForFences(VkDevice d, uint32_t n, const VkFence *f, VkBool32 all,
                                               uint64_t timeout)
{
    REAL(vkWaitForFences);
    COUNT(vkWaitForFences);
    return real(d, n, f, all, timeout);
}

VKAPI_ATTR VkResult VKAPI_CALL vkGetFenceStatus(VkDevice d, VkFence f)
{
    REAL(vkGetFenceStatus);
    COUNT(vkGetFenceStatus);
    return real(d, f);
}

VKAPI_ATTR VkResult VKAPI_CALL vkQueueWaitIdle(VkQueue q)
{
    REAL(vkQueueWaitIdle);
    COUNT(vkQueueWaitIdle);
    return real(q);
}

VKAPI_ATTR VkResult VKAPI_CALL vkDeviceWaitIdle(VkDevice d)
{
    REAL(vkDeviceWaitIdle);
    COUNT(vkDeviceWaitIdle);
    return real(d);
}

VKAPI_ATTR VkResult VKAPI_CALL vkAllocateMemory(VkDevice d, const VkMemoryAllocateInfo *info,
                                                const VkAllocationCallbacks *a, VkDeviceMemory *m)
{
    REAL(vkAllocateMemory);
    COUNT(vkAllocateMemory);
    return real(d, info, a, m);
}

VKAPI_ATTR void VKAPI_CALL vkFreeMemory(VkDevice d, VkDeviceMemory m, const VkAllocationCallbacks *a)
{
    REAL(vkFreeMemory);
    COUNT(vkFreeMemory);
    real(d, m, a);
}

VKAPI_ATTR VkResult VKAPI_CALL vkCreateBuffer(VkDevice d, const VkBufferCreateInfo *info,
                                              const VkAllocationCallbacks *a, VkBuffer *b)
{
    REAL(vkCreateBuffer);
    COUNT(vkCreateBuffer);
    return real(d, info, a, b);
}

VKAPI_ATTR VkResult VKAPI_CALL vkAllocateDescriptorSets(VkDevice d, const VkDescriptorSetAllocateInfo *info,
                                                        VkDescriptorSet *sets)
{
    REAL(vkAllocateDescriptorSets);
    COUNT(vkAllocateDescriptorSets);
    return real(d, info, sets);
}

VKAPI_ATTR VkResult VKAPI_CALL vkResetDescriptorPool(VkDevice d, VkDescriptorPool p,
                                                     VkDescriptorPoolResetFlags flags)
{
    REAL(vkResetDescriptorPool);
    COUNT(vkResetDescriptorPool);
    return real(d, p, flags);
}

VKAPI_ATTR void VKAPI_CALL vkUpdateDescriptorSets(VkDevice d, uint32_t nw, const VkWriteDescriptorSet *w,
                                                  uint32_t nc, const VkCopyDescriptorSet *c)
{
    REAL(vkUpdateDescriptorSets);
    COUNT(vkUpdateDescriptorSets);
    real(d, nw, w, nc, c);
}

VKAPI_ATTR VkResult VKAPI_CALL vkAllocateCommandBuffers(VkDevice d, const VkCommandBufferAllocateInfo *info,
                                                        VkCommandBuffer *cb)
{
    REAL(vkAllocateCommandBuffers);
    COUNT(vkAllocateCommandBuffers);
    return real(d, info, cb);
}

VKAPI_ATTR VkResult VKAPI_CALL vkBeginCommandBuffer(VkCommandBuffer cb, const VkCommandBufferBeginInfo *info)
{
    REAL(vkBeginCommandBuffer);
    COUNT(vkBeginCommandBuffer);
    return real(cb, info);
}

VKAPI_ATTR void VKAPI_CALL vkCmdPipelineBarrier(VkCommandBuffer cb, VkPipelineStageFlags src,
                                                VkPipelineStageFlags dst, VkDependencyFlags dep, uint32_t nm,
                                                const VkMemoryBarrier *m, uint32_t nb,
                                                const VkBufferMemoryBarrier *b, uint32_t ni,
                                                const VkImageMemoryBarrier *im)
{
    REAL(vkCmdPipelineBarrier);
    COUNT(vkCmdPipelineBarrier);
    real(cb, src, dst, dep, nm, m, nb, b, ni, im);
}

VKAPI_ATTR void VKAPI_CALL vkCmdDispatch(VkCommandBuffer cb, uint32_t x, uint32_t y, uint32_t z)
{
    REAL(vkCmdDispatch);
    COUNT(vkCmdDispatch);
    real(cb, x, y, z);
}

VKAPI_ATTR void VKAPI_CALL vkCmdCopyBuffer(VkCommandBuffer cb, VkBuffer src, VkBuffer dst, uint32_t n,
                                           const VkBufferCopy *r)
{
    REAL(vkCmdCopyBuffer);
    COUNT(vkCmdCopyBuffer);
    real(cb, src, dst, n, r);
}

/* The counted Vulkan entry points by name: what the proc-address wrappers hand out. */
static PFN_vkVoidFunction counted_vk(const char *name)
{
    static const struct {
        const char *name;
        PFN_vkVoidFunction fn;
    } table[] = {
#define E(fn) {#fn, (PFN_vkVoidFunction)fn},
        E(vkQueueSubmit) E(vkWaitForFences) E(vkGetFenceStatus) E(vkQueueWaitIdle) E(vkDeviceWaitIdle)
        E(vkAllocateMemory) E(vkFreeMemory) E(vkCreateBuffer) E(vkAllocateDescriptorSets)
        E(vkResetDescriptorPool) E(vkUpdateDescriptorSets) E(vkAllocateCommandBuffers)
        E(vkBeginCommandBuffer) E(vkCmdPipelineBarrier) E(vkCmdDispatch) E(vkCmdCopyBuffer)
        E(vkGetDeviceProcAddr) E(vkGetInstanceProcAddr)
#undef E
    };
    for (size_t i = 0; name && i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(name, table[i].name))
            return table[i].fn;
    return NULL;
}

/* The real address must exist (the device supports the call) before the wrapper is handed out. */
VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vkGetDeviceProcAddr(VkDevice d, const char *name)
{
    REAL(vkGetDeviceProcAddr);
    PFN_vkVoidFunction fn = real(d, name), mine;
    return fn && (mine = counted_vk(name)) ? mine : fn;
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vkGetInstanceProcAddr(VkInstance inst, const char *name)
{
    REAL(vkGetInstanceProcAddr);
    PFN_vkVoidFunction fn = real(inst, name), mine;
    return fn && (mine = counted_vk(name)) ? mine : fn;
}

#endif /* CALLCOUNT_VULKAN */

/* ---- report -------------------------------------------------------------------------- */
/* Nothing counted (an Open MPI helper that inherited LD_PRELOAD, a tool run): no file, so a
 * driver that reads it cannot mistake another process's empty counts for the trainer's. */
__attribute__((destructor)) static void callcount_report(void)
{
    const char *path = getenv("SEGDA_CALLCOUNT_OUT");
    if (!path || !*path || !atomic_load(&any_counted))
        return;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "callcount: cannot write %s\n", path);
        return;
    }
    fprintf(f, "{\"pid\": %ld", (long)getpid());
    for (int b = 0; b < B_COUNT; b++) {
        fprintf(f, ",\n \"%s\": {", bucket_names[b]);
        for (int c = 0; c < C_COUNT; c++)
            fprintf(f, "%s\"%s\": %llu", c ? ", " : "", names[c],
                    (unsigned long long)atomic_load(&counts[b][c]));
        fputc('}', f);
    }
    fputs("}\n", f);
    fclose(f);
}
