/* vk_backend.c: the Vulkan compute backend: instance, device, info, vtable and kernel table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vulkan/vk_internal.h"

static const seg_kernel_fn vk_impl[SEG_OP_COUNT] = {
    [SEG_OP_FILL] = vk_fill,
    [SEG_OP_CAST] = vk_cast,
    [SEG_OP_BINARY] = vk_binary,
    [SEG_OP_EXPAND] = vk_expand,
    [SEG_OP_UNARY] = vk_unary,
    [SEG_OP_UNARY_BWD] = vk_unary_bwd,
    [SEG_OP_WHERE] = vk_where,
    [SEG_OP_REDUCE] = vk_reduce,
    [SEG_OP_ARGREDUCE] = vk_argreduce,
    [SEG_OP_SOFTMAX] = vk_softmax,
    [SEG_OP_SOFTMAX_BWD] = vk_softmax_bwd,
    [SEG_OP_CROSS_ENTROPY] = vk_cross_entropy,
    [SEG_OP_CROSS_ENTROPY_BWD] = vk_cross_entropy_bwd,
    [SEG_OP_MATMUL] = vk_matmul,
    [SEG_OP_IM2COL] = vk_im2col,
    [SEG_OP_COL2IM] = vk_col2im,
    [SEG_OP_BATCHNORM_STATS] = vk_batchnorm_stats,
    [SEG_OP_BATCHNORM] = vk_batchnorm,
    [SEG_OP_BATCHNORM_BWD] = vk_batchnorm_bwd,
    [SEG_OP_MAXPOOL2D] = vk_maxpool2d,
    [SEG_OP_MAXPOOL2D_BWD] = vk_maxpool2d_bwd,
    [SEG_OP_RESIZE_BILINEAR] = vk_resize_bilinear,
    [SEG_OP_RESIZE_BILINEAR_BWD] = vk_resize_bilinear_bwd,
    [SEG_OP_RESIZE_NEAREST] = vk_resize_nearest,
    [SEG_OP_ONE_HOT] = vk_one_hot,
    [SEG_OP_GATHER] = vk_gather,
    [SEG_OP_SCATTER_ADD] = vk_scatter_add,
    [SEG_OP_SLICE] = vk_slice,
    [SEG_OP_SLICE_ASSIGN] = vk_slice_assign,
    [SEG_OP_PERMUTE] = vk_permute,
    [SEG_OP_SORT] = vk_sort,
    [SEG_OP_CUMSUM] = vk_cumsum,
    [SEG_OP_RNG_UNIFORM] = vk_rng_uniform,
    [SEG_OP_SGD_STEP] = vk_sgd_step,
    [SEG_OP_ADAM_STEP] = vk_adam_step,
    [SEG_OP_NONFINITE_ANY] = vk_nonfinite_any,
    [SEG_OP_PEAK_FMA] = vk_peak_fma,
    [SEG_OP_CONV2D_DIRECT] = vk_conv2d_direct,
};
_Static_assert(sizeof vk_impl / sizeof vk_impl[0] == SEG_OP_COUNT,
               "vulkan kernel table must cover ops.def");

/* Every op passes through here: while its dispatches are recorded, the barrier tracking
 * knows which bindings it writes (its destinations) and which it only reads. */
static enum seg_status vk_run_op(struct seg_backend *be, const struct seg_op_args *a)
{
    struct vk_ctx *c = vk_ctx_of(be);
    if (!vk_impl[a->op])
        return seg_error(SEG_STATUS_UNSUPPORTED, "vulkan: op %d has no kernel", (int)a->op);
    c->op = a;
    enum seg_status st = vk_impl[a->op](be, a);
    c->op = NULL;
    return st;
}

static const seg_kernel_fn vk_kernels[SEG_OP_COUNT] = {[0 ... SEG_OP_COUNT - 1] = vk_run_op};

const char *vk_result_name(VkResult r)
{
    switch (r) {
#define VK_NAME(x) case x: return #x;
    VK_NAME(VK_SUCCESS)
    VK_NAME(VK_NOT_READY)
    VK_NAME(VK_TIMEOUT)
    VK_NAME(VK_EVENT_SET)
    VK_NAME(VK_EVENT_RESET)
    VK_NAME(VK_INCOMPLETE)
    VK_NAME(VK_ERROR_OUT_OF_HOST_MEMORY)
    VK_NAME(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    VK_NAME(VK_ERROR_INITIALIZATION_FAILED)
    VK_NAME(VK_ERROR_DEVICE_LOST)
    VK_NAME(VK_ERROR_MEMORY_MAP_FAILED)
    VK_NAME(VK_ERROR_LAYER_NOT_PRESENT)
    VK_NAME(VK_ERROR_EXTENSION_NOT_PRESENT)
    VK_NAME(VK_ERROR_FEATURE_NOT_PRESENT)
    VK_NAME(VK_ERROR_INCOMPATIBLE_DRIVER)
    VK_NAME(VK_ERROR_TOO_MANY_OBJECTS)
    VK_NAME(VK_ERROR_FORMAT_NOT_SUPPORTED)
    VK_NAME(VK_ERROR_FRAGMENTED_POOL)
    VK_NAME(VK_ERROR_UNKNOWN)
    VK_NAME(VK_ERROR_OUT_OF_POOL_MEMORY)
    VK_NAME(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    VK_NAME(VK_ERROR_FRAGMENTATION)
    VK_NAME(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
    VK_NAME(VK_PIPELINE_COMPILE_REQUIRED)
    VK_NAME(VK_ERROR_INVALID_SHADER_NV)
#undef VK_NAME
    default: return "VK_ERROR_(unknown)";
    }
}

enum seg_status vk_fail(VkResult r, const char *what, const char *where)
{
    enum seg_status s = SEG_STATUS_BACKEND;
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ||
        r == VK_ERROR_OUT_OF_POOL_MEMORY || r == VK_ERROR_FRAGMENTED_POOL ||
        r == VK_ERROR_FRAGMENTATION)
        s = SEG_STATUS_OUT_OF_MEMORY;
    return seg_error(s, "vulkan: %s failed: %s (%d) in %s", what, vk_result_name(r), (int)r,
                     where ? where : "?");
}

enum seg_status vk_check_trips(const struct vk_ctx *c, uint64_t trips, const char *where)
{
    if (c->loop_budget && trips + 64 > c->loop_budget)
        return seg_error(SEG_STATUS_UNSUPPORTED,
                         "vulkan: %s: about %llu loop iterations per invocation exceed this "
                         "driver's limit (%u)", where, (unsigned long long)trips, c->loop_budget);
    return SEG_STATUS_OK;
}

enum seg_status vk_check_u32(uint64_t n, const char *where)
{
    if (n >= 0x80000000ull)
        return seg_error(SEG_STATUS_UNSUPPORTED,
                         "vulkan: %s: %llu elements exceed the shaders' 31-bit indexing", where,
                         (unsigned long long)n);
    return SEG_STATUS_OK;
}

/* ---- instance and devices ------------------------------------------------------- */

static bool has_instance_ext(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    if (!e)
        return false;
    bool found = false;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(e[i].extensionName, name) == 0;
    free(e);
    return found;
}

bool vk_has_device_ext(VkPhysicalDevice p, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(p, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    if (!e)
        return false;
    bool found = false;
    if (vkEnumerateDeviceExtensionProperties(p, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(e[i].extensionName, name) == 0;
    free(e);
    return found;
}

static enum seg_status vk_instance_create(VkInstance *out)
{
    uint32_t version = VK_API_VERSION_1_0;
    PFN_vkEnumerateInstanceVersion ev =
        (PFN_vkEnumerateInstanceVersion)vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
    if (ev)
        ev(&version);
    if (version < VK_API_VERSION_1_1)
        return seg_error(SEG_STATUS_NO_DEVICE, "vulkan: the loader supports Vulkan %u.%u, 1.1 needed",
                         VK_API_VERSION_MAJOR(version), VK_API_VERSION_MINOR(version));
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "segda",
        .applicationVersion = 1,
        .pEngineName = "segda",
        .engineVersion = 1,
        .apiVersion = VK_API_VERSION_1_1,
    };
    const char *exts[1];
    uint32_t next = 0;
    VkInstanceCreateFlags flags = 0;
#ifdef VK_KHR_portability_enumeration
    if (has_instance_ext(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[next++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
#endif
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledExtensionCount = next,
        .ppEnabledExtensionNames = next ? exts : NULL,
    };
    VkResult r = vkCreateInstance(&ci, NULL, out);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return seg_error(SEG_STATUS_NO_DEVICE, "vulkan: no compatible driver (vkCreateInstance: %s)",
                         vk_result_name(r));
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkCreateInstance", "instance creation");
    return SEG_STATUS_OK;
}

static bool compute_family(VkPhysicalDevice p, uint32_t *family)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(p, &n, NULL);
    if (n == 0)
        return false;
    VkQueueFamilyProperties *q = calloc(n, sizeof *q);
    if (!q)
        return false;
    vkGetPhysicalDeviceQueueFamilyProperties(p, &n, q);
    int best = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || q[i].queueCount == 0)
            continue;
        /* a graphics+compute family first: it is the "universal" queue on every driver */
        if (best < 0 || ((q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) &&
                         !(q[best].queueFlags & VK_QUEUE_GRAPHICS_BIT)))
            best = (int)i;
    }
    free(q);
    if (best < 0)
        return false;
    *family = (uint32_t)best;
    return true;
}

/* The usable physical devices (Vulkan 1.1, a compute queue), in the loader's order. */
static enum seg_status usable_devices(VkInstance inst, VkPhysicalDevice **out, uint32_t *count)
{
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(inst, &n, NULL);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkEnumeratePhysicalDevices", "device enumeration");
    VkPhysicalDevice *all = calloc(n ? n : 1, sizeof *all);
    if (!all)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: out of host memory");
    r = vkEnumeratePhysicalDevices(inst, &n, all);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(all);
        return vk_fail(r, "vkEnumeratePhysicalDevices", "device enumeration");
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties pr;
        uint32_t fam;
        vkGetPhysicalDeviceProperties(all[i], &pr);
        if (pr.apiVersion >= VK_API_VERSION_1_1 && compute_family(all[i], &fam))
            all[k++] = all[i];
    }
    *out = all;
    *count = k;
    return SEG_STATUS_OK;
}

static const char *vendor_name(uint32_t id)
{
    switch (id) {
    case 0x1002: return "AMD";
    case 0x1010: return "ImgTec";
    case 0x10DE: return "NVIDIA";
    case 0x13B5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x8086: return "Intel";
    case 0x106B: return "Apple";
    case 0x10005: return "Mesa";
    }
    return NULL;
}

/* Streaming multiprocessors / compute units where a vendor extension tells (else 0). */
static uint32_t compute_units(VkPhysicalDevice p)
{
    if (vk_has_device_ext(p, VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME)) {
        VkPhysicalDeviceShaderSMBuiltinsPropertiesNV sm = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sm};
        vkGetPhysicalDeviceProperties2(p, &p2);
        return sm.shaderSMCount;
    }
    if (vk_has_device_ext(p, VK_AMD_SHADER_CORE_PROPERTIES_EXTENSION_NAME)) {
        VkPhysicalDeviceShaderCorePropertiesAMD core = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CORE_PROPERTIES_AMD};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &core};
        vkGetPhysicalDeviceProperties2(p, &p2);
        return core.shaderEngineCount * core.shaderArraysPerEngineCount * core.computeUnitsPerShaderArray;
    }
    return 0;
}

static void fill_info(VkInstance inst, VkPhysicalDevice p, int index, struct seg_device_info *info)
{
    memset(info, 0, sizeof *info);
    VkPhysicalDeviceProperties pr;
    vkGetPhysicalDeviceProperties(p, &pr);
    bool v12 = pr.apiVersion >= VK_API_VERSION_1_2;

    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    bool have_drv = v12 || vk_has_device_ext(p, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    if (have_drv)
        sg.pNext = &drv;
    VkPhysicalDeviceProperties2 pr2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    vkGetPhysicalDeviceProperties2(p, &pr2);

    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    bool have_f16 = v12 || vk_has_device_ext(p, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    if (have_f16) {
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16};
        vkGetPhysicalDeviceFeatures2(p, &f2);
    }

    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(p, &mp);
    uint64_t mem = 0;
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if ((mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && mp.memoryHeaps[i].size > mem)
            mem = mp.memoryHeaps[i].size;

    snprintf(info->backend, sizeof info->backend, "vulkan");
    snprintf(info->spec, sizeof info->spec, "vulkan:%d", index);
    snprintf(info->name, sizeof info->name, "%.127s", pr.deviceName);
    const char *vn = vendor_name(pr.vendorID);
    if (vn)
        snprintf(info->vendor, sizeof info->vendor, "%s", vn);
    else
        snprintf(info->vendor, sizeof info->vendor, "0x%04x", pr.vendorID);
    if (have_drv && drv.driverName[0])
        snprintf(info->driver, sizeof info->driver, "%.40s %.48s (Vulkan %u.%u.%u)", drv.driverName,
                 drv.driverInfo, VK_API_VERSION_MAJOR(pr.apiVersion),
                 VK_API_VERSION_MINOR(pr.apiVersion), VK_API_VERSION_PATCH(pr.apiVersion));
    else
        snprintf(info->driver, sizeof info->driver, "driver 0x%08x (Vulkan %u.%u.%u)",
                 pr.driverVersion, VK_API_VERSION_MAJOR(pr.apiVersion),
                 VK_API_VERSION_MINOR(pr.apiVersion), VK_API_VERSION_PATCH(pr.apiVersion));
    info->memory_bytes = mem;
    info->max_buffer_bytes = pr.limits.maxStorageBufferRange; /* and maxMemoryAllocationSize, once created */
    info->compute_units = compute_units(p);
    info->fp16 = have_f16 && f16.shaderFloat16;
    info->subgroup_size = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ? sg.subgroupSize : 0;
    info->is_cpu = pr.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    if (info->subgroup_size && vk_coopmat_probe(inst, p, info->subgroup_size))
        snprintf(info->matrix, sizeof info->matrix, "VK_NV fp16 16x16x16");
}

enum seg_status seg_vk_devices(struct seg_device_info *out, int max, int *count)
{
    *count = 0;
    VkInstance inst;
    enum seg_status st = vk_instance_create(&inst);
    if (st)
        return st;
    VkPhysicalDevice *devs = NULL;
    uint32_t n = 0;
    st = usable_devices(inst, &devs, &n);
    if (st == SEG_STATUS_OK) {
        for (uint32_t i = 0; i < n; i++)
            if (out && (int)i < max)
                fill_info(inst, devs[i], (int)i, &out[i]);
        *count = (int)n;
    }
    free(devs);
    vkDestroyInstance(inst, NULL);
    return st;
}

/* ---- backend ------------------------------------------------------------------- */

static void vk_ctx_destroy(struct vk_ctx *c)
{
    if (!c)
        return;
    if (c->dev) {
        vk_wait_all(c, "destroy");
        vkDeviceWaitIdle(c->dev);
        vk_timer_destroy(c);
        vk_pipeline_destroy(c);
        vk_command_destroy(c);
        vk_memory_destroy(c);
        vkDestroyDevice(c->dev, NULL);
    }
    if (c->instance)
        vkDestroyInstance(c->instance, NULL);
    free(c);
}

static void vk_destroy(struct seg_backend *be)
{
    if (!be)
        return;
    vk_ctx_destroy(be->ctx);
    free(be);
}

static const struct seg_backend_iface vk_iface = {
    .name = "vulkan",
    .destroy = vk_destroy,
    .buf_alloc = vk_buf_alloc,
    .buf_free = vk_buf_free,
    .buf_write = vk_buf_write,
    .buf_read = vk_buf_read,
    .buf_copy = vk_buf_copy,
    .sync = vk_sync,
    .kernels = vk_kernels,
    .timer_start = vk_timer_start,
    .timer_stop = vk_timer_stop,
    .tune = vk_tune,
    .set_matrix_gemm = vk_set_matrix_gemm,
};

/* Driver quirks, decided once from the device's identity. */
static void set_quirks(struct vk_ctx *c)
{
    bool llvmpipe = strncmp(c->props.deviceName, "llvmpipe", 8) == 0;
    if (c->props.apiVersion >= VK_API_VERSION_1_2 ||
        vk_has_device_ext(c->phys, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME)) {
        VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &drv};
        vkGetPhysicalDeviceProperties2(c->phys, &p2);
        llvmpipe = llvmpipe || drv.driverID == VK_DRIVER_ID_MESA_LLVMPIPE;
    }
    /* gallivm counts every loop iteration of a shader invocation against one limiter
     * (LP_MAX_TGSI_LOOP_ITERATIONS = 65535) and silently leaves the loops beyond it */
    c->loop_budget = llvmpipe ? 65535u : 0u;
    VkFormatProperties fp;
    vkGetPhysicalDeviceFormatProperties(c->phys, VK_FORMAT_R32_SFLOAT, &fp);
    c->max_texels = (fp.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT)
                        ? c->props.limits.maxTexelBufferElements : 0;
    /* the register GEMM needs a fixed subgroup of 4, 8 or 16 lanes and broadcast (ballot) */
    c->reg_lanes = 0;
    if (c->props.apiVersion >= VK_API_VERSION_1_1) {
        VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
        vkGetPhysicalDeviceProperties2(c->phys, &p2);
        bool ops = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                   (sg.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT);
        if (ops && (sg.subgroupSize == 4 || sg.subgroupSize == 8 || sg.subgroupSize == 16))
            c->reg_lanes = sg.subgroupSize;
        if (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT)
            c->coopmat_wg = vk_coopmat_probe(c->instance, c->phys, sg.subgroupSize);
    }
}

/* SEGDA_VK_GEMM (tiled | register | coopmat) forces the GEMM kernel; SEGDA_VK_TEXEL=0 turns
 * the texel views off (the register GEMM then reads storage buffers); SEGDA_VK_SPLITK=N
 * forces N K slices on gemm.comp: for tests and comparisons. coopmat: MATMUL on cooperative
 * matrices (fp16 inputs), convs on gemm.comp. */
static enum seg_status gemm_settings(struct vk_ctx *c)
{
    static const char *const kinds[] = {"tiled", "register", "coopmat"};
    const char *force = getenv("SEGDA_VK_GEMM"), *texel = getenv("SEGDA_VK_TEXEL");
    const char *standin = getenv("SEGDA_VK_COOPMAT_STANDIN"); /* test hook, vk_coopmat.c */
    c->gemm_force = NULL;
    if (!c->coopmat_wg && standin && *standin) {
        if (strcmp(standin, "simt") && strcmp(standin, "wrong"))
            return seg_error(SEG_STATUS_INVALID, "SEGDA_VK_COOPMAT_STANDIN=%s: expected simt or wrong", standin);
        c->coopmat_standin = !strcmp(standin, "simt") ? 1 : 2;
    }
    if (force && *force) {
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            if (!strcmp(force, kinds[i]))
                c->gemm_force = kinds[i];
        if (!c->gemm_force)
            return seg_error(SEG_STATUS_INVALID, "SEGDA_VK_GEMM=%s: expected tiled, register or coopmat", force);
        if (!strcmp(force, "register") && !c->reg_lanes)
            return seg_error(SEG_STATUS_UNSUPPORTED,
                             "SEGDA_VK_GEMM=register: %s cannot run the register GEMM (it needs a compute "
                             "subgroup of 4, 8 or 16 lanes with broadcast)", c->props.deviceName);
        if (!strcmp(force, "coopmat") && !c->coopmat_wg && !c->coopmat_standin)
            return seg_error(SEG_STATUS_UNSUPPORTED,
                             "SEGDA_VK_GEMM=coopmat: %s cannot run the cooperative-matrix GEMM (it needs "
                             "VK_NV_cooperative_matrix with a 16x16x16 fp16 x fp16 + fp32 subgroup shape, "
                             "shaderFloat16 and a workgroup of 4 subgroups)", c->props.deviceName);
    }

    if (texel && !strcmp(texel, "0"))
        c->max_texels = 0;
    const char *splitk = getenv("SEGDA_VK_SPLITK");
    c->splitk_force = -1;
    if (splitk && *splitk) {
        char *end;
        long v = strtol(splitk, &end, 10);
        if (*end || v < 0 || v > 64)
            return seg_error(SEG_STATUS_INVALID, "SEGDA_VK_SPLITK=%s: expected a number of K slices, 0 to 64", splitk);
        c->splitk_force = (int)v;
    }
    return SEG_STATUS_OK;
}

static enum seg_status vk_device_create(struct vk_ctx *c)
{
    float prio = 1.0f;
    VkDeviceQueueCreateInfo q = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = c->qfamily,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    const char *exts[4];
    uint32_t next = 0;
    /* required whenever a (MoltenVK-like) portability driver advertises it */
    if (vk_has_device_ext(c->phys, "VK_KHR_portability_subset"))
        exts[next++] = "VK_KHR_portability_subset";
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV, .cooperativeMatrix = VK_TRUE};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .pNext = &cm,
        .shaderFloat16 = VK_TRUE};
    if (c->coopmat_wg) {
        exts[next++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
        exts[next++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
    }
    VkDeviceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = c->coopmat_wg ? &f16 : NULL,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &q,
        .enabledExtensionCount = next,
        .ppEnabledExtensionNames = next ? exts : NULL,
    };
    VkResult r = vkCreateDevice(c->phys, &ci, NULL, &c->dev);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkCreateDevice", "backend creation");
    vkGetDeviceQueue(c->dev, c->qfamily, 0, &c->queue);
    return SEG_STATUS_OK;
}

enum seg_status seg_vk_backend_create(int device, struct seg_backend **out)
{
    *out = NULL;
    struct vk_ctx *c = calloc(1, sizeof *c);
    struct seg_backend *be = calloc(1, sizeof *be);
    if (!c || !be) {
        free(c);
        free(be);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: out of host memory");
    }
    c->counts = &be->counts;
    enum seg_status st = vk_instance_create(&c->instance);
    if (st)
        goto fail;
    VkPhysicalDevice *devs = NULL;
    uint32_t n = 0;
    st = usable_devices(c->instance, &devs, &n);
    if (st)
        goto fail;
    if (device < 0 || (uint32_t)device >= n) {
        free(devs);
        st = seg_error(SEG_STATUS_NO_DEVICE, "vulkan: no device %d (%u usable Vulkan 1.1 devices)",
                       device, n);
        goto fail;
    }
    c->phys = devs[device];
    free(devs);
    vkGetPhysicalDeviceProperties(c->phys, &c->props);
    vkGetPhysicalDeviceMemoryProperties(c->phys, &c->memprops);
    compute_family(c->phys, &c->qfamily);
    fill_info(c->instance, c->phys, device, &be->info);
    set_quirks(c);
    if ((st = gemm_settings(c)))
        goto fail;
    if (c->coopmat_standin)
        snprintf(be->info.matrix, sizeof be->info.matrix, "stand-in (test hook)");

    if ((st = vk_device_create(c)) || (st = vk_command_init(c)) || (st = vk_memory_init(c)) ||
        (st = vk_pipeline_init(c)) || (st = vk_timer_init(c)))
        goto fail;

    be->iface = &vk_iface;
    /* Each conv shape's forward algorithm is measured at its first use (src/core/conv_algo.c);
     * im2col + GEMM without a cache directory. */
    be->conv_algo = SEG_CONV_ALGO_AUTO;
    be->conv_direct_default = false;
    be->ctx = c;
    be->info.max_buffer_bytes = c->max_range < c->max_alloc ? c->max_range : c->max_alloc;
    vk_tune_load(be);
    vk_gemm_describe(be);
    *out = be;
    return SEG_STATUS_OK;
fail:
    vk_ctx_destroy(c);
    free(be);
    return st;
}
