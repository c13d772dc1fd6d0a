/* trainer.h: the training loop's state and the method interface. A method sees the
 * trainer (models, optimizers, configuration) and one source and one target batch per
 * iteration; it adds its loss terms by name so that the loop can log them and stop on the
 * first non-finite one. */
#ifndef SEGDA_TRAINER_H
#define SEGDA_TRAINER_H

#include "model/model.h"
#include "model/optim.h"
#include "train/config.h"

/* One batch on the host: preprocessed images and optional labels. */
struct seg_batch {
    int      n, h, w;
    float   *images;  /* N x 3 x H x W */
    int32_t *labels;  /* N x H x W, 255 = ignore; NULL when unlabelled */
};

#define SEG_MAX_TERMS 16
/* Device-side entries a step may record (loss terms and logged counts, several per name
 * where a method sums sub-batches). */
#define SEG_STATS_SLOTS 64
/* A step's logged values. During the step a method records entries: device values (loss
 * terms, counts) are copied into the trainer's stats buffer on the device, host values are
 * kept as they are. At the end of the step the trainer reads the buffer once and resolves
 * the entries into name/value (entries of one name add up, in order of first appearance). */
struct seg_losses {
    int         n;
    const char *name[SEG_MAX_TERMS];
    double      value[SEG_MAX_TERMS];
    /* the step's entries: slot >= 0 is stats[slot] * scale, slot < 0 the host value */
    int                nent, nslots;
    const char        *ent_name[SEG_STATS_SLOTS];
    int                ent_slot[SEG_STATS_SLOTS];
    double             ent_value[SEG_STATS_SLOTS];
    struct seg_tensor *stats; /* the trainer's buffer, NULL outside seg_trainer_step */
    bool               nonfinite; /* the device's test, read by seg_losses_resolve */
    /* Factor on every entry recorded from here on: a method sets a sub-batch's share of the
     * batch (solver.accumulate), so that the sub-batches' entries add up to the batch's
     * value. 0 reads as 1 (a zeroed struct records values as they are). */
    double             weight;
};
void seg_losses_add(struct seg_losses *l, const char *name, double value);
/* Records the [1] device value v (F32 or I32) times scale (and l->weight) under name, with
 * no host sync: it is read with the step's other entries at the end of the step. A name
 * recorded before adds into its slot on the device (sub-batches use no extra slots). */
enum seg_status seg_losses_add_dev(struct seg_losses *l, const char *name, const struct seg_tensor *v,
                                   double scale);
/* Reads the stats buffer (one host sync) and resolves the entries into name/value. */
enum seg_status seg_losses_resolve(struct seg_losses *l);
/* The first entry whose value is NaN or infinite (after seg_losses_resolve), or -1. */
int seg_losses_first_nonfinite(const struct seg_losses *l);

struct seg_trainer;
struct seg_dist;

struct seg_method {
    const char *name;
    /* Creates the method's own models (discriminators, ...) in t. */
    enum seg_status (*init)(struct seg_trainer *t);
    /* One iteration: forward, backward and every optimizer step. */
    enum seg_status (*step)(struct seg_trainer *t, const struct seg_batch *src,
                            const struct seg_batch *tgt, struct seg_losses *losses);
    /* Optional: frees t->priv (device state registered with seg_trainer_add_state is freed
     * by the trainer). */
    void (*destroy)(struct seg_trainer *t);
};
const struct seg_method *seg_method_find(const char *name);
/* "source_only, adaptsegnet, ..." */
const char *seg_method_names(void);
/* The registered methods, source_only first. */
int seg_method_count(void);
const struct seg_method *seg_method_at(int i);

#define SEG_MAX_AUX_MODELS 4
#define SEG_MAX_METHOD_STATE 8
struct seg_trainer {
    struct seg_config        cfg;
    const struct seg_method *method;
    struct seg_backend      *be;
    struct seg_ag           *ag;
    struct seg_model        *model;          /* the segmentation network */
    struct seg_optim        *opt;
    struct seg_model        *aux[SEG_MAX_AUX_MODELS]; /* discriminators */
    struct seg_optim        *aux_opt[SEG_MAX_AUX_MODELS];
    int                      naux;
    int64_t                  iter;           /* iterations done */
    int64_t                  iterations;     /* poly horizon */
    int                      accumulate;     /* sub-batches per optimizer step (solver.accumulate) */
    struct seg_lr_schedule   sched;          /* solver.*: poly, in rounds (solver.rounds) */
    double                   lr, lr_aux;     /* current rates */
    uint64_t                 rng;            /* the method's own randomness */
    /* The method's device state that a checkpoint must carry for an exact resume (class
     * statistics, prototypes, thresholds): F32 tensors saved as "state.<name>". */
    int                      nstate;
    struct seg_tensor       *state[SEG_MAX_METHOD_STATE];
    char                     state_name[SEG_MAX_METHOD_STATE][48];
    void                    *priv;           /* the method's host-side data */
    /* Data-parallel training (NULL: one process): this rank's batches are its shard of the
     * global batch; gradients, batch-norm statistics and the method's global statistics
     * are combined over the ranks. */
    struct seg_dist         *dist;
    /* [SEG_STATS_SLOTS + 1] F32: the step's device entries (struct seg_losses), then the
     * flag set by the non-finite test that gates every optimizer step (skip_flag views it). */
    struct seg_tensor       *stats, *skip_flag;
    /* The next iteration's batches (seg_trainer_prefetch), uploaded at the end of this step
     * before its host wait; seg_batch_upload hands the uploaded tensors out. */
    struct seg_batch         next[2];
    int                      nnext;
    struct seg_prefetched {
        const float       *images; /* the host batch it came from, with n, h, w */
        int                n, h, w;
        struct seg_tensor *x, *labels;
    } pre[2];
};

/* Registers an F32 device tensor (the trainer takes ownership) as method state: saved in
 * every checkpoint and restored by seg_trainer_resume. */
/* The device-side test of the step's entries so far (no host sync): where one is NaN or
 * infinite, every later optimizer step of this iteration changes nothing (one process;
 * seg_check_finite calls it). */
enum seg_status seg_trainer_test_finite(const struct seg_trainer *t, const struct seg_losses *l);
enum seg_status seg_trainer_add_state(struct seg_trainer *t, const char *name, struct seg_tensor *tensor);
/* A frozen model of the student's architecture as the next aux model (teachers, frozen
 * copies): no parameter requires grad, and a never-stepped optimizer makes the trainer
 * checkpoint and restore it. Its weights are the architecture's initial ones (*out: the model). */
enum seg_status seg_trainer_add_frozen(struct seg_trainer *t, struct seg_model **out);

/* Builds the models and optimizers the configuration asks for, on be. */
enum seg_status seg_trainer_create(const struct seg_config *cfg, struct seg_backend *be,
                                   struct seg_trainer **out);
/* The same as one rank of a data-parallel job (dist may be NULL): every model and method
 * state starts from rank 0's, every optimizer averages gradients over the ranks and, with
 * train.sync_bn, batch norm uses the global batch's statistics. */
enum seg_status seg_trainer_create_dist(const struct seg_config *cfg, struct seg_backend *be,
                                        struct seg_dist *dist, struct seg_trainer **out);
/* Ranks > 0 take rank 0's weights, optimizer state, method state, iteration and RNG (after
 * rank 0 alone resumed from a checkpoint). No-op in a one-rank job. */
enum seg_status seg_trainer_sync_from_root(struct seg_trainer *t);
void seg_trainer_destroy(struct seg_trainer *t);
/* One iteration at the poly learning rate of t->iter, then t->iter++. In a data-parallel
 * job the logged loss values are the mean over the ranks. */
enum seg_status seg_trainer_step(struct seg_trainer *t, const struct seg_batch *src,
                                 const struct seg_batch *tgt, struct seg_losses *losses);
/* Checkpoint: every model's weights, every optimizer's state, the iteration and RNG state,
 * in one safetensors file written atomically. */
enum seg_status seg_trainer_save(const struct seg_trainer *t, const char *path);
enum seg_status seg_trainer_resume(struct seg_trainer *t, const char *path);

/* Names the batches of the next iteration (their memory must stay valid until that step):
 * the coming seg_trainer_step uploads them after queueing its own work and before its one
 * host wait, so the transfer overlaps the step instead of starting the next one. */
void seg_trainer_prefetch(struct seg_trainer *t, const struct seg_batch *src, const struct seg_batch *tgt);

/* Uploads a host batch as a tape constant [N, 3, H, W] (and its labels, if any), or takes
 * the tensors a prefetch already uploaded from the same host batch (a sub-batch of it: a
 * view of them). */
enum seg_status seg_batch_upload(struct seg_trainer *t, const struct seg_batch *b,
                                 struct seg_var **images, struct seg_tensor **labels);

/* Sub-batch c of t->accumulate of b (images [c n/k, (c+1) n/k)); b may be NULL (out: n 0). */
void seg_batch_part(const struct seg_trainer *t, const struct seg_batch *b, int c, struct seg_batch *out);
/* The share of whole's labelled pixels (label != 255) that part holds, the weight that
 * makes the sub-batches' mean cross-entropies add up to the batch's mean; 1/k where whole
 * has no label or none is labelled. */
double seg_batch_label_share(const struct seg_trainer *t, const struct seg_batch *part,
                             const struct seg_batch *whole);

#endif
