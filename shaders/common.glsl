/* common.glsl: shared declarations of every segda compute shader.
 *
 * Binding model (see src/vulkan/vk_internal.h): every pipeline uses one descriptor set of
 * SEG_VK_BINDINGS (8) storage buffers and the same 128-byte push-constant block:
 *   off[8]: element offset of each bound tensor inside its binding,
 *   ip[16], fp[8]: the op's integer / float parameters (the host may put derived values
 *                  into slots the op leaves unused; each shader documents its layout).
 * Sizes are assumed to fit in 32 bits (a storage-buffer binding cannot exceed 4 GiB). */
#ifndef SEGDA_COMMON_GLSL
#define SEGDA_COMMON_GLSL

layout(push_constant) uniform PushConstants {
    uint  off[8];
    int   ip[16];
    float fp[8];
} pc;

#define IP(k)  pc.ip[k]
#define UP(k)  uint(pc.ip[k])
#define FP(k)  pc.fp[k]
#define OFF(k) pc.off[k]

/* Storage-buffer declarations: BUF_F(binding, name) declares float name[]. */
#define BUF_F(b, name)  layout(std430, binding = b) buffer BufF##b { float name[]; };
#define BUF_RF(b, name) layout(std430, binding = b) readonly buffer BufF##b { float name[]; };
#define BUF_I(b, name)  layout(std430, binding = b) buffer BufI##b { int name[]; };
#define BUF_RI(b, name) layout(std430, binding = b) readonly buffer BufI##b { int name[]; };
#define BUF_U(b, name)  layout(std430, binding = b) buffer BufU##b { uint name[]; };
#define BUF_RU(b, name) layout(std430, binding = b) readonly buffer BufU##b { uint name[]; };

/* The default 1-D workgroup: its size is specialization constant 0 (set by the host). */
#define DECLARE_WG() \
    layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in; \
    layout(constant_id = 0) const uint WG = 256;

/* Function selector fixed at pipeline creation (host variant > 0), else -1: read ip[]. */
#define DECLARE_FN() layout(constant_id = 10) const int SPEC_FN = -1;
#define SELECT_FN(k) (SPEC_FN >= 0 ? SPEC_FN : IP(k))

/* Grid-stride loop over [0, n): dispatches are capped at 65535 workgroups. */
#define GRID_LOOP(i, n) \
    for (uint i = gl_GlobalInvocationID.x; i < uint(n); i += gl_NumWorkGroups.x * WG)
/* Workgroup-stride loop over rows: one workgroup per row. */
#define ROW_LOOP(r, n) \
    for (uint r = gl_WorkGroupID.x; r < uint(n); r += gl_NumWorkGroups.x)

/* Note: llvmpipe (lavapipe) stops a shader's loops after 65535 iterations in total per
 * invocation (one counter shared by every loop of main). The host keeps each invocation's
 * trip count under that on such devices (vk_ctx.loop_budget) by splitting long work into
 * more workgroups or dispatches. */

#define SEG_INF uintBitsToFloat(0x7F800000u)
#define SEG_NAN uintBitsToFloat(0x7FC00000u)

/* ---- precise elementary functions (Cephes single precision, ~1 ulp) ---------------
 * Drivers' exp/log (notably llvmpipe's and most GPUs') are approximations of a few ulp
 * and worse near log(1); the CPU reference uses libm, so we use our own. */
float seg_exp(float x)
{
    if (isnan(x)) return x;
    if (x > 88.72283905206835) return SEG_INF;
    if (x < -103.972084) return 0.0;
    precise float z = floor(1.44269504088896341 * x + 0.5);
    precise float r = x - z * 0.693359375;
    r = r - z * -2.12194440e-4;
    precise float r2 = r * r;
    precise float p = 1.9875691500E-4;
    p = p * r + 1.3981999507E-3;
    p = p * r + 8.3334519073E-3;
    p = p * r + 4.1665795894E-2;
    p = p * r + 1.6666665459E-1;
    p = p * r + 5.0000001201E-1;
    precise float y = p * r2 + r + 1.0;
    int n = int(z);
    /* ldexp in two steps so that 2^n never overflows / underflows on its own */
    int n1 = n / 2;
    return ldexp(ldexp(y, n1), n - n1);
}

float seg_log(float x)
{
    if (isnan(x)) return x;
    if (x < 0.0) return SEG_NAN;
    if (x == 0.0) return -SEG_INF;
    if (isinf(x)) return x;
    int e;
    float m = frexp(x, e); /* x = m * 2^e, m in [0.5, 1) */
    if (m == 0.0 || isinf(m)) { /* denormal flushed */
        return -SEG_INF;
    }
    precise float f;
    if (m < 0.707106781186547524) {
        e -= 1;
        f = m + m - 1.0;
    } else {
        f = m - 1.0;
    }
    precise float z = f * f;
    precise float y = 7.0376836292E-2;
    y = y * f - 1.1514610310E-1;
    y = y * f + 1.1676998740E-1;
    y = y * f - 1.2420140846E-1;
    y = y * f + 1.4249322787E-1;
    y = y * f - 1.6668057665E-1;
    y = y * f + 2.0000714765E-1;
    y = y * f - 2.4999993993E-1;
    y = y * f + 3.3333331174E-1;
    y = y * f * z;
    float fe = float(e);
    y = y + fe * -2.12194440e-4;
    y = y - 0.5 * z;
    precise float r = f + y;
    r = r + fe * 0.693359375;
    return r;
}

/* log(1 + x) without the cancellation of log(1 + x) near 0 */
float seg_log1p(float x)
{
    precise float u = 1.0 + x;
    if (u == 1.0) return x;
    precise float d = u - 1.0;
    return seg_log(u) * (x / d);
}

float seg_tanh(float x)
{
    float a = abs(x);
    if (a > 10.0) return sign(x);
    if (a >= 0.625) {
        float r = 1.0 - 2.0 / (seg_exp(a + a) + 1.0);
        return x < 0.0 ? -r : r;
    }
    precise float z = x * x;
    precise float p = -5.70498872745E-3;
    p = p * z + 2.06390887954E-2;
    p = p * z - 5.37397155531E-2;
    p = p * z + 1.33314422036E-1;
    p = p * z - 3.33332819422E-1;
    precise float r = p * z * x + x;
    return r;
}

float seg_sigmoid(float x)
{
    if (x >= 0.0) return 1.0 / (1.0 + seg_exp(-x));
    float e = seg_exp(x);
    return e / (1.0 + e);
}

/* powf semantics for the common cases (C99 Annex F) */
float seg_pow(float a, float b)
{
    if (b == 0.0) return 1.0;
    if (a == 1.0) return 1.0;
    if (isnan(a) || isnan(b)) return SEG_NAN;
    bool b_int = floor(b) == b && !isinf(b);
    bool b_odd = b_int && abs(b) < 16777216.0 && (int(abs(b)) & 1) == 1;
    if (a == 0.0) {
        if (b > 0.0) return b_odd ? a : 0.0;
        return b_odd ? (sign(1.0 / a) * SEG_INF) : SEG_INF;
    }
    if (a < 0.0 && !b_int) return SEG_NAN;
    float m = abs(a);
    if (b == 1.0) return a;
    if (b == 2.0) return a * a;
    if (b == 0.5 && a > 0.0 && !isinf(a)) return sqrt(a);
    if (b == -1.0) return 1.0 / a;
    float r;
    if (isinf(m)) {
        r = b > 0.0 ? SEG_INF : 0.0;
    } else if (isinf(b)) {
        r = (m > 1.0) == (b > 0.0) ? SEG_INF : 0.0;
    } else {
        /* exp(b * log(m)) in double-float arithmetic: y = b * log(m) reaches ~88, where a
         * float's rounding alone would cost 1e-5 relative in the result. */
        int e;
        float fm = frexp(m, e);
        if (fm < 0.707106781186547524) { fm *= 2.0; e -= 1; }
        float fe = float(e);
        /* log(m) = fe*LN2_HI + (log(fm) + fe*LN2_LO); fe*LN2_HI is exact */
        precise float lh0 = fe * 0.693359375;
        precise float ll0 = seg_log(fm) + fe * -2.12194440e-4;
        precise float lh = lh0 + ll0;                 /* two-sum */
        precise float lv = lh - lh0;
        precise float ll = (lh0 - (lh - lv)) + (ll0 - lv);
        /* b * lh exactly as ph + pe (Dekker) */
        precise float ph = b * lh;
        precise float bc = 4097.0 * b, bh = bc - (bc - b), bl = b - bh;
        precise float lc = 4097.0 * lh, lhh = lc - (lc - lh), lhl = lh - lhh;
        precise float pe = ((bh * lhh - ph) + bh * lhl + bl * lhh) + bl * lhl;
        precise float yl = pe + b * ll;
        r = seg_exp(ph);
        if (!isinf(r) && r != 0.0) r = r + r * yl;
        else if (isinf(r) && ph + yl < 88.7) r = seg_exp(ph + yl);
    }
    return (a < 0.0 && b_odd) ? -r : r;
}

/* ---- U8 access: bytes packed little-endian into uint words ------------------------ */
uint seg_u8_get(uint word, uint k) { return (word >> (8u * k)) & 0xFFu; }

#endif
