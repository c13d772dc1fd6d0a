/* losses.h: the loss-term parity test. Each method's terms are checked against an
 * independent PyTorch implementation written from its paper (tests/loss_ref/<method>.py),
 * which writes one safetensors file per case:
 *   in.<name>    an input (F32 or I32); an F32 input with a grad.<name> entry is a
 *                differentiable leaf
 *   out.<name>   an expected output (out.loss: the scalar whose gradients are checked)
 *   grad.<name>  the expected d out.loss / d in.<name>
 *   metadata     the case's scalar parameters (strings), "tol" (max |a - r| / max |r|,
 *                default 1e-4) and "grad_tol" (default tol)
 * A case here builds the same term from the inputs with segda's autograd. */
#ifndef SEGDA_TEST_LOSSES_H
#define SEGDA_TEST_LOSSES_H

#include "model/losses.h"

/* In a case: a missing input (its error already set) ends the case. */
#define NEED(v)                                                                              \
    do {                                                                                     \
        if (!(v))                                                                            \
            return SEG_STATUS_INVALID;                                                       \
    } while (0)
#define TRY(expr) SEG_TRY(expr)

struct lt_ctx; /* the case's inputs and its named outputs */

/* The input in.<name> as a tape variable (a leaf that requires grad when the file holds
 * grad.<name>), or NULL with an error set. */
struct seg_var *lt_var(struct lt_ctx *c, const char *name);
/* The input in.<name> as a device tensor owned by the context (labels, masks). */
const struct seg_tensor *lt_tensor(struct lt_ctx *c, const char *name);
/* Metadata value as a number, or def when absent. */
double lt_param(const struct lt_ctx *c, const char *key, double def);
const char *lt_param_str(const struct lt_ctx *c, const char *key, const char *def);
/* An extra output to compare against out.<name> (the value is read before backward). */
enum seg_status lt_output(struct lt_ctx *c, const char *name, struct seg_var *v);
/* The same for a device tensor (F32 or I32, read now; the caller keeps it). */
enum seg_status lt_output_tensor(struct lt_ctx *c, const char *name, const struct seg_tensor *t);
struct seg_ag *lt_ag(struct lt_ctx *c);

struct lt_case {
    const char *name; /* the file DIR/<name>.safetensors */
    /* Builds the term; *loss is compared with out.loss and differentiated. */
    enum seg_status (*build)(struct lt_ctx *c, struct seg_var **loss);
};

/* Each method's table, ended by {NULL, NULL}; test_losses.c lists them. */
struct lt_method {
    const char          *name;
    const struct lt_case *cases;
};

#endif
