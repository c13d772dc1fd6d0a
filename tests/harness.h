/* harness.h: the op-case table shared by the cross-backend test, the gradient check
 * and bench. A case names the op it covers, its inputs (generated on the host from a
 * fixed seed) and a function that runs it through the op front-end. */
#ifndef SEGDA_TEST_HARNESS_H
#define SEGDA_TEST_HARNESS_H

#include "core/ops.h"

#define H_MAX_IN  6
#define H_MAX_OUT 4

enum h_init {
    H_UNIFORM,   /* floats in [lo, hi) */
    H_AWAY,      /* floats in [lo, hi) but at least 0.05 away from 0 (kinks) */
    H_LABELS,    /* I32 in [0, classes) with ~10% set to 255 */
    H_INDEX,     /* I32 in [0, classes) */
    H_PERM,      /* I32: each row (last dim) a random permutation */
    H_BYTES,     /* U8 in [0, 255] */
    H_TIES,      /* floats drawn from 8 values (sort ties) */
    H_POSITIVE,  /* floats in [lo, hi), lo > 0 */
    H_DISTINCT,  /* lo + 0.01 * (a random permutation of 0..numel-1): no two within 0.01 */
};

struct h_input {
    enum seg_dtype dtype;
    int            ndim;
    int64_t        shape[SEG_MAX_DIMS];
    enum h_init    init;
    float          lo, hi;
    int            classes;
    bool           no_grad; /* not a differentiable input */
};

struct h_case;
/* Runs the case forward: fills out[] (at most H_MAX_OUT) and *nout. */
typedef enum seg_status (*h_fwd_fn)(const struct h_case *c, struct seg_tensor **in,
                                    struct seg_tensor **out, int *nout);
/* Gradients of sum(out[0] * dy) w.r.t. every differentiable input (din[i] NULL if not). */
typedef enum seg_status (*h_bwd_fn)(const struct h_case *c, struct seg_tensor **in,
                                    struct seg_tensor **out, const struct seg_tensor *dy,
                                    struct seg_tensor **din);

struct h_case {
    const char    *name;      /* the op covered (ops.def name, or a composite's name) */
    enum seg_op    op;        /* the ops.def row it covers, for the coverage table */
    char           params[200];
    int            nin;
    struct h_input in[H_MAX_IN];
    int            ip[8];
    float          fp[4];
    h_fwd_fn       fwd;
    h_bwd_fn       bwd;       /* NULL: no gradient check */
    double         tol;       /* max |a - r| / max(1, max |r|) against the cpu backend */
    double         grad_tol;
    double         grad_eps;  /* finite-difference step */
    bool           exact_int; /* integer outputs must match exactly (default true) */
    uint32_t       seed;
};

/* Fills *cases with the whole table (caller frees). */
int h_cases_build(struct h_case **cases);

#endif
