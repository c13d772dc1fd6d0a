/* bida.h: the pieces of BiDA (Lee et al., ECCV 2022) that method_bida.c composes and
 * tests/losses_bida.c checks against tests/loss_ref/bida.py. Every piece runs on the
 * device (ops and autograd only). Shapes: features [N, D, P] (P = h*w pixels at stride 8),
 * labels I32 [N, P] with 255 = none, prototypes [C, D], per-class flags F32 [C] (1 / 0). */
#ifndef SEGDA_BIDA_H
#define SEGDA_BIDA_H

#include "model/autograd.h"

/* ||f|| is taken as sqrt(sum f^2 + BIDA_NORM_EPS) so an all-zero feature has cosine 0. */
#define BIDA_NORM_EPS 1e-8f
/* Added to the logit of a class without a prototype: out of every softmax. */
#define BIDA_ABSENT_LOGIT -1e4f

/* Labels I32 [N, H, W] to the feature grid: [N, h*w], nearest (as the released code). */
enum seg_status bida_labels_to_grid(const struct seg_tensor *labels, int64_t h, int64_t w,
                                    struct seg_tensor **out);

/* Eq. (1): rho[c] = sum_p f(p) y(p, c) / sum_p y(p, c) over every image of the batch
 * (data-parallel: of every rank's batch, through the tape's collective), differentiable in
 * feat; classes without a pixel get a zero row and present[c] = 0. */
enum seg_status bida_prototypes(struct seg_ag *ag, struct seg_var *feat, const struct seg_tensor *labels,
                                int num_classes, struct seg_var **rho, struct seg_tensor **present);

/* s(f(p), rho(c)) as [N, C, P] (differentiable in both). */
enum seg_status bida_cosine(struct seg_ag *ag, struct seg_var *feat, struct seg_var *rho,
                            struct seg_var **sim);

/* Eq. (2) / (3): mean over labelled pixels of -log softmax_c(s(f(p), rho(c)) / tau)[y(p)],
 * the softmax over the classes that have a prototype; pixels whose class has none are
 * skipped; no pixel gives 0 with no gradient, decided on the device. npix (NULL: not
 * wanted): the pixels used, a device value [1] F32 the caller frees. */
enum seg_status bida_contrast(struct seg_ag *ag, struct seg_var *feat, struct seg_var *rho,
                              const struct seg_tensor *present, const struct seg_tensor *labels,
                              float tau, struct seg_var **loss, struct seg_tensor **npix);

/* Eq. (6)-(7): rho + (mu_t - mu_s) for classes whose two EMA prototypes exist
 * (seen [2, C]: row 0 source, row 1 target), rho unchanged elsewhere. */
enum seg_status bida_calibrate(const struct seg_tensor *rho, const struct seg_tensor *mu_s,
                               const struct seg_tensor *mu_t, const struct seg_tensor *seen,
                               struct seg_tensor **out);

/* Eq. (8)-(9): c' = argmax over present classes of s(f(p), proto(c)); label c' where that
 * similarity exceeds thr, else 255. feat [N, D, P] is a plain (detached) tensor. */
enum seg_status bida_dynamic_labels(const struct seg_tensor *feat, const struct seg_tensor *proto,
                                    const struct seg_tensor *present, float thr,
                                    struct seg_tensor **labels);

/* Eq. (10): the dynamic label where there is one, else the static one. */
enum seg_status bida_hybrid_labels(const struct seg_tensor *dyn, const struct seg_tensor *stat,
                                   struct seg_tensor **out);

/* Eq. (4) / (5) in place for the present classes: mu = lambda mu + (1 - lambda) rho, or
 * mu = rho the first time a class is seen (seen [C], a row of the [2, C] flags). */
enum seg_status bida_ema_update(struct seg_tensor *mu, struct seg_tensor *seen, const struct seg_tensor *rho,
                                const struct seg_tensor *present, float lambda);

/* CBST's class-balanced threshold over one batch of probabilities prob [N, C, P]: for each
 * class k, the confidence (max probability) of the pixels predicted k, sorted descending,
 * at position max(floor(portion * n_k) - 1, 0). thr [C] (-1 where n_k = 0), present [C]. */
enum seg_status bida_class_thresholds(const struct seg_tensor *prob, float portion,
                                      struct seg_tensor **thr, struct seg_tensor **present);

/* Static labels: argmax where its probability reaches thr[argmax], else 255. [N, P]. */
enum seg_status bida_static_labels(const struct seg_tensor *prob, const struct seg_tensor *thr,
                                   struct seg_tensor **labels);

/* CBST-SP's spatial prior ([58], "self-training with spatial priors"): counts [C, P] of
 * each class's source labels at every position of a fixed grid, over the source batches
 * trained on (labels [N, P] already on the grid; data-parallel: summed over ranks through
 * coll when given). */
enum seg_status bida_prior_update(struct seg_tensor *counts, const struct seg_tensor *labels,
                                  const struct seg_collective *coll);

/* The prior as weights q [C, P]: q(c, p) = (count(c, p) + 1) / (max_p count(c, p) + 1),
 * 1 where class c is most frequent in the source, near 0 where it never occurs. */
enum seg_status bida_prior_weights(const struct seg_tensor *counts, struct seg_tensor **q);

/* prob [N, C, h*w] times q [C, gh*gw] resized to h x w (bilinear, corners aligned):
 * CBST-SP's prior-weighted confidences, whose class thresholds and labels are then taken
 * as without the prior. */
enum seg_status bida_apply_prior(const struct seg_tensor *prob, const struct seg_tensor *q, int64_t gh, int64_t gw,
                                 int64_t h, int64_t w, struct seg_tensor **out);

/* Self-distillation: mean over pixels of KL(softmax(teacher) || softmax(student)) along
 * axis 1; teacher logits are a constant, student logits a variable of the same shape. */
enum seg_status bida_distill_kl(struct seg_ag *ag, const struct seg_tensor *teacher, struct seg_var *student,
                                struct seg_var **loss);

/* The released code's "entropy" (cvlab-yonsei/DASS trainer/damnet_trainer.py
 * entropy_loss): p = softmax(logits) along axis 1, then -sum_c p_c log softmax(p)_c, the
 * log-softmax taken of the probabilities a second time; mean over pixels. Not the entropy
 * of p: its minimum is not at a one-hot p and its gradient is much weaker. */
enum seg_status bida_entropy_double_softmax(struct seg_ag *ag, struct seg_var *logits, struct seg_var **loss);

/* Fraction of the pixels of labels I32 that are not 255, a device value [1] F32. */
enum seg_status bida_density(const struct seg_tensor *labels, struct seg_tensor **density);

#endif
