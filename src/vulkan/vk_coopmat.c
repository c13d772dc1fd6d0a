/* vk_coopmat.c: MATMUL on matrix hardware (shaders/gemm_coopmat.comp, VK_NV_cooperative_
 * matrix: fp16 inputs rounded on load, fp32 sums), the device probe, and the self-test that
 * must pass before the kernel computes anything.
 *
 * Neither PoCL nor lavapipe has cooperative matrices, so the kernel cannot be tested in CI.
 * At its first use on a device it is compared against gemm.comp (the tested SIMT kernel) on
 * shapes that cover partial tiles, both transposes, a batch and alpha / beta; a result
 * outside the bound of fp16 input rounding, or any error, switches it off for the backend's
 * life with a warning, and MATMUL goes on through gemm.comp.
 *
 * The test hook SEGDA_VK_COOPMAT_STANDIN=simt|wrong, on a device without the shape, puts
 * gemm.comp / gemm_reg.comp (wrong: with alpha off by a quarter) where the kernel would
 * run, so CI drives the self-test, its warning and fallback, the routing and bench's rows.
 *
 * Selected by SEGDA_VK_GEMM=coopmat (an error where the device lacks the shape) or
 * seg_backend_set_matrix_gemm (segda bench gemm measures both kernels in one run). It is not
 * the default for fp32 tensors: rounding fp32 operands to fp16 changes the results (as
 * PyTorch keeps TF32 off for fp32 matmuls unless asked), and gradients below fp16's range
 * would flush to zero. VK_KHR_cooperative_matrix, which AMD and Intel drivers expose, needs
 * glslang 13 and Vulkan headers 1.3.255; Debian 12 ships 12.0 and 1.3.239. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vulkan/vk_internal.h"

#define COOPMAT_SUBGROUPS 4 /* a workgroup of gemm_coopmat.comp: 2 x 2 subgroups */
#define COOPMAT_SHARED    (64 * 24 * 2 + 16 * 72 * 2 + 64 * 68 * 4) /* As, Bs, Cs bytes */

uint32_t vk_coopmat_probe(VkInstance inst, VkPhysicalDevice phys, uint32_t subgroup)
{
    VkPhysicalDeviceProperties props0;
    vkGetPhysicalDeviceProperties(phys, &props0);
    const VkPhysicalDeviceLimits *lim = &props0.limits;
    if (!vk_has_device_ext(phys, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) ||
        !vk_has_device_ext(phys, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME) || subgroup == 0 ||
        COOPMAT_SUBGROUPS * subgroup > lim->maxComputeWorkGroupInvocations ||
        COOPMAT_SUBGROUPS * subgroup > lim->maxComputeWorkGroupSize[0] ||
        lim->maxComputeSharedMemorySize < COOPMAT_SHARED)
        return 0;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .pNext = &cm};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16};
    vkGetPhysicalDeviceFeatures2(phys, &f2);
    if (!cm.cooperativeMatrix || !f16.shaderFloat16)
        return 0;
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV props =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)vkGetInstanceProcAddr(
            inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    uint32_t n = 0;
    if (!props || props(phys, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof *p);
    if (!p)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    bool found = false;
    if (props(phys, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = p[i].MSize == 16 && p[i].NSize == 16 && p[i].KSize == 16 &&
                    p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV && p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                    p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV && p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                    p[i].scope == VK_SCOPE_SUBGROUP_NV;
    free(p);
    return found ? COOPMAT_SUBGROUPS * subgroup : 0;
}

static enum seg_status coopmat_dispatch(struct seg_backend *be, const struct seg_op_args *a)
{
    const struct vk_ctx *c = vk_ctx_of(be);
    if (c->coopmat_standin) {
        struct seg_op_args w = *a;
        if (c->coopmat_standin == 2)
            w.fp[0] *= 1.25f;
        return vk_matmul_simt(be, &w);
    }
    const struct seg_tensor *t[SEG_VK_BINDINGS] = {a->dst[0], a->src[0], a->src[1]};
    uint64_t batch = (uint64_t)a->ip[0], m = (uint64_t)a->ip[1], n = (uint64_t)a->ip[2];
    struct vk_push pc = vk_push_from(a);
    pc.ip[9] = 0;
    pc.ip[10] = a->ip[3];
    return vk_dispatch(be, SEG_VK_SHADER_GEMM_COOPMAT, t, &pc, vk_groups(n, 64), vk_groups(m, 64),
                       vk_groups(batch, 1), "MATMUL (cooperative matrix)");
}

/* ---- the self-test -------------------------------------------------------------------- */

struct coopmat_case {
    int32_t m, n, k, ta, tb, batch;
    float   alpha, beta;
};

static const struct coopmat_case coopmat_cases[] = {
    {64, 64, 64, 0, 0, 1, 1.0f, 0.0f},    /* whole tiles */
    {100, 37, 203, 1, 0, 1, 1.0f, 0.0f},  /* partial tiles in M, N and K, A transposed */
    {33, 130, 48, 0, 1, 2, 1.5f, 0.5f},   /* B transposed, a batch, alpha and beta */
    {19, 300, 500, 1, 1, 1, 1.0f, 0.0f},  /* the classifier's 19 rows, long K */
};

static float unit_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((*s >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f; /* [-1, 1) */
}

/* The largest excess of |coopmat - gemm.comp| over its bound on one case (<= 0: agrees).
 * Bound per element: fp16 conversion of both inputs, |a'b' - ab| <= (2u + u^2) |a||b| with
 * u = 2^-10 (GLSL leaves the rounding mode to the driver; truncation errs up to 2^-10),
 * plus fp32 sums in both kernels, K 2^-23 each, over sum_k |alpha a_ik b_kj|. */
static enum seg_status coopmat_case_run(struct seg_backend *be, const struct coopmat_case *q, double *excess,
                                        double *err_out)
{
    size_t na = (size_t)q->batch * q->m * q->k, nb = (size_t)q->batch * q->k * q->n;
    size_t nc = (size_t)q->batch * q->m * q->n;
    float *host = malloc((na + nb + 3 * nc) * sizeof(float));
    if (!host)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: cooperative-matrix self-test: out of host memory");
    float *ha = host, *hb = ha + na, *hc = hb + nb, *got = hc + nc, *ref = got + nc;
    uint64_t s = 0x9E3779B97F4A7C15ull ^ (uint64_t)(q->m * 131 + q->n * 7 + q->k);
    for (size_t i = 0; i < na + nb + nc; i++)
        host[i] = unit_rand(&s);
    struct seg_buf A = {0}, B = {0}, C = {0};
    enum seg_status st;
    if ((st = vk_buf_alloc(be, na * 4, &A)) || (st = vk_buf_alloc(be, nb * 4, &B)) ||
        (st = vk_buf_alloc(be, nc * 4, &C)) || (st = vk_buf_write(be, &A, 0, ha, na * 4)) ||
        (st = vk_buf_write(be, &B, 0, hb, nb * 4)))
        goto done;
    struct seg_tensor tA = {.be = be, .dtype = SEG_DTYPE_F32, .ndim = 1, .shape = {(int64_t)na}, .buf = A};
    struct seg_tensor tB = {.be = be, .dtype = SEG_DTYPE_F32, .ndim = 1, .shape = {(int64_t)nb}, .buf = B};
    struct seg_tensor tC = {.be = be, .dtype = SEG_DTYPE_F32, .ndim = 1, .shape = {(int64_t)nc}, .buf = C};
    struct seg_op_args a = {.op = SEG_OP_MATMUL};
    a.dst[0] = &tC;
    a.src[0] = &tA;
    a.src[1] = &tB;
    int32_t ip[9] = {q->batch, q->m, q->n, q->k, q->ta, q->tb, q->m * q->k, q->k * q->n, q->m * q->n};
    memcpy(a.ip, ip, sizeof ip);
    a.fp[0] = q->alpha;
    a.fp[1] = q->beta;
    if ((st = vk_buf_write(be, &C, 0, hc, nc * 4)) || (st = coopmat_dispatch(be, &a)) ||
        (st = vk_buf_read(be, &C, 0, got, nc * 4)) || (st = vk_buf_write(be, &C, 0, hc, nc * 4)) ||
        (st = vk_matmul_simt(be, &a)) || (st = vk_buf_read(be, &C, 0, ref, nc * 4)))
        goto done;
    *excess = -INFINITY;
    *err_out = 0.0;
    for (int b = 0; b < q->batch; b++)
        for (int i = 0; i < q->m; i++)
            for (int j = 0; j < q->n; j++) {
                double mag = 0.0;
                for (int k = 0; k < q->k; k++) {
                    float x = q->ta ? ha[(size_t)b * q->m * q->k + (size_t)k * q->m + i]
                                    : ha[(size_t)b * q->m * q->k + (size_t)i * q->k + k];
                    float y = q->tb ? hb[(size_t)b * q->k * q->n + (size_t)j * q->k + k]
                                    : hb[(size_t)b * q->k * q->n + (size_t)k * q->n + j];
                    mag += fabs((double)x * y);
                }
                size_t at = (size_t)b * q->m * q->n + (size_t)i * q->n + j;
                /* + fp16 subnormals (absolute 2^-24 an input, |x|, |y| < 1) and beta * C */
                double bound = (ldexp(2.0, -10) + ldexp(1.0, -20) + 2.0 * q->k * ldexp(1.0, -23)) *
                                   fabs(q->alpha) * mag +
                               2.0 * q->k * ldexp(1.0, -24) * fabs(q->alpha) + 1e-6 * (1.0 + fabs(ref[at]));
                double e = fabs((double)got[at] - ref[at]);
                if (!(e <= bound)) /* NaN too */
                    e = isnan(e) ? INFINITY : e;
                if (e - bound > *excess)
                    *excess = e - bound;
                if (!(e <= *err_out))
                    *err_out = e;
            }
done:
    vk_buf_free(be, &A);
    vk_buf_free(be, &B);
    vk_buf_free(be, &C);
    free(host);
    return st;
}

enum seg_status vk_coopmat_self_test(struct seg_backend *be, char *why, size_t size)
{
    for (size_t i = 0; i < sizeof coopmat_cases / sizeof coopmat_cases[0]; i++) {
        const struct coopmat_case *q = &coopmat_cases[i];
        double excess = 0.0, err = 0.0;
        enum seg_status st = coopmat_case_run(be, q, &excess, &err);
        if (st) {
            snprintf(why, size, "%dx%dx%d failed: %s", q->m, q->n, q->k, seg_last_error());
            return st;
        }
        if (excess > 0.0) {
            snprintf(why, size, "%dx%dx%d (batch %d, trans %d%d): error %.3g exceeds the fp16 bound by %.3g",
                     q->m, q->n, q->k, q->batch, q->ta, q->tb, err, excess);
            return seg_error(SEG_STATUS_BACKEND, "vulkan: cooperative-matrix GEMM: %s", why);
        }
    }
    return SEG_STATUS_OK;
}

enum seg_status vk_set_matrix_gemm(struct seg_backend *be, bool on)
{
    struct vk_ctx *c = vk_ctx_of(be);
    if (!c->coopmat_wg && !c->coopmat_standin)
        return seg_error(SEG_STATUS_UNSUPPORTED, "vulkan: %s has no cooperative matrices of the kernel's shape",
                         c->props.deviceName);
    if (on)
        c->gemm_force = "coopmat";
    else if (c->gemm_force && !strcmp(c->gemm_force, "coopmat"))
        c->gemm_force = NULL; /* the tile in use stays */
    vk_gemm_describe(be);
    return SEG_STATUS_OK;
}

enum seg_status vk_coopmat_matmul(struct seg_backend *be, const struct seg_op_args *a, bool *done)
{
    struct vk_ctx *c = vk_ctx_of(be);
    *done = false;
    bool selected = c->gemm_force && !strcmp(c->gemm_force, "coopmat");
    if (!(c->coopmat_wg || c->coopmat_standin) || !selected || c->coopmat_state < 0)
        return SEG_STATUS_OK;
    if (c->coopmat_state == 0) {
        c->coopmat_state = -1; /* the self-test's own MATMULs go through gemm.comp */
        const struct seg_op_args *op = c->op;
        c->op = NULL;
        char why[256] = "";
        enum seg_status st = vk_coopmat_self_test(be, why, sizeof why);
        c->op = op;
        if (st) {
            fprintf(stderr, "segda: warning: vulkan: %s: the cooperative-matrix GEMM failed its self-test (%s); "
                            "MATMUL runs on gemm.comp\n", c->props.deviceName, why);
            seg_error_clear();
            vk_gemm_describe(be);
            return SEG_STATUS_OK;
        }
        c->coopmat_state = 1;
        vk_gemm_describe(be);
    }
    *done = true;
    return coopmat_dispatch(be, a);
}
