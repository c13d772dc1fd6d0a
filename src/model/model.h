/* model.h: DeepLab-v2 (ResNet-101/50 caffe style, ResNet-101 torchvision style, a tiny
 * variant) and the AdaptSegNet
 * discriminator, with parameters named as the PyTorch state_dicts of AdaptSegNet/ADVENT
 * (conv1.weight, bn1.running_mean, layer1.0.downsample.1.weight, layer6.conv2d_list.0.weight),
 * so converted weights load one to one. The main classifier is layer6 (on layer4) and the
 * auxiliary one layer5 (on layer3), as in ADVENT's multi-level DeepLab-v2. */
#ifndef SEGDA_MODEL_H
#define SEGDA_MODEL_H

#include "model/autograd.h"

enum seg_arch {
    SEG_ARCH_DEEPLABV2_RESNET101,
    SEG_ARCH_DEEPLABV2_RESNET50,
    SEG_ARCH_DEEPLABV2_RESNET101_TV, /* SDCA's: torchvision's ResNet-101 with
                                        replace_stride_with_dilation [F, T, T] (stride on
                                        the 3x3 conv, floor max pool, first blocks of
                                        layer3/4 at dilation 1/2); same parameters */
    SEG_ARCH_DEEPLABV2_TINY,      /* one bottleneck per layer, width 8: tests and the demo */
    SEG_ARCH_DEEPLABV2_VGG16,     /* SDCA's VGG-16: pool4/pool5 removed, conv5 dilation 2,
                                     fc6/fc7 as 3x3 convs to 1024 with dilation 4 */
    SEG_ARCH_DISCRIMINATOR,       /* AdaptSegNet's fully-convolutional discriminator */
    SEG_ARCH_COUNT
};
const char *seg_arch_name(enum seg_arch a);
/* Returns -1 for an unknown name. */
int seg_arch_from_name(const char *name);

enum seg_bn_policy {
    SEG_BN_POLICY_FROZEN_AFFINE, /* batch statistics in training, gamma/beta fixed (AdaptSegNet) */
    SEG_BN_POLICY_FROZEN,        /* running statistics always, gamma/beta fixed (SDCA) */
    SEG_BN_POLICY_TRAINABLE,     /* batch statistics and trainable gamma/beta (PLCA) */
};

/* Initialisation of the ASPP classifier convolutions (layer5, layer6). */
enum seg_classifier_init {
    SEG_CLASSIFIER_INIT_NORMAL,  /* weights N(0, 0.01), bias 0 (AdaptSegNet, SDCA) */
    SEG_CLASSIFIER_INIT_PYTORCH, /* nn.Conv2d's default: weights and bias U(-b, b), b = 1/sqrt(fan_in)
                                    (PLCA's released code sets none) */
};

#define SEG_ASPP_MAX 4

struct seg_model_config {
    enum seg_arch      arch;
    int                num_classes;   /* output channels (discriminator: its input channels) */
    bool               multi_level;   /* auxiliary classifier on layer3 */
    bool               classifier_bias;
    enum seg_bn_policy bn;
    uint32_t           seed;          /* weight initialization */
    int                width;         /* 0: the architecture's own (ResNet base 64, D ndf 64) */
    bool               target_stem;   /* ResNet: a second conv1/bn1/layer1 for target-domain
                                         images, parameters under "target." (BiDA's released
                                         code); layer2-4 and the heads stay shared */
    bool               bn_eps_zero;   /* batch norm without epsilon, 1/sqrt(running_var)
                                         (SDCA's FrozenBatchNorm2d); needs the frozen
                                         policy. false: PyTorch's 1e-5 */
    int                aspp_rates[SEG_ASPP_MAX]; /* the classifiers' dilations, one branch
                                         (conv2d_list.i) each, 0-terminated; all 0: 6,12,18,24 */
};

/* "6,12" -> {6, 12, 0, 0}: 1 to SEG_ASPP_MAX distinct positive rates; the error names s. */
enum seg_status seg_aspp_rates_parse(const char *s, int rates[SEG_ASPP_MAX]);
/* The rates in use (the default when cfg leaves them 0) and their count. */
int seg_aspp_rates_of(const struct seg_model_config *cfg, int rates[SEG_ASPP_MAX]);

/* The target stem's parameter names: this prefix + the shared stem's (target.conv1.weight). */
#define SEG_TARGET_STEM_PREFIX "target."

struct seg_param {
    char            name[80];
    struct seg_var *var;
    int             group;   /* 0 backbone, 1 classifier heads */
    bool            is_buffer; /* running statistics: saved, never trained */
};

struct seg_model {
    struct seg_model_config cfg;
    struct seg_backend     *be;
    struct seg_param       *params;
    int                     nparams, cap;
    bool                    expose_branches; /* forward fills out->branches (BiDA) */
};

struct seg_model_out {
    struct seg_var *main;     /* logits at stride 8 (discriminator: its output map) */
    struct seg_var *aux;      /* auxiliary logits or NULL */
    struct seg_var *features; /* layer4 features (SDCA, PLCA) */
    struct seg_var *branches[SEG_ASPP_MAX]; /* the main ASPP's rate outputs before their sum, when
                                    the model's expose_branches is set (BiDA's released code) */
};

enum seg_status seg_model_create(struct seg_backend *be, const struct seg_model_config *cfg,
                                 struct seg_model **out);
void seg_model_destroy(struct seg_model *m);
/* train: batch statistics where the BN policy uses them. x is taken for a target-domain
 * image (what inference sees): a model with a target stem runs it. */
enum seg_status seg_model_forward(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                                  bool train, struct seg_model_out *out);
/* The same on a source-domain image: the shared stem, in a model with a target stem too. */
enum seg_status seg_model_forward_source(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                                         bool train, struct seg_model_out *out);
/* The main classifier (layer6) alone on layer4-like features: PLCA's test-time aggregation
 * runs it on aggregated features. */
enum seg_status seg_model_head(struct seg_ag *ag, struct seg_model *m, struct seg_var *features,
                               struct seg_var **logits);
/* Draws the ASPP classifier convolutions' weights (and biases) afresh by `init`, from a
 * stream of its own seeded by the model's seed (seg_model_create's is NORMAL). */
enum seg_status seg_model_init_classifier(struct seg_model *m, enum seg_classifier_init init);
struct seg_param *seg_model_find(struct seg_model *m, const char *name);
int64_t seg_model_num_params(const struct seg_model *m, bool trainable_only);
void seg_model_zero_grad(struct seg_model *m);
/* Copies every tensor of src (weights and running statistics) into dst, on the device; the
 * models must have the same architecture (teachers, frozen copies). */
enum seg_status seg_model_copy(struct seg_model *dst, const struct seg_model *src);

/* Checkpoints: safetensors with metadata (arch, num_classes, multi_level, ...). Extra
 * entries (optimizer state) may be added by the caller through `extra`. */
struct seg_st_file;
enum seg_status seg_model_save(const struct seg_model *m, const char *path,
                               const char *const *meta_kv, int nmeta);
/* Loads every parameter of m from path; shapes must match. strict: every model tensor
 * must be present. A target stem the file lacks (a checkpoint of a model without one, e.g.
 * the source-only weights BiDA starts from) starts as a copy of the file's shared stem. */
enum seg_status seg_model_load(struct seg_model *m, const char *path, bool strict);
/* Reads the architecture from a file's metadata. */
enum seg_status seg_model_config_from_file(const char *path, struct seg_model_config *cfg);
/* The architecture as checkpoint metadata (format, arch, num_classes, multi_level,
 * classifier_bias, width, target_stem, bn_eps_zero, and aspp_rates unless the default): fills
 * meta[0..k) with values held in buf and returns k <= SEG_MODEL_META_COUNT. */
enum { SEG_MODEL_META_COUNT = 9 };
struct seg_model_meta_buf {
    char nc[16], ml[8], bias[8], width[16], stem[8], eps0[8], rates[48];
};
struct seg_st_meta;
int seg_model_meta(const struct seg_model_config *cfg, struct seg_model_meta_buf *buf, struct seg_st_meta *meta);

#endif
