/* pseudo_dass.h: the static pseudo-label rule of DASS, BiDA's released code
 * (cvlab-yonsei/DASS trainer/damnet_trainer.py gene_thres/save_pred, utils/func.py
 * thres_cb_plabel/gene_plabel_prop/mask_fusion), for `segda pseudo-label --mode dass`. */
#ifndef SEGDA_PSEUDO_DASS_H
#define SEGDA_PSEUDO_DASS_H

#include <stddef.h>
#include <stdint.h>

#include "segda.h"

/* Threshold of a class no image predicts: nothing passes it (DASS has none: it fails). */
#define SEG_DASS_NEVER 2.0f

/* One image's confidences of one class, v[n]: sorted ascending, every 5th value from the
 * smallest moved to the front (DASS keeps cls_probs[::5] to save memory); returns how many. */
size_t seg_dass_sample(float *v, size_t n);

/* A class's threshold from all its sampled confidences v[n] (n > 0; sorted in place):
 * with i = floor(n * portion), the i-th largest value; the smallest when i = 0 (Python's
 * v[-0] in DASS). */
float seg_dass_class_threshold(float *v, size_t n, double portion);

/* Labels of one image from its probabilities prob[C][px] (class-major): the argmax where
 * some class c has prob >= thr[c] (global, class-balanced), or where the argmax's
 * probability is above the image's own top `portion` cut (the value at rank
 * floor(portion * px) - 1 in descending order, strictly above it); 255 elsewhere.
 * pred, conf (px each, optional) receive the argmax and its probability. */
enum seg_status seg_dass_labels(const float *prob, int classes, size_t px, const float *thr, double portion,
                                uint8_t *lab, int32_t *pred, float *conf);

#endif
