#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
/* MATMUL on matrix hardware (VK_NV_cooperative_matrix): C_b = alpha * op(A_b) * op(B_b) +
 * beta * C_b with the parameters of gemm.comp (ip[0] batch, 1 M, 2 N, 3 K, 4 transA,
 * 5 transB, 6..8 batch strides; ip[9], ip[10] the K range; fp[0] alpha, fp[1] beta).
 * A and B are rounded to fp16 as they are staged in shared memory (transposes handled
 * there), products are summed in fp32. A workgroup is four subgroups computing a 64 x 64
 * block of C in 16 x 16 x 16 fragments, each subgroup a 32 x 32 quarter (2 x 2 fragments).
 * The accumulators go through shared memory on the way out, so edges, alpha and beta are
 * applied element by element. Used only where the device advertises the 16x16x16
 * fp16 x fp16 + fp32 subgroup shape, and only after the self-test (src/vulkan/vk_coopmat.c)
 * has compared it against gemm.comp. */
#include "common.glsl"

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const uint WG = 128; /* four subgroups */

BUF_F(0, Cm)
BUF_RF(1, Am)
BUF_RF(2, Bm)

const uint BM = 64u, BN = 64u, BK = 16u;
/* row pitches in elements: multiples of 8 halves (16 bytes), padded against bank conflicts */
const uint AP = BK + 8u, BP = BN + 8u, CP = BN + 4u;
shared float16_t As[BM * AP]; /* As[m * AP + k] */
shared float16_t Bs[BK * BP]; /* Bs[k * BP + n] */
shared float Cs[BM * CP];

void main()
{
    uint batch = UP(0), M = UP(1), N = UP(2), K = UP(3);
    bool ta = IP(4) != 0, tb = IP(5) != 0;
    uint sa = UP(6), sb = UP(7), sc = UP(8);
    float alpha = FP(0), beta = FP(1);
    uint kbeg = UP(9), kend = min(K, UP(10));
    uint tid = gl_LocalInvocationID.x, sg = tid / gl_SubgroupSize;
    uint wm = (sg >> 1) * 32u, wn = (sg & 1u) * 32u; /* this subgroup's quarter */
    uint tiles_m = (M + BM - 1u) / BM, tiles_n = (N + BN - 1u) / BN;

    for (uint b = gl_WorkGroupID.z; b < batch; b += gl_NumWorkGroups.z)
    for (uint bm = gl_WorkGroupID.y; bm < tiles_m; bm += gl_NumWorkGroups.y)
    for (uint bn = gl_WorkGroupID.x; bn < tiles_n; bn += gl_NumWorkGroups.x) {
        uint m0 = bm * BM, n0 = bn * BN;
        uint abase = OFF(1) + b * sa, bbase = OFF(2) + b * sb, cbase = OFF(0) + b * sc;
        fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[2][2];
        for (uint i = 0u; i < 2u; ++i)
            for (uint j = 0u; j < 2u; ++j)
                acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);

        for (uint k0 = kbeg; k0 < kend; k0 += BK) {
            /* consecutive invocations read consecutive addresses of the untransposed layout */
            for (uint l = tid; l < BM * BK; l += WG) {
                uint mm, kk;
                if (ta) { kk = l / BM; mm = l % BM; } else { mm = l / BK; kk = l % BK; }
                uint gm = m0 + mm, gk = k0 + kk;
                float v = 0.0;
                if (gm < M && gk < kend) v = Am[abase + (ta ? gk * M + gm : gm * K + gk)];
                As[mm * AP + kk] = float16_t(v);
            }
            for (uint l = tid; l < BN * BK; l += WG) {
                uint nn, kk;
                if (tb) { nn = l / BK; kk = l % BK; } else { kk = l / BN; nn = l % BN; }
                uint gn = n0 + nn, gk = k0 + kk;
                float v = 0.0;
                if (gn < N && gk < kend) v = Bm[bbase + (tb ? gn * K + gk : gk * N + gn)];
                Bs[kk * BP + nn] = float16_t(v);
            }
            barrier();
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> fa[2], fb[2];
            for (uint i = 0u; i < 2u; ++i)
                coopMatLoadNV(fa[i], As, (wm + 16u * i) * AP, AP, false);
            for (uint j = 0u; j < 2u; ++j)
                coopMatLoadNV(fb[j], Bs, wn + 16u * j, BP, false);
            for (uint i = 0u; i < 2u; ++i)
                for (uint j = 0u; j < 2u; ++j)
                    acc[i][j] = coopMatMulAddNV(fa[i], fb[j], acc[i][j]);
            barrier();
        }

        for (uint i = 0u; i < 2u; ++i)
            for (uint j = 0u; j < 2u; ++j)
                coopMatStoreNV(acc[i][j], Cs, (wm + 16u * i) * CP + wn + 16u * j, CP, false);
        barrier();
        for (uint l = tid; l < BM * BN; l += WG) {
            uint mm = l / BN, nn = l % BN, gm = m0 + mm, gn = n0 + nn;
            if (gm < M && gn < N) {
                uint at = cbase + gm * N + gn;
                float v = alpha * Cs[mm * CP + nn];
                Cm[at] = beta == 0.0 ? v : v + beta * Cm[at]; /* beta = 0 ignores NaN in C */
            }
        }
        barrier();
    }
}
