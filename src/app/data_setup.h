/* data_setup.h: datasets and loaders of a training configuration (shared by train, eval,
 * pseudo-label and demo). */
#ifndef SEGDA_DATA_SETUP_H
#define SEGDA_DATA_SETUP_H

#include "data/data.h"
#include "train/config.h"

enum seg_domain_role {
    SEG_ROLE_SOURCE,
    SEG_ROLE_TARGET,
    SEG_ROLE_VAL,         /* data.val_split of the target, labelled, one pass */
    SEG_ROLE_TARGET_PASS, /* the same one pass, unlabelled */
};

struct seg_domain {
    struct seg_dataset *ds;
    struct seg_loader  *loader;
    enum seg_norm       norm;
    uint32_t           *presence; /* class-balanced source sampling: class masks per image */
    uint32_t           *class_pixels; /* rare-class source sampling: [n][classes] pixel counts */
};

/* Opens the role's dataset and its loader: source (labelled, resized to data.source_size,
 * shuffled, endless), target (unlabelled, data.target_size, endless) or val (labelled,
 * data.eval_size with labels at full resolution, one pass, in order). */
/* data.source_sampling and the rare-class keys (data.rcs_*), checked, into lo's sampling
 * fields (lo may be NULL: the check alone). The class tables are left to the caller. */
enum seg_status seg_source_sampling_config(const struct seg_config *c, struct seg_loader_opts *lo);
enum seg_status seg_domain_open(const struct seg_config *c, enum seg_domain_role role, uint64_t seed,
                                struct seg_domain *out);
/* The same for rank `rank` of `nranks` data-parallel processes: it gets its equal share of
 * every batch of data.batch (val: one image a rank), the items and augmentation of the
 * one-process stream. */
enum seg_status seg_domain_open_shard(const struct seg_config *c, enum seg_domain_role role, uint64_t seed,
                                      int rank, int nranks, struct seg_domain *out);
void seg_domain_close(struct seg_domain *d);
/* The role's dataset alone (no loader): the files the loader would read. */
enum seg_status seg_domain_dataset(const struct seg_config *c, enum seg_domain_role role, struct seg_dataset **out);

#endif
