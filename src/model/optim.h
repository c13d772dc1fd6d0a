/* optim.h: SGD (momentum, weight decay) and Adam over a model's trainable parameters, with
 * per-group learning-rate multipliers and the poly schedule; updates run on the device. */
#ifndef SEGDA_OPTIM_H
#define SEGDA_OPTIM_H

#include "model/model.h"

/* ADAM: weight decay as an L2 term of the gradient (torch.optim.Adam); ADAMW: decoupled,
 * p *= 1 - lr * weight_decay before the step (torch.optim.AdamW: DAFormer, MIC) */
enum seg_optim_kind { SEG_OPTIM_SGD, SEG_OPTIM_ADAM, SEG_OPTIM_ADAMW };

struct seg_optim_config {
    enum seg_optim_kind kind;
    float               lr;
    float               momentum;      /* SGD */
    float               weight_decay;
    float               beta1, beta2;  /* Adam */
    float               eps;
    float               group_lr_mult[2]; /* backbone, classifier heads */
};

struct seg_optim {
    struct seg_optim_config cfg;
    struct seg_model       *model;
    struct seg_tensor     **state1, **state2; /* per parameter (momentum / Adam m, v) */
    int                     step;
    const struct seg_collective *coll;    /* data-parallel: NULL or one rank: none */
    /* NULL, or a device flag [1] (F32) that skips every update where it is not 0: the
     * trainer's non-finite test, read by the kernels instead of the host (borrowed). */
    const struct seg_tensor *skip;
};

enum seg_status seg_optim_create(struct seg_model *m, const struct seg_optim_config *cfg,
                                 struct seg_optim **out);
void seg_optim_destroy(struct seg_optim *o);
/* Data-parallel training: every step first averages the gradients over the ranks (c must
 * outlive o), so that ranks holding the same weights keep holding the same weights. */
void seg_optim_set_collective(struct seg_optim *o, const struct seg_collective *c);
/* One update of every trainable parameter that has a gradient, at base rate lr. */
enum seg_status seg_optim_step(struct seg_optim *o, float lr);
/* Drops the momentum / Adam moments and the step count: the next step is a freshly built
 * optimizer's first (what a training script that rebuilds its optimizer gets). */
void seg_optim_reset(struct seg_optim *o);
/* lr * (1 - iter/max_iter)^power */
float seg_poly_lr(float base, int64_t iter, int64_t max_iter, float power);

/* The learning-rate schedule in rounds (BiDA's released code): the iterations split into
 * `rounds` equal rounds, round r at base * factor^r with its own poly decay over horizon x
 * the round's length. One round with horizon 1 is seg_poly_lr over the whole run. */
struct seg_lr_schedule {
    int64_t iterations;
    float   power;
    int     rounds;
    float   factor;   /* rate of round r+1 / round r */
    float   horizon;  /* poly horizon / round length (>= 1: 1 decays to 0 at the round's end) */
    /* mmcv's linear warm-up (DAFormer, MIC): over the first warmup_iters iterations the rate
     * is the scheduled one times 1 - (1 - iter/warmup_iters)(1 - warmup_ratio); 0: none */
    int64_t warmup_iters;
    float   warmup_ratio;
};
/* The round iteration iter falls in; *begin: its first iteration (NULL: not wanted). */
int seg_schedule_round(const struct seg_lr_schedule *s, int64_t iter, int64_t *begin);
float seg_schedule_lr(const struct seg_lr_schedule *s, float base, int64_t iter);

#endif
