/* config.c: the key table and the INI reader/writer. */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/config.h"

static const struct seg_config_key keys[] = {
    {"method.name", "source_only", "source_only | adaptsegnet | plca | sdca | bida | pixintra | mic"},
    {"model.arch", "deeplabv2_resnet101", "deeplabv2_resnet101 | deeplabv2_resnet50 | deeplabv2_tiny | deeplabv2_vgg16 | "
     "deeplabv2_resnet101_tv (SDCA's released code, core/models/feature_extractor.py: torchvision's ResNet-101 with "
     "replace_stride_with_dilation [F, T, T]: stride on the 3x3 conv, floor max pool, first blocks of layer3/4 at "
     "dilation 1/2; use with data.norm = imagenet)"},
    {"model.num_classes", "19", "19 (GTA5), 16 (SYNTHIA), 13 (Cross-City)"},
    {"model.multi_level", "true", "auxiliary classifier on layer3"},
    {"model.classifier_bias", "true", "bias on the ASPP classifier convolutions (PLCA's released code: false)"},
    {"model.classifier_init", "normal", "ASPP classifier weights: normal (N(0, 0.01), bias 0: AdaptSegNet, SDCA) | pytorch "
                                        "(nn.Conv2d's default, weight and bias U(-b, b), b = 1/sqrt(9 C_in): PLCA's released code "
                                        "model/segmentation/deeplabv2.py, which sets no init)"},
    {"model.aspp_rates", "6,12,18,24", "dilations whose ASPP classifier branches are built and summed, up to 4 "
                                       "(AdaptSegNet's released code: 6,12, model/deeplab_multi.py returns after the "
                                       "second branch); branch i is conv2d_list.i"},
    {"model.init", "", "initial weights (.safetensors), e.g. the converted ImageNet DeepLab init"},
    {"model.bn", "frozen_affine", "frozen_affine | frozen | trainable"},
    {"model.bn_eps_zero", "false", "batch norm without epsilon, 1/sqrt(running_var); needs model.bn = frozen (SDCA's "
     "released code: FrozenBatchNorm2d of core/models/layers.py, as in FADA's, with FREEZE_BN in its configs); "
     "false: PyTorch's 1e-5"},
    {"model.width", "0", "0: the architecture's width (tiny: 8)"},
    {"model.target_stem", "false", "ResNet: a second conv1/bn1/layer1 for target images, started from the shared one (BiDA's released code)"},
    {"data.source", "gta5", "gta5 | synthia | cityscapes | synth"},
    {"data.source_root", "", "source dataset folder"},
    {"data.source_list", "", "optional file list (one relative path a line)"},
    {"data.target", "cityscapes", "cityscapes | crosscity | synth"},
    {"data.target_root", "", "target dataset folder"},
    {"data.target_list", "", "optional file list"},
    {"data.val_list", "", "optional target val list"},
    {"data.source_size", "1280x720", "source train size WxH"},
    {"data.target_size", "1024x512", "target train size WxH"},
    {"data.eval_size", "1024x512", "network input size for evaluation"},
    {"eval.align_corners", "true", "evaluation / prediction: bilinear upsampling of the logits with corners "
                                   "aligned (true) or half-pixel centres (false: PLCA's released evaluation, "
                                   "F.interpolate align_corners=False)"},
    {"data.batch", "1", "images per domain per iteration"},
    {"data.norm", "deeplab", "input normalization: deeplab (BGR minus the caffe mean) | imagenet"},
    {"data.val_split", "val", "split of the target evaluated (cityscapes: val; segda synth also has dev, for tuning)"},
    {"data.city", "", "crosscity: Rio | Rome | Taipei | Tokyo"},
    {"data.workers", "2", "loader threads"},
    {"data.mirror", "true", "random horizontal flip"},
    {"data.short_side", "", "training: shorter side to a random integer in MIN-MAX instead of the *_size resize (PLCA: 760-988)"},
    {"data.crop", "", "training: random WxH crop after resizing, padded with 0 / 255 (PLCA: 730x730)"},
    {"data.scale_range", "", "training: LO,HI: the image at its file size times a factor uniform in [LO, HI), instead of the "
                             "*_size resize; excludes data.short_side and data.scales (SDCA's self-training, released code "
                             "configs/deeplabv2_r101_ssl.yaml: 0.5,1.5 with data.crop = 1024x512)"},
    {"data.scales", "", "training: S1,S2,...: the resized image (data.*_size or data.short_side) times one of these, "
                        "equally likely (paper, PixIntraDA: multi-scale training, scales not given; DASS: 0.8,1,1.2)"},
    {"data.source_photometric", "false", "SDCA's source colour jitter 0.5/0.5/0.5/0.2, grayscale p 0.2, 3x3 blur sigma 0.1-2"},
    {"data.source_sampling", "shuffle", "shuffle | class_balanced (SDCA: class ~ 1/log(1.01 + its frequency), then an image with it) | "
                                        "rare_class (DAFormer's RCS: class ~ softmax((1 - f_c) / data.rcs_temperature), f_c its share "
                                        "of the source's labelled pixels, then an image with more than data.rcs_min_pixels of it)"},
    {"data.rcs_temperature", "0.01", "rare-class sampling: temperature T (DAFormer: 0.01)"},
    {"data.rcs_min_pixels", "3000", "rare-class sampling: an image qualifies for a class with more than this many of its pixels "
                                    "at the label file's size (DAFormer: 3000)"},
    {"data.rcs_min_crop_ratio", "0.5", "rare-class sampling: re-crop (up to 10 crops) while the crop holds no more than "
                                       "rcs_min_pixels x this of the class (DAFormer: 0.5; 0: off)"},
    {"data.source_labels", "", "folder of label PNGs (segda pseudo-label output) replacing the source labels: "
                               "self-training on pseudo labels with data.source = the target dataset"},
    {"data.target_labels", "", "folder of pseudo-label PNGs for the target training images (methods that read them)"},
    {"data.skip_bad", "false", "skip unreadable images / bad labels with a warning (counted) instead of stopping"},
    {"eval.scales", "", "evaluation, predict: S1,S2,...: the mean softmax over the data.eval_size input resized on the "
                        "device by each factor (bilinear, half-pixel), each upsampled to the label size; empty: one scale "
                        "(paper, PixIntraDA: multi-scale testing, scales not given)"},
    {"solver.iterations", "250000", "schedule length (poly decay horizon)"},
    {"solver.stop", "0", "stop after this many iterations (0: solver.iterations)"},
    {"solver.lr", "2.5e-4", "base learning rate"},
    {"solver.optimizer", "sgd", "sgd (momentum, L2 weight decay) | adamw (betas 0.9, 0.999, eps 1e-8, decoupled weight decay "
                                "solver.weight_decay: DAFormer and MIC, configs/_base_/schedules/adamw.py: lr 6e-5, decay 0.01)"},
    {"solver.momentum", "0.9", "SGD momentum"},
    {"solver.weight_decay", "5e-4", "SGD weight decay"},
    {"solver.power", "0.9", "poly decay power"},
    {"solver.head_lr_mult", "10", "learning-rate multiplier of the classifier heads"},
    {"solver.accumulate", "1", "sub-batches per optimizer step: data.batch images per domain (a multiple of it) run "
                               "as this many equal sub-batches whose gradients (the discriminators' too) add up to the "
                               "full-batch mean before one step. The full-batch step where BN uses running statistics "
                               "(model.bn = frozen); with frozen_affine or trainable, BN batch statistics are per "
                               "sub-batch (released PLCA code: iter_size 2), and each method's per-batch terms as the "
                               "README says"},
    {"solver.rounds", "1", "split solver.iterations into N equal rounds, each with its own poly decay and fresh "
                           "optimizers (momentum / Adam state and step count dropped) (BiDA's released code: 10 rounds, "
                           "trainer/damnet_trainer.py builds a new SGD each round); pixintra: use pixintra.rounds"},
    {"solver.round_lr_factor", "0.5", "solver.rounds: base rate of each round / the previous one's (BiDA's released "
                                      "code: learning_rate / 2 after each round)"},
    {"solver.round_horizon", "1", "solver.rounds: poly horizon / round length, >= 1 (1: decays to 0 at each round's "
                                  "end; BiDA's released code: 1.2, utils/optimize.py decays over 6/5 of the round)"},
    {"solver.warmup_iters", "0", "linear learning-rate warm-up over the first N iterations, mmcv's (DAFormer, MIC: 1500): "
                                "the scheduled rate times 1 - (1 - iter/N)(1 - solver.warmup_ratio); 0: none"},
    {"solver.warmup_ratio", "1e-6", "solver.warmup_iters: the rate's factor at iteration 0 (mmcv's warmup_ratio)"},
    {"loss.aux_weight", "0.1", "weight of the auxiliary segmentation loss"},
    {"loss.source_lovasz", "0", "weight of a Lovasz-softmax term on the source prediction, added to the supervised loss of every method (released SDCA warm-up, train_with_ssl.sh: train_src.py SOLVER.LAMBDA_LOV 0.75; SDCA adaptation has its own sdca.lambda_lov)"},
    {"adaptsegnet.lambda_adv_main", "0.001", "adversarial weight on the main output"},
    {"adaptsegnet.lambda_adv_aux", "0.0002", "adversarial weight on the auxiliary output"},
    {"adaptsegnet.lr_d", "1e-4", "discriminator learning rate (Adam 0.9/0.99)"},
    {"adaptsegnet.d_width", "64", "discriminator base width (ndf)"},
    {"sdca.lambda_lov", "0.75", "SDCA: weight of the source Lovasz-softmax loss"},
    {"sdca.lambda_feat", "1.0", "SDCA: weight of the feature-level contrastive loss L_feat"},
    {"sdca.lambda_out", "1.0", "SDCA: weight of the output-level contrastive loss L_out"},
    {"sdca.use_lovasz", "true", "SDCA ablation: the Lovasz-softmax term"},
    {"sdca.use_feat", "true", "SDCA ablation: L_feat (layer4 / fc7 features)"},
    {"sdca.use_out", "true", "SDCA ablation: L_out (multi-level: on the classifier logits)"},
    {"sdca.target", "true", "SDCA: the contrastive terms on confident target pixels too"},
    {"sdca.tau", "100", "SDCA: temperature (the released code's; the paper gives none)"},
    {"sdca.delta", "0.9", "SDCA: target confidence threshold (max softmax)"},
    {"sdca.normalize", "true", "SDCA: L2-normalise pixel features and class means"},
    {"sdca.var_norm", "none", "SDCA: none (paper: variances as estimated) | l2 (released code: unit-norm variance vectors)"},
    {"sdca.init", "source_pass", "SDCA: source_pass (statistics over the source set before training) | online"},
    {"sdca.covariance", "diagonal", "SDCA: diagonal (released code: per-dimension variances) | full (paper's Eq. 4: C x A x A floats, 19 x 2048^2 x 4 B = 318 MB at layer4)"},
    {"plca.fass", "true", "PLCA ablation: feature-level cycle association L_fass (layer4, cosine)"},
    {"plca.cass", "true", "PLCA ablation: prediction-level cycle association L_cass (softmax, negative KL)"},
    {"plca.lsr", "true", "PLCA ablation: label smooth regularization on source and target"},
    {"plca.lovasz", "true", "PLCA ablation: the source Lovasz-softmax term"},
    {"plca.aggregation", "true", "PLCA ablation: spatial aggregation of the target before association (false: w/o SAGG)"},
    {"plca.contrastive", "true", "PLCA ablation: contrastive association (false: Sim-PLCA, raw similarities maximized)"},
    {"plca.contrast_norm", "true", "PLCA: contrast normalization of similarity rows (Eq. 5-6)"},
    {"plca.pred_agg_norm", "false", "PLCA: contrast-normalize the probability self-similarity too (released code: false)"},
    {"plca.alpha", "0.5", "PLCA: spatial aggregation ratio alpha, in (0, 1)"},
    {"plca.fass_weight", "0.1", "PLCA: beta2 of L_fass"},
    {"plca.cass_weight", "0.1", "PLCA: beta2 of L_cass"},
    {"plca.lovasz_weight", "0.75", "PLCA: beta1, weight of the Lovasz-softmax term"},
    {"plca.lovasz_scale", "1", "PLCA: extra Lovasz factor (released 2-GPU code: world_size x iter_size = 4)"},
    {"plca.lsr_weight", "0.01", "PLCA: beta3, weight of the source and of the target LSR term each"},
    {"plca.lsr_lambda", "10", "PLCA: LSR lambda (smoothness target of -mean_c log p_c)"},
    {"plca.iter_size", "1", "PLCA: alias of solver.accumulate (the released code's name; association per sub-batch)"},
    {"plca.ce_align_corners", "false", "PLCA: align_corners of the source logits' upsampling (released code: false)"},
    {"plca.test_aggregation", "features", "PLCA at eval: none | features (paper, Eq. 7) | both (released code: features and softmax)"},
    {"pixintra.alpha", "0.85", "PixIntraDA: scale of the class thresholds (GTA5 0.85, SYNTHIA 0.79; sets the easy share)"},
    {"pixintra.cap", "0.9", "PixIntraDA: cap of the median-confidence thresholds t_k"},
    {"pixintra.bins", "1000", "PixIntraDA: confidence histogram bins for the median (error < 1/bins)"},
    {"pixintra.thresholds", "", "PixIntraDA: fixed t_k (one value or one a class) instead of the target-set pass"},
    {"pixintra.threshold_max_images", "0", "PixIntraDA: target images in the threshold pass (0: all)"},
    {"pixintra.prop_alphas", "", "PixIntraDA: alphas whose easy-pixel proportion the pass reports, e.g. 0.7,0.85,1"},
    {"pixintra.inter_weights", "", "PixIntraDA: G_inter weights (empty: model.init)"},
    {"pixintra.pla", "true", "PixIntraDA ablation: pixel-level adversarial learning (Eq. 6)"},
    {"pixintra.pla_form", "sum", "PixIntraDA: sum (Eq. 6 as written, log of summed probabilities) | bce (per-pixel)"},
    {"pixintra.cts", "true", "PixIntraDA ablation: continuously indexed adversarial learning (Eq. 8)"},
    {"pixintra.cts_sigmoid", "true", "PixIntraDA: sigmoid on D's output in the CTS losses"},
    {"pixintra.rounds", "2", "PixIntraDA ablation: 1, or 2 (T=1: split regenerated by the round-1 model)"},
    {"pixintra.round_split", "0.5", "PixIntraDA: share of the stage-II iterations in round 1"},
    {"pixintra.inter_share", "0", "PixIntraDA: share of solver.iterations spent on stage I (AdaptSegNet, adaptsegnet.* keys) in this run; 0: stage I is model.init"},
    {"pixintra.restart_lr", "true", "PixIntraDA: a poly schedule per round"},
    {"pixintra.kld", "true", "PixIntraDA ablation: MR-KLD regularizer (CRST)"},
    {"pixintra.kld_weight", "0.1", "PixIntraDA: MR-KLD weight"},
    {"pixintra.kld_rounds", "second", "PixIntraDA: second (paper) | all"},
    {"pixintra.lambda_adv_main", "0.001", "PixIntraDA: adversarial weight beta, main output"},
    {"pixintra.lambda_adv_aux", "0.0002", "PixIntraDA: adversarial weight, auxiliary output"},
    {"pixintra.lr_d", "1e-4", "PixIntraDA: discriminator learning rate (Adam 0.9/0.99)"},
    {"pixintra.d_width", "64", "PixIntraDA: discriminator base width (ndf)"},
    {"pixintra.source_weight", "0", "PixIntraDA: supervised source loss weight (not in the paper: 0)"},
    {"bida.stage", "adapt", "BiDA: adapt (contrastive training) | distill (self-distillation from bida.distill_teacher)"},
    {"bida.feature", "layer4", "BiDA: contrast feature: layer4 (paper) | aspp (released code: the 4 ASPP outputs, 4C channels)"},
    {"bida.lambda_fc", "0.2", "BiDA: forward contrastive loss weight (0: off)"},
    {"bida.lambda_bc", "0.2", "BiDA: backward contrastive loss weight (0: off)"},
    {"bida.tau", "0.1", "BiDA: temperature of the contrastive softmax"},
    {"bida.ema", "0.99", "BiDA: momentum lambda of the EMA prototypes mu_S, mu_T"},
    {"bida.dynamic", "true", "BiDA: dynamic pseudo labels from pixel-prototype correspondences (false: static only, as the released code)"},
    {"bida.calibrate", "true", "BiDA: calibrate source prototypes by xi = mu_T - mu_S for the dynamic labels"},
    {"bida.dyn_threshold", "0.8", "BiDA: cosine similarity a dynamic label must exceed (T)"},
    {"bida.static_labels", "true", "BiDA: CBST static labels from the round's teacher (hybrid with the dynamic ones)"},
    {"bida.static_every", "10000", "BiDA: round length: the teacher for static labels is refreshed every N iterations"},
    {"bida.static_portion", "0.2", "BiDA: CBST portion: class k keeps its top P most confident pixels"},
    {"bida.static_source", "teacher", "BiDA: static labels y_F from the round's teacher, online per crop (teacher), or read with "
                                      "the target images from data.target_labels and cropped and flipped with them "
                                      "(target_labels), e.g. the released code's offline labels as segda pseudo-label "
                                      "--mode dass writes them"},
    {"bida.spatial_prior", "false", "BiDA: weight the static labels' confidences by the source labels' spatial prior (CBST-SP of [58])"},
    {"bida.prior_grid", "64x32", "BiDA: WxH grid of the spatial prior (positions relative to the image)"},
    {"bida.seg_t_labels", "static", "BiDA: labels of the target CE: static | hybrid | none"},
    {"bida.lambda_seg_s", "1", "BiDA: source CE weight"},
    {"bida.lambda_seg_t", "0.3", "BiDA: target CE weight (pseudo labels)"},
    {"bida.lambda_ent_s", "0.4", "BiDA: source entropy weight"},
    {"bida.lambda_ent_t", "0.12", "BiDA: target entropy weight"},
    {"bida.entropy_double_softmax", "false", "BiDA: Ent_S/Ent_T as released code (trainer/damnet_trainer.py entropy_loss): "
                                             "-sum p log softmax(p), p = softmax(logits), softmax applied twice; false: the true entropy"},
    {"bida.distill_teacher", "", "BiDA distill: the adapted model (.safetensors)"},
    {"bida.distill_threshold", "0.95", "BiDA distill: confidence of the teacher's hard target labels"},
    {"bida.distill_kl", "1.0", "BiDA distill: weight of KL(teacher || student) on the target"},
    {"mic.alpha", "0.999", "MIC/DAFormer: the mean teacher's EMA momentum (per step min(1 - 1/(iter + 1), alpha); "
                           "DAFormer mmseg/models/uda/dacs.py, configs/_base_/uda/dacs.py)"},
    {"mic.pseudo_threshold", "0.968", "MIC/DAFormer: a target pixel is confident when the teacher's top probability is "
                                      ">= this; the pseudo weight is the batch's confident share"},
    {"mic.ignore_top", "15", "MIC/DAFormer: pseudo weight 0 on the first N rows of the target crop (psweight_ignore_top)"},
    {"mic.ignore_bottom", "120", "MIC/DAFormer: pseudo weight 0 on the last N rows (psweight_ignore_bottom: the ego car)"},
    {"mic.mix", "true", "MIC/DAFormer ablation: DACS class mixing (half the source classes pasted onto the target)"},
    {"mic.fdist_lambda", "0.005", "MIC/DAFormer: weight of the thing-class ImageNet feature distance (0: off, no frozen model)"},
    {"mic.fdist_classes", "6,7,11,12,13,14,15,16,17,18", "MIC/DAFormer: the thing classes of the feature distance (Cityscapes ids)"},
    {"mic.fdist_min_ratio", "0.75", "MIC/DAFormer: a feature cell takes its majority class when it holds this share of the cell"},
    {"mic.aug", "true", "MIC/DAFormer: DACS's strong augmentation of the mixed and of the masked target images (colour jitter, blur)"},
    {"mic.jitter_p", "0.2", "MIC/DAFormer: colour jitter when a uniform draw exceeds this (once per batch: 80% of the iterations)"},
    {"mic.jitter_strength", "0.2", "MIC/DAFormer: brightness, contrast, saturation factors in [1 - s, 1 + s], hue shift in [-s, s]"},
    {"mic.blur_p", "0.5", "MIC/DAFormer: Gaussian blur (sigma 0.15-1.15) when a uniform draw exceeds this"},
    {"mic.mask", "true", "MIC ablation: masked image consistency on the target"},
    {"mic.mask_ratio", "0.7", "MIC: share of the target's blocks masked"},
    {"mic.mask_block", "32", "MIC: mask block size in pixels (MIC seg/experiments.py: 32 for the 512 crops of the DeepLab-v2 and DAFormer runs, 64 for HRDA)"},
    {"mic.mask_lambda", "1", "MIC: weight of the masked image consistency loss"},
    /* Each method's keys: "<method>.<key>", one block per method, above this line. */
    {"train.seed", "1234", "random seed"},
    {"train.sync_bn", "true", "data-parallel (mpirun): batch-statistics BN uses the global batch (synchronized BN)"},
    {"train.out", "runs/default", "output folder (checkpoints, metrics, config)"},
    {"train.eval_every", "2000", "evaluate on the target val set every N iterations (0: never)"},
    {"train.save_every", "2000", "checkpoint every N iterations"},
    {"train.log_every", "10", "metrics line every N iterations"},
    {"train.tensorboard", "true", "TensorBoard event files in train.out (losses, rates, mIoU, per-class IoU, prediction grids)"},
    {"train.eval_max", "0", "evaluate on at most N val images (0: all)"},
    {"train.device", "auto", "cpu | opencl[:P.D] | vulkan[:N] | auto"},
};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

const struct seg_config_key *seg_config_keys(int *n)
{
    *n = NKEYS;
    return keys;
}

static int find(const char *name)
{
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name))
            return i;
    return -1;
}

enum seg_status seg_config_init(struct seg_config *c)
{
    c->n = NKEYS;
    c->names = calloc(NKEYS, sizeof *c->names);
    c->values = calloc(NKEYS, sizeof *c->values);
    if (!c->names || !c->values)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "config: out of host memory");
    for (int i = 0; i < NKEYS; i++) {
        c->names[i] = (char *)keys[i].name;
        c->values[i] = strdup(keys[i].def);
        if (!c->values[i])
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "config: out of host memory");
    }
    return SEG_STATUS_OK;
}

void seg_config_free(struct seg_config *c)
{
    for (int i = 0; c->values && i < c->n; i++)
        free(c->values[i]);
    free(c->values);
    free(c->names);
    memset(c, 0, sizeof *c);
}

static enum seg_status put(struct seg_config *c, const char *name, const char *value, const char *where)
{
    int i = find(name);
    if (i < 0)
        return seg_error(SEG_STATUS_INVALID, "%s: unknown key '%s' (see segda train --help-config)",
                         where, name);
    char *v = strdup(value);
    if (!v)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "config: out of host memory");
    free(c->values[i]);
    c->values[i] = v;
    return SEG_STATUS_OK;
}

struct ini_ctx {
    struct seg_config *c;
    const char        *path;
    enum seg_status    st;
    char               msg[1024]; /* the first failed entry's error */
};

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = user;
    char key[160], where[1100];
    snprintf(key, sizeof key, "%s.%s", section, name);
    snprintf(where, sizeof where, "%s", x->path);
    enum seg_status st = put(x->c, key, value, where);
    if (st && !x->st) { /* the parser goes on after an error: keep the first one's message */
        x->st = st;
        snprintf(x->msg, sizeof x->msg, "%s", seg_last_error());
    }
    return st == SEG_STATUS_OK;
}

enum seg_status seg_config_load(struct seg_config *c, const char *path)
{
    struct ini_ctx x = {c, path, SEG_STATUS_OK, ""};
    int r = ini_parse(path, on_entry, &x);
    if (r < 0)
        return seg_error(SEG_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    if (x.st)
        return seg_error(x.st, "%s (line %d)", x.msg, r);
    if (r > 0)
        return seg_error(SEG_STATUS_FORMAT, "%s:%d: not an INI line (expected [section] or key = value)",
                         path, r);
    return SEG_STATUS_OK;
}

enum seg_status seg_config_set(struct seg_config *c, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return seg_error(SEG_STATUS_INVALID, "--set '%s': expected section.key=value", assignment);
    char name[160];
    snprintf(name, sizeof name, "%.*s", (int)(eq - assignment), assignment);
    return put(c, name, eq + 1, "--set");
}

const char *seg_config_str(const struct seg_config *c, const char *name)
{
    int i = find(name);
    return i < 0 ? "" : c->values[i];
}

enum seg_status seg_config_int(const struct seg_config *c, const char *name, long *out)
{
    const char *v = seg_config_str(c, name);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno)
        return seg_error(SEG_STATUS_INVALID, "config %s = '%s': not an integer", name, v);
    *out = x;
    return SEG_STATUS_OK;
}

enum seg_status seg_config_float(const struct seg_config *c, const char *name, double *out)
{
    const char *v = seg_config_str(c, name);
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end)
        return seg_error(SEG_STATUS_INVALID, "config %s = '%s': not a number", name, v);
    *out = x;
    return SEG_STATUS_OK;
}

enum seg_status seg_config_bool(const struct seg_config *c, const char *name, bool *out)
{
    const char *v = seg_config_str(c, name);
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
        *out = false;
    else
        return seg_error(SEG_STATUS_INVALID, "config %s = '%s': expected true or false", name, v);
    return SEG_STATUS_OK;
}

enum seg_status seg_config_floats(const struct seg_config *c, const char *name, int max, float *out, int *n)
{
    const char *v = seg_config_str(c, name), *p = v;
    *n = 0;
    while (*p) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !(x > 0 && x <= 16))
            return seg_error(SEG_STATUS_INVALID, "config %s = '%s': expected numbers in (0, 16] separated by commas",
                             name, v);
        if (*n == max)
            return seg_error(SEG_STATUS_INVALID, "config %s = '%s': at most %d values", name, v, max);
        out[(*n)++] = (float)x;
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return seg_error(SEG_STATUS_INVALID, "config %s = '%s': a trailing comma", name, v);
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_config_size(const struct seg_config *c, const char *name, int *w, int *h)
{
    const char *v = seg_config_str(c, name);
    char tail;
    if (sscanf(v, "%dx%d%c", w, h, &tail) != 2 || *w < 1 || *h < 1)
        return seg_error(SEG_STATUS_INVALID, "config %s = '%s': expected WxH", name, v);
    return SEG_STATUS_OK;
}

static void write_ini(const struct seg_config *c, FILE *f)
{
    char section[64] = "";
    for (int i = 0; i < c->n; i++) {
        const char *dot = strchr(c->names[i], '.');
        int sl = (int)(dot - c->names[i]);
        if (strncmp(section, c->names[i], (size_t)sl) || section[sl]) {
            snprintf(section, sizeof section, "%.*s", sl, c->names[i]);
            fprintf(f, "%s[%s]\n", i ? "\n" : "", section);
        }
        fprintf(f, "%s = %s\n", dot + 1, c->values[i]);
    }
}

void seg_config_print(const struct seg_config *c, void *file) { write_ini(c, file); }

enum seg_status seg_config_save(const struct seg_config *c, const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return seg_error(SEG_STATUS_IO, "%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "; effective configuration written by segda train\n");
    write_ini(c, f);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return seg_error(SEG_STATUS_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    return SEG_STATUS_OK;
}
