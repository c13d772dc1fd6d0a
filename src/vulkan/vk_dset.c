/* vk_dset.c: descriptor sets cached by their eight storage-buffer bindings and two texel
 * views.
 *
 * Every pipeline shares one set layout, so a set depends only on the buffers it binds. The
 * buffer pool hands a training step the same allocations as the step before, so after the
 * first step every dispatch finds its set here: no vkAllocateDescriptorSets and no
 * vkUpdateDescriptorSets per dispatch. Sets live until the cache fills (then everything
 * queued is waited for and the pool reset) or a memory block goes away (vk_memory.c). */
#include <stdlib.h>
#include <string.h>

#include "vulkan/vk_internal.h"

enum seg_status vk_dset_init(struct vk_ctx *c)
{
    VkDescriptorPoolSize ps[2] = {
        {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SEG_VK_DSET_CACHE * SEG_VK_BINDINGS},
        {VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, SEG_VK_DSET_CACHE * SEG_VK_TEXELS},
    };
    VkDescriptorPoolCreateInfo dpi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = SEG_VK_DSET_CACHE,
        .poolSizeCount = c->max_texels ? 2 : 1,
        .pPoolSizes = ps,
    };
    VkResult r = vkCreateDescriptorPool(c->dev, &dpi, NULL, &c->dpool);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkCreateDescriptorPool", "backend creation");
    c->dsets = calloc(SEG_VK_DSET_CACHE, sizeof *c->dsets);
    if (!c->dsets)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: out of host memory");
    c->ndsets = 0;
    return SEG_STATUS_OK;
}

void vk_dset_destroy(struct vk_ctx *c)
{
    if (c->dpool)
        vkDestroyDescriptorPool(c->dev, c->dpool, NULL);
    c->dpool = VK_NULL_HANDLE;
    free(c->dsets);
    c->dsets = NULL;
    c->ndsets = 0;
}

void vk_dset_clear(struct vk_ctx *c)
{
    if (!c->dsets || c->ndsets == 0)
        return;
    vkResetDescriptorPool(c->dev, c->dpool, 0);
    memset(c->dsets, 0, SEG_VK_DSET_CACHE * sizeof *c->dsets);
    c->ndsets = 0;
}

static uint64_t key_hash(const struct vk_dset_key *k)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < SEG_VK_BINDINGS + SEG_VK_TEXELS; i++) {
        uint64_t v[3] = {0, 0, 0};
        if (i < SEG_VK_BINDINGS) {
            v[0] = (uint64_t)(uintptr_t)k->buf[i].buffer;
            v[1] = k->buf[i].offset;
            v[2] = k->buf[i].range;
        } else {
            v[0] = (uint64_t)(uintptr_t)k->texel[i - SEG_VK_BINDINGS];
        }
        for (int j = 0; j < 3; j++) {
            h ^= v[j];
            h *= 0x100000001b3ull;
            h ^= h >> 29;
        }
    }
    return h;
}

enum seg_status vk_dset_get(struct vk_ctx *c, const struct vk_dset_key *key, VkDescriptorSet *out,
                            const char *where)
{
    const size_t kb = sizeof *key; /* keys are built zeroed, so padding compares equal */
    uint32_t mask = SEG_VK_DSET_CACHE - 1, i = (uint32_t)key_hash(key) & mask;
    for (;; i = (i + 1) & mask) { /* open addressing, at most 3/4 full */
        struct vk_dset_entry *e = &c->dsets[i];
        if (!e->set)
            break;
        if (!memcmp(&e->key, key, kb)) {
            *out = e->set;
            return SEG_STATUS_OK;
        }
    }
    if (c->ndsets >= SEG_VK_DSET_CACHE / 4 * 3) { /* full: start again once nothing uses a set */
        enum seg_status st = vk_wait_all(c, where);
        if (st)
            return st;
        vk_dset_clear(c);
        i = (uint32_t)key_hash(key) & mask;
    }
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = c->dpool,
        .descriptorSetCount = 1,
        .pSetLayouts = &c->dsl,
    };
    VkDescriptorSet set;
    VkResult r = vkAllocateDescriptorSets(c->dev, &ai, &set);
    if (r != VK_SUCCESS)
        return vk_fail(r, "vkAllocateDescriptorSets", where);
    VkWriteDescriptorSet w[2] = {{
        .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
        .dstSet = set,
        .dstBinding = 0,
        .descriptorCount = SEG_VK_BINDINGS,
        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .pBufferInfo = key->buf,
    }, {
        .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
        .dstSet = set,
        .dstBinding = SEG_VK_BINDINGS,
        .descriptorCount = SEG_VK_TEXELS,
        .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
        .pTexelBufferView = key->texel,
    }};
    vkUpdateDescriptorSets(c->dev, c->max_texels ? 2 : 1, w, 0, NULL);
    struct vk_dset_entry *e = &c->dsets[i];
    memcpy(&e->key, key, kb);
    e->set = set;
    c->ndsets++;
    *out = set;
    return SEG_STATUS_OK;
}
