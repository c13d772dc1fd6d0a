/* common.h: shared by every program in cl/ (expanded into each at build time by embed.cmake).
 * OpenCL C 1.2. Sizes come from -D options set by the host's tuning table
 * (src/opencl/cl_program_cache.c); no device constants are hard-coded here. */
#ifndef SEG_CL_COMMON_H
#define SEG_CL_COMMON_H

#if !defined(SEG_WG) || !defined(SEG_RED_WG) || !defined(SEG_SCAN_WG) || !defined(SEG_SORT_LOCAL)
#error "build with -DSEG_WG=.. -DSEG_RED_WG=.. -DSEG_SCAN_WG=.. -DSEG_SORT_LOCAL=.. (host tuning table)"
#endif

/* Results are compared against the CPU backend: no implicit fma contraction. */
#pragma OPENCL FP_CONTRACT OFF

/* Element index for 1-D launches (the grid is rounded up: check against n). */
#define SEG_GID() ((int)get_global_id(0))

/* enum seg_binary_fn (src/segda.h) */
#define SEG_BINARY_ADD 0
#define SEG_BINARY_SUB 1
#define SEG_BINARY_MUL 2
#define SEG_BINARY_DIV 3
#define SEG_BINARY_POW 4
#define SEG_BINARY_MAX 5
#define SEG_BINARY_MIN 6
#define SEG_BINARY_EQ 7
#define SEG_BINARY_NE 8
#define SEG_BINARY_LT 9
#define SEG_BINARY_LE 10
#define SEG_BINARY_GT 11
#define SEG_BINARY_GE 12

/* enum seg_unary_fn */
#define SEG_UNARY_NEG 0
#define SEG_UNARY_EXP 1
#define SEG_UNARY_LOG 2
#define SEG_UNARY_SQRT 3
#define SEG_UNARY_ABS 4
#define SEG_UNARY_RELU 5
#define SEG_UNARY_LEAKY_RELU 6
#define SEG_UNARY_SIGMOID 7
#define SEG_UNARY_SOFTPLUS 8
#define SEG_UNARY_TANH 9
#define SEG_UNARY_AFFINE 10
#define SEG_UNARY_CLAMP 11
#define SEG_UNARY_POWS 12
#define SEG_UNARY_SQUARE 13
#define SEG_UNARY_RECIP 14

/* enum seg_reduce_fn */
#define SEG_REDUCE_SUM 0
#define SEG_REDUCE_MEAN 1
#define SEG_REDUCE_MAX 2
#define SEG_REDUCE_MIN 3

/* Reductions over n of [outer, n, inner] use a 2-D work-group (lx along inner, ly along n,
 * ly a power of two): work-group (gx, o) handles columns gx*lx .. of outer row o. Each item
 * strides over n by ly; then the ly partial results of a column are combined in local
 * memory, l[y * lx + x] with lx * ly <= SEG_RED_WG. */
#define SEG_ROW_SETUP()                                                     \
    const int x = (int)get_local_id(0), lx = (int)get_local_size(0);        \
    const int y = (int)get_local_id(1), ly = (int)get_local_size(1);        \
    const int i = (int)get_global_id(0);                                    \
    const int o = (int)get_group_id(1);                                     \
    const bool valid = i < inner;                                           \
    const int base = o * n * inner + (valid ? i : 0)

#define SEG_OP_SUM 0
#define SEG_OP_MAX 1
#define SEG_OP_MIN 2

/* Tree over y in local memory combining with op (SEG_OP_*); the result (row y = 0) is
 * returned to every item. Barriers are never placed under a branch: PoCL (and other
 * compilers) can mishandle barriers inside even work-group-uniform conditionals. */
float seg_local_reduce(__local float *l, int x, int lx, int y, int ly, float v, int op)
{
    l[y * lx + x] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = ly >> 1; s > 0; s >>= 1) {
        if (y < s) {
            const float a = l[y * lx + x], b = l[(y + s) * lx + x];
            l[y * lx + x] = op == SEG_OP_SUM ? a + b : (op == SEG_OP_MAX ? fmax(a, b) : fmin(a, b));
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float r = l[x];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

float seg_local_sum(__local float *l, int x, int lx, int y, int ly, float v)
{
    return seg_local_reduce(l, x, lx, y, ly, v, SEG_OP_SUM);
}

float seg_local_max(__local float *l, int x, int lx, int y, int ly, float v)
{
    return seg_local_reduce(l, x, lx, y, ly, v, SEG_OP_MAX);
}

/* 1-D work-group sum (all local items), the result returned to every item. */
float seg_group_sum(__local float *l, float v)
{
    const int t = (int)get_local_id(0), nt = (int)get_local_size(0);
    l[t] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = nt >> 1; s > 0; s >>= 1) {
        if (t < s) l[t] += l[t + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = l[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

#endif
