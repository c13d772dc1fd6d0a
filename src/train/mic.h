/* mic.h: the pieces of the DAFormer / MIC self-training recipe (method_mic.c), each on the
 * device and tested on its own against tests/loss_ref/mic.py:
 *   - the mean teacher's EMA update,
 *   - pseudo labels and their quality weight,
 *   - DACS class mixing (mask, image, label, weight),
 *   - MIC's block mask,
 *   - the pixel-weighted cross-entropy mmseg's decode heads use,
 *   - the thing-class ImageNet feature distance and its label downscaling (host).
 * The host-side helpers (class choice, label downscaling) work on the host batch the loader
 * already holds; they are O(pixels) and produce small tables that are uploaded. */
#ifndef SEGDA_MIC_H
#define SEGDA_MIC_H

#include "model/model.h"

/* The teacher's momentum at iteration iter (DAFormer dacs.py): min(1 - 1/(iter + 1), alpha),
 * so the first iterations follow the student closely. */
double seg_mic_ema_alpha(int64_t iter, double alpha);
/* teacher <- alpha teacher + (1 - alpha) student, every parameter that is not a buffer
 * (DAFormer updates parameters only; running statistics stay as they are). The models
 * must have the same architecture. */
enum seg_status seg_mic_ema_update(struct seg_model *teacher, const struct seg_model *student, float alpha);
/* One tensor of it, in place: t <- alpha t + (1 - alpha) s. */
enum seg_status seg_mic_ema_tensor(struct seg_tensor *t, const struct seg_tensor *s, float alpha);

/* The teacher's logits at the label size [N, C, H, W] -> pseudo labels I32 [N, H, W]
 * (argmax) and the weight F32 [N, 1, H, W]: the share of the batch's pixels whose top
 * softmax probability is >= thr (one value for the batch, as DAFormer), set to 0 on the
 * first ignore_top and the last ignore_bottom rows. *quality (optional) receives the share
 * as a [1] device value. */
enum seg_status seg_mic_pseudo_labels(const struct seg_tensor *logits, float thr, int ignore_top, int ignore_bottom,
                                      struct seg_tensor **labels, struct seg_tensor **weight,
                                      struct seg_tensor **quality);

/* DACS's class choice for a batch of n source label maps of hw pixels each: the distinct
 * values present in the whole batch (255 included: DACS's get_class_masks takes
 * torch.unique of the batch's labels for every image), of which (k + k % 2) / 2 are drawn
 * without replacement anew for each image; rows[i * 256 + v] = 1 for a value v chosen for
 * image i, else 0. rng: xorshift state, advanced. */
void seg_mic_choose_classes(const int32_t *labels, int64_t n, int64_t hw, uint64_t *rng, float *rows);
/* The mixing mask F32 [N, 1, H, W] = table[n][labels[n][p]] (table F32 [N, 256]). */
enum seg_status seg_mic_class_mask(const struct seg_tensor *labels, const struct seg_tensor *table,
                                   struct seg_tensor **mask);
/* out = mask a + (1 - mask) b: images a, b [N, C, H, W] (or weights [N, 1, H, W]) with mask
 * [N, 1, H, W]. */
enum seg_status seg_mic_mix(const struct seg_tensor *mask, const struct seg_tensor *a, const struct seg_tensor *b,
                            struct seg_tensor **out);
/* Mixed labels I32 [N, H, W]: a where mask is set, else b (a, b I32 [N, H, W]). */
enum seg_status seg_mic_mix_labels(const struct seg_tensor *mask, const struct seg_tensor *a,
                                   const struct seg_tensor *b, struct seg_tensor **out);

/* MIC's block mask from block uniforms u [N, 1, bh, bw]: 1 where u > ratio (the block is
 * kept), upsampled nearest to [N, 1, h, w]. */
enum seg_status seg_mic_block_mask(const struct seg_tensor *u, float ratio, int64_t h, int64_t w,
                                   struct seg_tensor **mask);
/* The block uniforms for an h x w image (round(h / block) x round(w / block) blocks, at
 * least 1) from the device's counter-based generator. */
enum seg_status seg_mic_block_uniforms(struct seg_backend *be, int64_t n, int64_t h, int64_t w, int block,
                                       uint32_t seed, uint32_t stream, struct seg_tensor **u);

/* mmseg's cross-entropy with a pixel weight: the mean over all N H W pixels (ignored ones
 * count in the denominator, as mmseg 0.16's 'mean' reduction) of
 * weight * -log_softmax(logits)[label], 0 where label is outside [0, C). logits [N, C, H, W]
 * at the label size, labels I32 [N, H, W], weight F32 [N, 1, H, W] or NULL (1). */
enum seg_status seg_mic_weighted_ce(struct seg_ag *ag, struct seg_var *logits, const struct seg_tensor *labels,
                                    const struct seg_tensor *weight, struct seg_var **loss);

/* DAFormer's downscale_label_ratio and thing mask on the host: labels [n, H, W] to the
 * feature grid [n, h, w]; cell (i, j) covers label rows [i H / h, (i + 1) H / h) and the
 * same for columns; its class is the most frequent of the nclasses there (ties: the lowest),
 * kept when it holds >= min_ratio of the cell's pixels (255 pixels count in the cell), and
 * mask = 1 where that class is a thing (is_thing[c]). */
void seg_mic_thing_mask(const int32_t *labels, int n, int H, int W, int h, int w, float min_ratio, int nclasses,
                        const unsigned char *is_thing, float *mask);
/* The feature distance: the mean over the masked cells of || f - fi ||_2 over channels
 * (f [N, D, h, w] the student's, fi the frozen ImageNet model's, mask F32 [N, 1, h, w]);
 * 0 when no cell is masked. */
enum seg_status seg_mic_feature_distance(struct seg_ag *ag, struct seg_var *f, const struct seg_tensor *fi,
                                         const struct seg_tensor *mask, struct seg_var **loss);

/* ---- DACS's strong augmentation of the mixed (and MIC's masked) images ----
 * In [0, 1] RGB (the stored values' normalisation undone, then redone): with `jitter`,
 * per image brightness (x b), contrast (blend with the image's mean luma), saturation
 * (blend with luma) and hue (a rotation of the chroma plane in YIQ by 2 pi h), each clamped
 * to [0, 1], in this order; with `blur`, per image a Gaussian of sigma, taps as
 * seg_mic_blur_taps, normalised at the border by the blur of ones. DACS (dacs_transforms.py)
 * uses kornia's ColorJitter (0.2 each) and GaussianBlur2d: its HSV hue shift and random
 * order of the four differ from the fixed order and YIQ rotation here, its reflection
 * padding from the normalised border. */
#define SEG_MIC_MAX_BATCH 64
enum seg_mic_norm { SEG_MIC_NORM_NONE, SEG_MIC_NORM_DEEPLAB, SEG_MIC_NORM_IMAGENET };
struct seg_mic_aug {
    bool  jitter, blur;
    int   n;
    float brightness[SEG_MIC_MAX_BATCH], contrast[SEG_MIC_MAX_BATCH], saturation[SEG_MIC_MAX_BATCH];
    float hue[SEG_MIC_MAX_BATCH], sigma[SEG_MIC_MAX_BATCH];
};
/* A uniform in [0, 1) from the xorshift state. */
double seg_mic_uniform(uint64_t *rng);
/* DACS's draws: jitter when u > p_jitter (0.2: 80% of the iterations), blur when u > p_blur
 * (0.5), one u each for the batch; factors uniform in [1 - s, 1 + s], hue in [-s, s],
 * sigma in [0.15, 1.15] per image. */
void seg_mic_draw_aug(uint64_t *rng, int64_t n, float p_jitter, float strength, float p_blur,
                      struct seg_mic_aug *aug);
/* DACS's kernel size for an image of this height (ceil(0.1 H), odd), capped at
 * 2 ceil(4 sigma) + 1 taps. */
int seg_mic_blur_taps(int64_t height, float sigma);
/* out = the augmented images x [N, 3, H, W] (stored as `norm` gives). */
enum seg_status seg_mic_strong_aug(const struct seg_tensor *x, enum seg_mic_norm norm, const struct seg_mic_aug *aug,
                                   struct seg_tensor **out);

#endif
