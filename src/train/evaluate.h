/* evaluate.h: model outputs on the device to class maps, and evaluation over a loader. */
#ifndef SEGDA_EVALUATE_H
#define SEGDA_EVALUATE_H

#include "data/data.h"
#include "model/model.h"
#include "train/config.h"

#define SEG_EVAL_MAX_SCALES 8
struct seg_eval_opts {
    bool flip;          /* average the softmax of the image and its mirror */
    /* Multi-scale testing: the mean of the softmax over the input resized by each factor
     * (on the device, bilinear), each upsampled to the output size; nscales 0: one, 1. */
    float scales[SEG_EVAL_MAX_SCALES];
    int   nscales;
    bool half_pixel;    /* upsample the logits with align_corners=False (eval.align_corners =
                           false); default: corners aligned */
    int  max_batches;   /* 0: all */
    bool progress;      /* print progress on stderr */
    /* PLCA's test-time spatial aggregation (train/plca.h): 0 none, 1 the layer4 features,
     * 2 the features and the softmax outputs; alpha its ratio; pred_norm as plca.pred_agg_norm. */
    int   aggregation;
    float agg_alpha;
    bool  agg_pred_norm;
    /* seg_predict_batch_opts: when set, receives the [N, C, out_h, out_w] probabilities on
     * the device (the caller frees them). */
    struct seg_tensor **probs;
};

/* The test-time options a training configuration implies (eval.scales; PLCA's
 * plca.test_aggregation when method.name is plca); leaves the other fields as they are. */
enum seg_status seg_eval_opts_from_config(const struct seg_config *c, struct seg_eval_opts *o);

/* Class map of each image of images [N, 3, H, W] (host, normalized) at out_h x out_w:
 * logits upsampled bilinearly (corners aligned unless o->half_pixel), optional flip
 * averaging, argmax, all on the device. pred: N * out_h * out_w int32. prob_max (optional): the max softmax
 * probability per pixel (the confidence pseudo-labelers threshold). */
enum seg_status seg_predict_batch(struct seg_model *m, struct seg_ag *ag, const float *images, int n,
                                  int h, int w, int out_h, int out_w, bool flip, int32_t *pred,
                                  float *prob_max);
/* The same with the options of o (flip, aggregation; NULL: none). */
enum seg_status seg_predict_batch_opts(struct seg_model *m, struct seg_ag *ag, const float *images,
                                       int n, int h, int w, int out_h, int out_w,
                                       const struct seg_eval_opts *o, int32_t *pred, float *prob_max);

/* Confusion matrix of m over every batch of the loader (labels at their file resolution
 * when the loader's augmentation keeps them: label_full_res). */
enum seg_status seg_evaluate(struct seg_model *m, struct seg_loader *val,
                             const struct seg_eval_opts *o, struct seg_confusion *conf);

#endif
