/* evaluate.h: model outputs on the device to class maps, and evaluation over a loader. */
#ifndef SEGDA_EVALUATE_H
#define SEGDA_EVALUATE_H

#include "data/data.h"
#include "model/model.h"

struct seg_eval_opts {
    bool flip;          /* average the softmax of the image and its mirror */
    int  max_batches;   /* 0: all */
    bool progress;      /* print progress on stderr */
};

/* Class map of each image of images [N, 3, H, W] (host, normalized) at out_h x out_w:
 * logits upsampled bilinearly (align_corners), optional flip averaging, argmax, all on
 * the device. pred: N * out_h * out_w int32. prob_max (optional): the max softmax
 * probability per pixel (the confidence pseudo-labelers threshold). */
enum seg_status seg_predict_batch(struct seg_model *m, struct seg_ag *ag, const float *images, int n,
                                  int h, int w, int out_h, int out_w, bool flip, int32_t *pred,
                                  float *prob_max);

/* Confusion matrix of m over every batch of the loader (labels at their file resolution
 * when the loader's augmentation keeps them: label_full_res). */
enum seg_status seg_evaluate(struct seg_model *m, struct seg_loader *val,
                             const struct seg_eval_opts *o, struct seg_confusion *conf);

#endif
