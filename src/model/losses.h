/* losses.h: the losses of the methods, composed from differentiable ops so they run on
 * every backend (the Lovasz-softmax included: sort, gather and cumsum run on the device). */
#ifndef SEGDA_LOSSES_H
#define SEGDA_LOSSES_H

#include "model/autograd.h"

/* mean(softplus(x) - x * target), PyTorch's BCEWithLogitsLoss. target is a constant. */
enum seg_status seg_ag_bce_with_logits(struct seg_ag *ag, struct seg_var *x,
                                       const struct seg_tensor *target, struct seg_var **out);
/* Same with a constant target value everywhere (the adversarial domain labels). */
enum seg_status seg_ag_bce_with_logits_const(struct seg_ag *ag, struct seg_var *x, float target,
                                             struct seg_var **out);
/* mean((a - b)^2) */
enum seg_status seg_ag_mse(struct seg_ag *ag, struct seg_var *a, struct seg_var *b,
                           struct seg_var **out);
/* PyTorch's kl_div(log_q, p, reduction=mean): mean(p * (log p - log_q)), p > 0. */
enum seg_status seg_ag_kl_div(struct seg_ag *ag, struct seg_var *log_q, struct seg_var *p,
                              struct seg_var **out);
/* Mean over pixels of the entropy -sum_c p log p of softmax(logits) along axis 1. */
enum seg_status seg_ag_entropy(struct seg_ag *ag, struct seg_var *logits, struct seg_var **out);
/* Inverted dropout: x * (u >= p) / (1 - p), u uniform from (seed, stream). */
enum seg_status seg_ag_dropout(struct seg_ag *ag, struct seg_var *x, float p, uint32_t seed,
                               uint32_t stream, struct seg_var **out);
/* Lovasz-softmax (Berman et al. 2018) over the whole batch, classes present in the labels:
 * probs [N, C, ...] (softmax outputs), labels I32 [N, ...] with ignore_index skipped. */
enum seg_status seg_ag_lovasz_softmax(struct seg_ag *ag, struct seg_var *probs,
                                      const struct seg_tensor *labels, int ignore_index,
                                      struct seg_var **out);
/* Largest k along the last axis (values and I32 indices), not differentiable. */
enum seg_status seg_topk(const struct seg_tensor *x, int64_t k, struct seg_tensor **values,
                         struct seg_tensor **indices);

#endif
