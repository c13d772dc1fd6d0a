/* sdca.h: the pieces of SDCA (method_sdca.c) that the loss-term tests also use: the
 * online per-class semantic distribution estimator and the closed-form upper bound of the
 * expected contrastive loss. Everything runs as ops on the tensors' backend. */
#ifndef SEGDA_SDCA_H
#define SEGDA_SDCA_H

#include "model/autograd.h"

struct seg_sdca_opts {
    float tau;       /* temperature (the released code: 100) */
    bool  normalize; /* L2-normalise pixel features and class means */
    bool  var_l2;    /* the released code's heuristic: each class variance vector to unit norm */
};

/* Source mask M_s: labels I32 [N, H, W] downsampled by nearest neighbour to [N, h, w]
 * (the feature map), as a one-hot F32 [N, C, h, w]; ignored pixels are all-zero. */
enum seg_status seg_sdca_source_onehot(const struct seg_tensor *labels, int64_t h, int64_t w,
                                       int num_classes, struct seg_tensor **onehot);
/* Target mask M_t (Eq. 5): argmax of softmax(logits [N, C, h, w]) where its maximum is
 * >= delta, else 255, as I32 [N, h, w]. */
enum seg_status seg_sdca_target_labels(const struct seg_tensor *logits, float delta,
                                       struct seg_tensor **labels);
/* One-hot F32 [N, C, h, w] of I32 labels [N, h, w] (255: all-zero). */
enum seg_status seg_sdca_onehot(const struct seg_tensor *labels, int num_classes,
                                struct seg_tensor **onehot);

/* Online update of the class statistics (Eq. 3 and Eq. 4) from the pixels of x [N, A, h, w]
 * (a value, no gradient is taken) grouped by onehot [N, C, h, w]: mean [C, A], var and
 * count [C] are updated in place. var [C, A]: the diagonal (biased variance per dimension);
 * var [C, A, A]: the full covariance matrices (Eq. 4 as written; C A^2 floats). coll (NULL:
 * one process): the batch is the global batch of every rank's pixels, as one process. */
enum seg_status seg_sdca_update(struct seg_ag *ag, const struct seg_tensor *x,
                                const struct seg_tensor *onehot, struct seg_tensor *mean,
                                struct seg_tensor *var, struct seg_tensor *count,
                                const struct seg_collective *coll);

/* The mean over the pixels selected by onehot [N, C, h, w] of L-bar (Eq. 14) for the pixel
 * representations x [N, A, h, w] (differentiable) against the distributions (mean [C, A],
 * var [C, A] diagonal: sum(q^2 var_k), or [C, A, A] full: q' Sigma_k q, no var_l2); 0 when
 * no pixel is selected. */
enum seg_status seg_sdca_loss(struct seg_ag *ag, struct seg_var *x, const struct seg_tensor *onehot,
                              const struct seg_tensor *mean, const struct seg_tensor *var,
                              const struct seg_sdca_opts *o, struct seg_var **loss);

#endif
