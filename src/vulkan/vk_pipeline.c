/* vk_pipeline.c: the shared descriptor-set / pipeline layouts, compute pipelines created
 * lazily (once per shader variant) with their specialization constants, and the
 * VkPipelineCache persisted on disk:
 *   $SEGDA_CACHE_DIR, else $XDG_CACHE_HOME/segda, else $HOME/.cache/segda; then vulkan/.
 * The file is written to a temporary name then renamed; any error disables the cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vulkan/vk_internal.h"
#include "data/data.h" /* seg_file_write_atomic */

/* ---- tuning: specialization constants per shader ------------------------------------ */

struct vk_spec {
    uint32_t n;
    uint32_t id[8];
    uint32_t val[8];
};

static uint32_t pow2_floor(uint32_t x)
{
    uint32_t p = 1;
    while (p * 2 <= x)
        p *= 2;
    return p;
}

static void spec_for(const struct vk_ctx *c, enum seg_vk_shader sh, struct vk_spec *s)
{
    const VkPhysicalDeviceLimits *lim = &c->props.limits;
    uint32_t maxwg = lim->maxComputeWorkGroupInvocations;
    if (lim->maxComputeWorkGroupSize[0] < maxwg)
        maxwg = lim->maxComputeWorkGroupSize[0];
    memset(s, 0, sizeof *s);
    /* gemm_reg.comp: MV, TN (its six variants are consecutive rows of variants.cmake) */
    if (sh >= SEG_VK_SHADER_GEMM_REG4 && sh <= SEG_VK_SHADER_CONV2D_REG16) {
        s->id[0] = 1;
        s->val[0] = c->gemm.tm;
        s->id[1] = 2;
        s->val[1] = c->gemm.tn;
        s->n = 2;
        return;
    }
    if (sh == SEG_VK_SHADER_GEMM_COOPMAT) { /* four subgroups */
        s->n = 1;
        s->id[0] = 0;
        s->val[0] = c->coopmat_wg;
        return;
    }
    if (sh == SEG_VK_SHADER_GEMM || sh == SEG_VK_SHADER_CONV2D_DIRECT) {
        const struct vk_gemm_tile *t = &c->gemm;
        uint32_t vals[7] = {t->bm, t->bn, t->bk, t->tm, t->tn, t->bn / t->tn, t->bm / t->tm};
        for (uint32_t i = 0; i < 7; i++) {
            s->id[i] = i + 1;
            s->val[i] = vals[i];
        }
        s->n = 7;
        return;
    }
    uint32_t wg = SEG_VK_WG;
    if (wg > maxwg)
        wg = pow2_floor(maxwg);
    /* shaders with 2*WG floats (+ ints) of shared memory */
    size_t shared = (size_t)wg * 16;
    while (shared > lim->maxComputeSharedMemorySize && wg > 32) {
        wg /= 2;
        shared = (size_t)wg * 16;
    }
    s->n = 1;
    s->id[0] = 0;
    s->val[0] = wg;
}

/* ---- the on-disk pipeline cache ------------------------------------------------------ */

static void cache_path_init(struct vk_ctx *c)
{
    char dir[900];
    c->cache_path[0] = '\0';
    if (!seg_cache_dir("vulkan", true, dir, sizeof dir))
        return;
    char uuid[2 * VK_UUID_SIZE + 1];
    for (int i = 0; i < (int)VK_UUID_SIZE; i++)
        snprintf(uuid + 2 * i, 3, "%02x", c->props.pipelineCacheUUID[i]);
    snprintf(c->cache_path, sizeof c->cache_path, "%s/pipelines-%04x-%04x-%s.bin", dir,
             c->props.vendorID, c->props.deviceID, uuid);
}

/* The file's data when its header matches this device (else NULL). */
static void *cache_load(const struct vk_ctx *c, size_t *size)
{
    *size = 0;
    if (!c->cache_path[0])
        return NULL;
    FILE *f = fopen(c->cache_path, "rb");
    if (!f)
        return NULL;
    void *data = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n >= 16 + VK_UUID_SIZE && n < (1L << 30) && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)n);
        if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    if (!data)
        return NULL;
    /* header: length, version, vendorID, deviceID, pipelineCacheUUID */
    const unsigned char *h = data;
    uint32_t w[4];
    memcpy(w, h, sizeof w);
    if (w[0] < 16 + VK_UUID_SIZE || w[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE ||
        w[2] != c->props.vendorID || w[3] != c->props.deviceID ||
        memcmp(h + 16, c->props.pipelineCacheUUID, VK_UUID_SIZE) != 0) {
        free(data);
        return NULL;
    }
    *size = (size_t)n;
    return data;
}

static void cache_save(const struct vk_ctx *c)
{
    if (!c->cache_path[0] || !c->pcache)
        return;
    size_t n = 0;
    if (vkGetPipelineCacheData(c->dev, c->pcache, &n, NULL) != VK_SUCCESS || n == 0)
        return;
    void *data = malloc(n);
    if (!data)
        return;
    if (vkGetPipelineCacheData(c->dev, c->pcache, &n, data) == VK_SUCCESS &&
        seg_file_write_atomic(c->cache_path, data, n) != SEG_STATUS_OK)
        seg_error_clear(); /* the cache is an optimisation: a failed write only costs compiles */
    free(data);
}

/* ---- layouts and pipelines ----------------------------------------------------------- */

enum seg_status vk_pipeline_init(struct vk_ctx *c)
{
    VkDescriptorSetLayoutBinding b[SEG_VK_BINDINGS + SEG_VK_TEXELS];
    for (uint32_t i = 0; i < SEG_VK_BINDINGS + SEG_VK_TEXELS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = i < SEG_VK_BINDINGS ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                                                  : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo li = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = SEG_VK_BINDINGS + (c->max_texels ? SEG_VK_TEXELS : 0),
        .pBindings = b,
    };
    VkResult r = vkCreateDescriptorSetLayout(c->dev, &li, NULL, &c->dsl);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkCreateDescriptorSetLayout", "backend creation");
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(struct vk_push)};
    VkPipelineLayoutCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &c->dsl,
        .pushConstantRangeCount = 1,
        .pPushConstantRanges = &pr,
    };
    r = vkCreatePipelineLayout(c->dev, &pi, NULL, &c->playout);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkCreatePipelineLayout", "backend creation");

    c->gemm = vk_gemm_tile_default(c);
    cache_path_init(c);
    size_t n = 0;
    void *data = cache_load(c, &n);
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = n,
        .pInitialData = data,
    };
    r = vkCreatePipelineCache(c->dev, &ci, NULL, &c->pcache);
    if (r != VK_SUCCESS && data) { /* a corrupt file: start empty */
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = vkCreatePipelineCache(c->dev, &ci, NULL, &c->pcache);
    }
    free(data);
    if (r != VK_SUCCESS)
        c->pcache = VK_NULL_HANDLE; /* work without a cache */
    return SEG_STATUS_OK;
}

void vk_pipeline_destroy(struct vk_ctx *c)
{
    cache_save(c);
    for (int i = 0; i < SEG_VK_SHADER_COUNT; i++)
        for (int v = 0; v < SEG_VK_VARIANTS; v++)
            if (c->pipelines[i][v]) {
                vkDestroyPipeline(c->dev, c->pipelines[i][v], NULL);
                c->pipelines[i][v] = VK_NULL_HANDLE;
            }
    if (c->pcache)
        vkDestroyPipelineCache(c->dev, c->pcache, NULL);
    if (c->playout)
        vkDestroyPipelineLayout(c->dev, c->playout, NULL);
    if (c->dsl)
        vkDestroyDescriptorSetLayout(c->dev, c->dsl, NULL);
    c->pcache = VK_NULL_HANDLE;
    c->playout = VK_NULL_HANDLE;
    c->dsl = VK_NULL_HANDLE;
}

enum seg_status vk_pipeline_get(struct vk_ctx *c, enum seg_vk_shader sh, int fn, VkPipeline *out)
{
    if ((unsigned)sh >= SEG_VK_SHADER_COUNT)
        return seg_error(SEG_STATUS_INVALID, "vulkan: bad shader id %d", (int)sh);
    int v = fn < 0 || fn + 1 >= SEG_VK_VARIANTS ? 0 : fn + 1;
    VkPipeline *slot = &c->pipelines[sh][v];
    if (*slot) {
        *out = *slot;
        return SEG_STATUS_OK;
    }
    const struct seg_vk_spirv *spv = &seg_vk_spirv_table[sh];
    VkShaderModuleCreateInfo mi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = spv->size,
        .pCode = spv->code,
    };
    VkShaderModule mod;
    VkResult r = vkCreateShaderModule(c->dev, &mi, NULL, &mod);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkCreateShaderModule", spv->name);
    struct vk_spec s;
    spec_for(c, sh, &s);
    if (v > 0) {
        s.id[s.n] = SEG_VK_SPEC_FN;
        s.val[s.n] = (uint32_t)(v - 1);
        s.n++;
    }
    VkSpecializationMapEntry entries[8];
    for (uint32_t i = 0; i < s.n; i++)
        entries[i] = (VkSpecializationMapEntry){s.id[i], i * 4, 4};
    VkSpecializationInfo si = {
        .mapEntryCount = s.n,
        .pMapEntries = entries,
        .dataSize = s.n * 4,
        .pData = s.val,
    };
    VkComputePipelineCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage =
            {
                .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = mod,
                .pName = "main",
                .pSpecializationInfo = s.n ? &si : NULL,
            },
        .layout = c->playout,
    };
    r = vkCreateComputePipelines(c->dev, c->pcache, 1, &pci, NULL, slot);
    vkDestroyShaderModule(c->dev, mod, NULL);
    if (r != VK_SUCCESS) {
        *slot = VK_NULL_HANDLE;
        return vk_fail(r, "vkCreateComputePipelines", spv->name);
    }
    *out = *slot;
    return SEG_STATUS_OK;
}
