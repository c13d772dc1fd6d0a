/* pixintra.h: the pieces of PixIntraDA (Yan et al., ACM MM 2021) that the method
 * (method_pixintra.c) and the loss-term tests (tests/losses_pixintra.c) share: the
 * pixel-level easy/hard split (Eq. 2, 3, 7), the class thresholds t_k (median of the
 * confidences, capped), and the loss terms of Eq. 5, 6, 8 and CRST's MR-KLD. Every piece
 * runs on the tensors' device; only [C] and [C x bins] summaries come back to the host. */
#ifndef SEGDA_PIXINTRA_H
#define SEGDA_PIXINTRA_H

#include "model/losses.h"

/* Eq. 2, 3, 7. probs [N, C, H, W] (softmax of the inter-domain model), thr [C] = alpha * t_k.
 * labels I32 [N, H, W]: the class with the highest probability among those above their
 * threshold, 255 on hard pixels; hard F32 [N, 1, H, W] = M (1: hard); z F32 [N, 1, H, W] =
 * Z (0 on easy pixels, 1 - max_k y_k on hard ones). Any output may be NULL. */
enum seg_status seg_pixintra_split(const struct seg_tensor *probs, const struct seg_tensor *thr,
                                   struct seg_tensor **labels, struct seg_tensor **hard,
                                   struct seg_tensor **z);

/* Histogram F32 [C * bins] of the confidences (max_k y_k) of the pixels whose argmax is
 * class c, bin b = floor(conf * bins) (1.0 in the last bin), entry c * bins + b. */
enum seg_status seg_pixintra_conf_hist(const struct seg_tensor *probs, int bins,
                                       struct seg_tensor **hist);

/* Host: t_c = the (lower) median of class c's confidences from its histogram, interpolated
 * linearly inside the median's bin (error below 1/bins), then min(t_c, cap). A class that
 * no pixel predicts gets cap. */
void seg_pixintra_thresholds(const double *hist, int num_classes, int bins, double cap, float *thr);

/* The number of easy pixels (Eq. 4) of probs at thresholds thr [C] (already scaled), as a
 * device value [1] F32 (the step reads nothing on the host). */
enum seg_status seg_pixintra_easy_count(const struct seg_tensor *probs, const struct seg_tensor *thr,
                                        struct seg_tensor **easy);

/* Mean of x over the pixels where mask != 0 (x and mask have equal numel); count [1] F32 =
 * the number of those pixels, on the device: 0 pixels give 0 (divided by max(count, 1)). */
enum seg_status seg_pixintra_masked_mean(struct seg_ag *ag, struct seg_var *x, const struct seg_tensor *mask,
                                         const struct seg_tensor *count, struct seg_var **out);

/* CRST's MR-KLD on the pseudo-labelled (easy) pixels: mean over easy pixels of
 * -(1/C) sum_c log softmax(logits)_c. logits [N, C, H, W], easy [N, 1, H, W] F32. */
enum seg_status seg_pixintra_kld(struct seg_ag *ag, struct seg_var *logits, const struct seg_tensor *easy,
                                 const struct seg_tensor *count, struct seg_var **out);

/* PLA (Eq. 6) on the discriminator's upsampled logits d [N, 1, H, W], D = sigmoid(d).
 * form "sum": the paper's log of spatially summed probabilities, each sum divided by its
 * pixel count (a constant inside the log: same gradients):
 *   G: -log(mean_hard(1 - D) + eps)
 *   D: 0.5 * -log(mean_hard(D) + eps) + 0.5 * -log(mean_easy(1 - D) + eps)
 * form "bce": per-pixel BCE: G: mean_hard softplus(d); D: 0.5 * mean_hard softplus(-d) +
 * 0.5 * mean_easy softplus(d). A term whose pixel set is empty is 0 with no gradient (n_hard
 * or n_easy 0, device values [1] F32, tested on the device). */
#define SEG_PIXINTRA_EPS 1e-8f
enum seg_status seg_pixintra_pla_g(struct seg_ag *ag, struct seg_var *d, const struct seg_tensor *hard,
                                   const struct seg_tensor *n_hard, bool bce, struct seg_var **out);
enum seg_status seg_pixintra_pla_d(struct seg_ag *ag, struct seg_var *d, const struct seg_tensor *hard,
                                   const struct seg_tensor *n_hard, const struct seg_tensor *n_easy, bool bce,
                                   struct seg_var **out);

/* CTS (Eq. 8), squared Frobenius norms divided by the pixel count N*H*W, with
 * D = sigmoid(d) (or d itself when sigmoid is false):
 *   D: mean((D - Z)^2)      G: mean((D o M)^2) */
enum seg_status seg_pixintra_cts_d(struct seg_ag *ag, struct seg_var *d, const struct seg_tensor *z,
                                   bool sigmoid, struct seg_var **out);
enum seg_status seg_pixintra_cts_g(struct seg_ag *ag, struct seg_var *d, const struct seg_tensor *hard,
                                   bool sigmoid, struct seg_var **out);

#endif
