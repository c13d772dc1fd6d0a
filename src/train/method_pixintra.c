/* method_pixintra.c: PixIntraDA, pixel-level intra-domain adaptation (Yan et al., ACM MM
 * 2021; paper ../shared/papers/pixintra.txt, facts in methods.md section 4; no official code
 * exists). Stage II of a two-stage pipeline: stage I (inter-domain, AdaptSegNet here) gives
 * G_inter, whose weights are model.init (or pixintra.inter_weights); the trained network G
 * starts from model.init.
 *
 * Split (section 4.1). y = softmax(G_inter(x)) with the logits upsampled to the input size.
 *   t_k  = min(0.9, median over the target train set of max_j y_j on the pixels whose argmax
 *          is k)                                                   (pixintra.cap)
 *   M    = 1 (hard) iff y_k <= alpha t_k for every k                            (Eq. 2)
 *   yhat = argmax over {k : y_k > alpha t_k} of y_k on easy pixels, none on hard  (Eq. 3)
 *   Z    = 0 on easy pixels, 1 - max_k y_k on hard ones                        (Eq. 7)
 *   Prop = share of easy pixels over the target set                          (Eq. 4)
 * Losses (section 4.2), on the target only; two discriminators (AdaptSegNet's
 * FCDiscriminator) on the softmax of the main and auxiliary outputs, their logits
 * upsampled bilinearly to the input size:
 *   L_seg = CE(main, yhat) + loss.aux_weight * CE(aux, yhat), easy pixels only   (Eq. 5)
 *   PLA (Eq. 6): D tells hard (1) from easy (0) pixels; G makes hard pixels look easy
 *   CTS (Eq. 8): D regresses Z, L_D = ||D - Z||^2; G: L_adv = ||D o M||^2
 *   L_G = L_seg + lambda_adv_main * L_adv(main) + lambda_adv_aux * L_adv(aux)     (Eq. 9)
 * Rounds: round 2 (T = 1) regenerates t_k, M and yhat with the round-1 model as G_inter and
 * adds CRST's MR-KLD on the easy pixels: kld_weight * mean(-(1/C) sum_c log p_c).
 *
 * Choices the paper leaves open (each a key where it matters):
 * - The split is computed online: G_inter is kept frozen on the device and run (eval-mode
 *   BN) on each target batch, which equals the paper's offline pseudo labels for the same
 *   image and follows the batch's flip. t_k come from one pass over the target train set at
 *   data.target_size (no flip) when a round starts: a device histogram of confidences per
 *   predicted class (pixintra.bins bins, median interpolated inside its bin, error below
 *   1/bins; the paper does not say how the median is taken). Without data.target_root
 *   (the bench) they are the medians of the first target batch; pixintra.thresholds fixes
 *   them instead. The pass also writes <train.out>/pixintra_round<r>.txt: t_k and Prop for
 *   each alpha in pixintra.prop_alphas (the paper's Tables 5 and 8).
 * - Eq. 5 and Eq. 8 are sums; they are used as means (over easy pixels, and over N*H*W) so
 *   that AdaptSegNet's weights (0.001 / 0.0002, "the same as [32]") keep their meaning.
 * - Eq. 6's log of spatial sums is used literally (pixintra.pla_form = sum), each sum
 *   divided by its pixel count (a constant inside the log, gradients unchanged), with
 *   eps 1e-8 in the log; "bce" is per-pixel BCE. Each D term is halved as in AdaptSegNet.
 *   A term whose pixel set is empty in the batch is left out.
 * - D's output for CTS passes through a sigmoid (pixintra.cts_sigmoid), as the D of Eq. 6;
 *   D's logits are upsampled, then the sigmoid.
 * - KLD: CRST's form (weight 0.1) on the main output, round 2 only (pixintra.kld_rounds = all
 *   uses it in every round).
 * - Rounds split solver.iterations (pixintra.round_split of it is round 1); each round has
 *   its own poly schedule (pixintra.restart_lr) as separate runs of BDL/CRST would; G
 *   continues from the round-1 weights.
 * - The source batch is not used (the paper trains on Cityscapes images and pseudo labels);
 *   pixintra.source_weight > 0 adds the supervised source loss.
 * - Stage I normally is a separate AdaptSegNet run (model.init). pixintra.inter_share > 0 runs
 *   it inside this run instead, for that share of solver.iterations (AdaptSegNet's own step
 *   and adaptsegnet.* keys, with this method's discriminators); stage II then starts with
 *   G_inter = the stage-I model and freshly initialised discriminators (Adam moments reset).
 *   The demo uses it, since it starts every method from the source-only weights.
 * Ablation keys (Tables 3, 7): pixintra.pla, pixintra.cts, pixintra.rounds (2 = T=1),
 * pixintra.kld; alpha sets Prop (Tables 5, 8).
 * solver.accumulate = k: the thresholds t_k come from the target pass (or the first batch)
 * as before, in sub-batches; each training sub-batch is split by G_inter on its own (per
 * image, as the full batch), but the pixel counts that normalise Eq. 6 (n_easy, n_hard) and
 * the KLD are the sub-batch's, and every term weighs 1/k: with frozen BN the step differs
 * from the full batch's only through those normalisations (and the log of the spatial sums,
 * pixintra.pla_form = sum, which does not split).
 * State in checkpoints: G_inter as the last aux model (aux2; aux0 when neither pla nor stage I
 * needs the discriminators aux0/aux1) and "state.pixintra" = [round of the current t_k,
 * t_1..t_C], so that --resume continues exactly inside any phase. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "dist/dist.h"
#include "train/methods.h"
#include "train/pixintra.h"

struct pixintra {
    struct seg_model *inter;   /* G_inter (owned by the trainer as an aux model) */
    int   inter_slot;
    double alpha, cap, round_split, inter_share, kld_w, lam_main, lam_aux, aux_w, src_w;
    long  bins, rounds, max_images;
    bool  pla, cts, cts_sigmoid, bce, kld, kld_all, restart_lr;
    int   round;               /* the round the host thresholds belong to (0: none) */
    bool  synced;              /* host copy read from the state tensor */
    float thr[256];
    char  prop_alphas[256];
};

static enum seg_status parse_floats(const char *s, float *v, int max, int *n)
{
    *n = 0;
    while (*s) {
        char *end;
        double x = strtod(s, &end);
        if (end == s || *n == max)
            return seg_error(SEG_STATUS_INVALID, "pixintra: '%s': expected a comma-separated list of numbers", s);
        v[(*n)++] = (float)x;
        s = end + (*end == ',');
    }
    return SEG_STATUS_OK;
}

static void set_requires_grad(struct seg_model *m, bool on)
{
    for (int i = 0; i < m->nparams; i++)
        if (!m->params[i].is_buffer)
            m->params[i].var->requires_grad = on;
}

static enum seg_status pixintra_init(struct seg_trainer *t)
{
    struct pixintra *p = calloc(1, sizeof *p);
    if (!p)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "pixintra: out of host memory");
    t->priv = p;
    const struct seg_config *c = &t->cfg;
    double lr_d;
    long width;
    const char *form = seg_config_str(c, "pixintra.pla_form"), *kr = seg_config_str(c, "pixintra.kld_rounds");
    TRY(seg_config_float(c, "pixintra.alpha", &p->alpha));
    TRY(seg_config_float(c, "pixintra.cap", &p->cap));
    TRY(seg_config_int(c, "pixintra.bins", &p->bins));
    TRY(seg_config_int(c, "pixintra.rounds", &p->rounds));
    TRY(seg_config_float(c, "pixintra.round_split", &p->round_split));
    TRY(seg_config_float(c, "pixintra.inter_share", &p->inter_share));
    TRY(seg_config_bool(c, "pixintra.restart_lr", &p->restart_lr));
    if (t->sched.rounds != 1) /* its phases set the rates themselves (pixintra_step) */
        return seg_error(SEG_STATUS_INVALID, "config solver.rounds = %d: pixintra has its own rounds "
                         "(pixintra.rounds, pixintra.restart_lr); leave solver.rounds at 1", t->sched.rounds);
    TRY(seg_config_bool(c, "pixintra.pla", &p->pla));
    TRY(seg_config_bool(c, "pixintra.cts", &p->cts));
    TRY(seg_config_bool(c, "pixintra.cts_sigmoid", &p->cts_sigmoid));
    TRY(seg_config_bool(c, "pixintra.kld", &p->kld));
    TRY(seg_config_float(c, "pixintra.kld_weight", &p->kld_w));
    TRY(seg_config_float(c, "pixintra.lambda_adv_main", &p->lam_main));
    TRY(seg_config_float(c, "pixintra.lambda_adv_aux", &p->lam_aux));
    TRY(seg_config_float(c, "pixintra.source_weight", &p->src_w));
    TRY(seg_config_float(c, "pixintra.lr_d", &lr_d));
    TRY(seg_config_int(c, "pixintra.d_width", &width));
    TRY(seg_config_int(c, "pixintra.threshold_max_images", &p->max_images));
    TRY(seg_config_float(c, "loss.aux_weight", &p->aux_w));
    snprintf(p->prop_alphas, sizeof p->prop_alphas, "%s", seg_config_str(c, "pixintra.prop_alphas"));
    int nc = t->model->cfg.num_classes;
    if (strcmp(form, "sum") && strcmp(form, "bce"))
        return seg_error(SEG_STATUS_INVALID, "config pixintra.pla_form = '%s': sum or bce", form);
    if (strcmp(kr, "second") && strcmp(kr, "all"))
        return seg_error(SEG_STATUS_INVALID, "config pixintra.kld_rounds = '%s': second or all", kr);
    p->bce = !strcmp(form, "bce");
    p->kld_all = !strcmp(kr, "all");
    if (p->rounds < 1 || p->rounds > 2)
        return seg_error(SEG_STATUS_INVALID, "config pixintra.rounds = %ld: 1 or 2", p->rounds);
    if (!(p->round_split > 0 && p->round_split < 1))
        return seg_error(SEG_STATUS_INVALID, "config pixintra.round_split = %g: between 0 and 1", p->round_split);
    if (!(p->inter_share >= 0 && p->inter_share < 1))
        return seg_error(SEG_STATUS_INVALID, "config pixintra.inter_share = %g: 0 <= share < 1", p->inter_share);
    if (!(p->alpha > 0) || p->bins < 2 || (int64_t)nc * p->bins >= (1 << 24))
        return seg_error(SEG_STATUS_INVALID, "config pixintra.alpha = %g, pixintra.bins = %ld: alpha > 0, "
                         "2 <= bins, classes x bins < 2^24", p->alpha, p->bins);
    if (p->cts && !p->pla)
        return seg_error(SEG_STATUS_INVALID, "config pixintra.cts = true needs pixintra.pla = true "
                         "(CTS is the continuous form of the pixel-level adversarial loss)");
    if (!t->model->cfg.multi_level)
        p->lam_aux = 0.0;
    if (p->pla || p->inter_share > 0) { /* aux[0] on the auxiliary output, aux[1] on the main one */
        struct seg_model_config dc = {SEG_ARCH_DISCRIMINATOR, nc, false, true, SEG_BN_POLICY_TRAINABLE,
                                      t->model->cfg.seed + 17, (int)width, false, false, {0}};
        struct seg_optim_config oc = {SEG_OPTIM_ADAM, (float)lr_d, 0, 0, 0.9f, 0.99f, 1e-8f, {1.0f, 1.0f}};
        for (int i = 0; i < 2; i++) {
            dc.seed += (uint32_t)i;
            TRY(seg_model_create(t->be, &dc, &t->aux[i]));
            t->naux = i + 1;
            TRY(seg_optim_create(t->aux[i], &oc, &t->aux_opt[i]));
        }
    }
    /* G_inter: frozen; an optimizer that never steps keeps the trainer's aux bookkeeping. */
    struct seg_optim_config io = {SEG_OPTIM_SGD, 0.0f, 0, 0, 0, 0, 0, {0.0f, 0.0f}};
    p->inter_slot = t->naux;
    TRY(seg_model_create(t->be, &t->model->cfg, &t->aux[p->inter_slot]));
    t->naux++;
    p->inter = t->aux[p->inter_slot];
    TRY(seg_optim_create(p->inter, &io, &t->aux_opt[p->inter_slot]));
    const char *iw = seg_config_str(c, "pixintra.inter_weights");
    if (iw[0])
        TRY(seg_model_load(p->inter, iw, false));
    else
        TRY(seg_model_copy(p->inter, t->model));
    set_requires_grad(p->inter, false);
    /* Fixed thresholds: the pass is skipped. */
    const char *fixed = seg_config_str(c, "pixintra.thresholds");
    if (fixed[0]) {
        int n;
        TRY(parse_floats(fixed, p->thr, 256, &n));
        if (n != 1 && n != nc)
            return seg_error(SEG_STATUS_INVALID, "config pixintra.thresholds: %d values for %d classes "
                             "(give one or one a class)", n, nc);
        for (int k = n; k < nc; k++)
            p->thr[k] = p->thr[0];
    }
    struct seg_tensor *state = NULL;
    int64_t ss = nc + 1;
    TRY(seg_tensor_new(t->be, SEG_DTYPE_F32, 1, &ss, &state));
    enum seg_status st = seg_fill(state, 0.0f);
    if (st) {
        seg_tensor_free(state);
        return st;
    }
    return seg_trainer_add_state(t, "pixintra", state);
}

static void pixintra_destroy(struct seg_trainer *t)
{
    free(t->priv);
    t->priv = NULL;
}

static struct seg_tensor *state_tensor(struct seg_trainer *t)
{
    for (int i = 0; i < t->nstate; i++)
        if (!strcmp(t->state_name[i], "pixintra"))
            return t->state[i];
    return NULL;
}

/* y = softmax of G_inter's main logits upsampled to the input, [N, C, H, W] (owned). */
static enum seg_status inter_probs(struct seg_trainer *t, struct seg_model *m, const float *images, int n,
                                   int h, int w, struct seg_tensor **probs)
{
    int64_t xs[4] = {n, 3, h, w};
    struct seg_tensor *x = NULL, *up = NULL;
    struct seg_var *xv;
    struct seg_model_out o;
    bool prev = seg_ag_set_grad_enabled(t->ag, false);
    enum seg_status st = seg_tensor_new(t->be, SEG_DTYPE_F32, 4, xs, &x);
    if (!st) st = seg_tensor_write(x, images, (size_t)n * 3 * h * w * sizeof(float));
    if (!st) {
        st = seg_ag_const(t->ag, x, &xv);
        x = NULL;
    }
    if (!st) st = seg_model_forward(t->ag, m, xv, false, &o);
    if (!st) st = seg_resize_bilinear(o.main->value, h, w, true, &up);
    if (!st) st = seg_softmax(up, 1, false, probs);
    seg_tensor_free(x);
    seg_tensor_free(up);
    seg_ag_reset(t->ag);
    seg_ag_set_grad_enabled(t->ag, prev);
    return st;
}

static enum seg_status accumulate(struct seg_tensor **acc, struct seg_tensor *x)
{
    if (!*acc) {
        *acc = x;
        return SEG_STATUS_OK;
    }
    struct seg_tensor *sum = NULL;
    enum seg_status st = seg_binary(SEG_BINARY_ADD, *acc, x, &sum);
    seg_tensor_free(x);
    if (!st) {
        seg_tensor_free(*acc);
        *acc = sum;
    }
    return st;
}

static enum seg_status write_state(struct seg_trainer *t, struct pixintra *p, int round)
{
    float v[257];
    int nc = t->model->cfg.num_classes;
    v[0] = (float)round;
    memcpy(v + 1, p->thr, (size_t)nc * sizeof *v);
    p->round = round;
    return seg_tensor_write(state_tensor(t), v, (size_t)(nc + 1) * sizeof *v);
}

static enum seg_status thresholds_from_hist(struct seg_trainer *t, struct pixintra *p, const struct seg_tensor *h)
{
    int nc = t->model->cfg.num_classes;
    size_t nb = (size_t)nc * p->bins;
    float *hf = malloc(nb * sizeof *hf);
    double *hd = malloc(nb * sizeof *hd);
    enum seg_status st = !hf || !hd ? seg_error(SEG_STATUS_OUT_OF_MEMORY, "pixintra: out of host memory")
                                    : seg_tensor_read(h, hf, nb * sizeof *hf);
    for (size_t i = 0; !st && i < nb; i++)
        hd[i] = hf[i];
    /* data-parallel: each rank histogrammed its share of the images; integer counts summed
     * in double are exact, so every rank derives the one-process thresholds */
    if (!st) st = seg_dist_sum_f64(t->dist, hd, (int)nb);
    if (!st)
        seg_pixintra_thresholds(hd, nc, (int)p->bins, p->cap, p->thr);
    free(hf);
    free(hd);
    return st;
}

/* alpha * t_k as a device tensor [C]. */
static enum seg_status scaled_thresholds(struct seg_trainer *t, const struct pixintra *p, double alpha,
                                         struct seg_tensor **out)
{
    float v[256];
    int64_t nc = t->model->cfg.num_classes;
    for (int k = 0; k < nc; k++)
        v[k] = (float)(alpha * p->thr[k]);
    TRY(seg_tensor_new(t->be, SEG_DTYPE_F32, 1, &nc, out));
    return seg_tensor_write(*out, v, (size_t)nc * sizeof(float));
}

/* One or two passes over the target train set with G_inter: t_k, then Prop per alpha. */
static enum seg_status target_pass(struct seg_trainer *t, struct pixintra *p, int round)
{
    const struct seg_config *c = &t->cfg;
    const char *kind = seg_config_str(c, "data.target"), *norm = seg_config_str(c, "data.norm");
    const char *list = seg_config_str(c, "data.target_list");
    float alphas[16];
    int nalpha = 0;
    long batch, workers;
    TRY(parse_floats(p->prop_alphas, alphas, 16, &nalpha));
    TRY(seg_config_int(c, "data.batch", &batch));
    TRY(seg_config_int(c, "data.workers", &workers));
    int k = seg_dataset_kind_from_name(kind);
    if (k < 0)
        return seg_error(SEG_STATUS_INVALID, "config data.target = '%s': unknown dataset", kind);
    struct seg_dataset_opts o = {0};
    o.kind = (enum seg_dataset_kind)k;
    o.root = seg_config_str(c, "data.target_root");
    o.split = "train";
    o.city = seg_config_str(c, "data.city");
    o.list = list[0] ? list : NULL;
    o.num_classes = t->model->cfg.num_classes;
    o.max_items = (int)p->max_images;
    struct seg_dataset *ds = NULL;
    TRY(seg_dataset_open(&o, &ds));
    struct seg_loader_opts lo;
    seg_loader_opts_defaults(&lo);
    lo.ds = ds;
    /* each rank a training sub-batch of its share (no gradient: bounded by solver.accumulate) */
    lo.batch = (int)batch / t->accumulate * seg_dist_size(t->dist);
    lo.shard_rank = seg_dist_rank(t->dist);
    lo.shard_count = seg_dist_size(t->dist);
    lo.workers = (int)workers;
    lo.prefetch = 2;
    lo.norm = !strcmp(norm, "imagenet") ? SEG_NORM_IMAGENET : SEG_NORM_DEEPLAB;
    lo.repeat = false;
    lo.sampling = SEG_SAMPLING_SEQUENTIAL;
    seg_augment_defaults(&lo.aug);
    enum seg_status st = seg_config_size(c, "data.target_size", &lo.aug.resize_w, &lo.aug.resize_h);
    double easy[16] = {0}, total = 0;
    for (int pass = 0; !st && pass < (nalpha ? 2 : 1); pass++) {
        struct seg_loader *ld = NULL;
        struct seg_tensor *acc = NULL;
        st = seg_loader_create(&lo, &ld);
        while (!st) {
            struct seg_data_batch *b = NULL;
            struct seg_tensor *probs = NULL, *h = NULL;
            st = seg_loader_next(ld, &b);
            if (st || !b)
                break;
            st = inter_probs(t, p->inter, b->images, b->n, b->h, b->w, &probs);
            if (!st && pass == 0) {
                st = seg_pixintra_conf_hist(probs, (int)p->bins, &h);
                if (!st) st = accumulate(&acc, h);
            }
            for (int a = 0; !st && pass == 1 && a < nalpha; a++) {
                struct seg_tensor *thr = NULL, *e = NULL;
                float ev = 0; /* once a round: the host may read */
                st = scaled_thresholds(t, p, alphas[a], &thr);
                if (!st) st = seg_pixintra_easy_count(probs, thr, &e);
                if (!st) st = seg_tensor_read(e, &ev, sizeof ev);
                easy[a] += ev;
                seg_tensor_free(thr);
                seg_tensor_free(e);
            }
            total += pass == 1 ? (double)b->n * b->h * b->w : 0;
            seg_tensor_free(probs);
            seg_loader_release(ld, b);
        }
        seg_loader_destroy(ld);
        if (!st && pass == 0 && !acc)
            st = seg_error(SEG_STATUS_INVALID, "pixintra: the target set %s has no images", o.root);
        if (!st && pass == 0)
            st = thresholds_from_hist(t, p, acc);
        seg_tensor_free(acc);
    }
    seg_dataset_close(ds);
    if (!st) st = seg_dist_sum_f64(t->dist, easy, nalpha);
    if (!st) st = seg_dist_sum_f64(t->dist, &total, 1);
    if (st)
        return st;
    if (seg_dist_rank(t->dist) > 0)
        return write_state(t, p, round);
    /* The report: thresholds and the proportion of easy pixels (Eq. 4) per alpha. */
    char path[4200];
    snprintf(path, sizeof path, "%s/pixintra_round%d.txt", seg_config_str(c, "train.out"), round);
    FILE *f = fopen(path, "w");
    int nc = t->model->cfg.num_classes;
    fprintf(stderr, "pixintra: round %d: class thresholds t_k over %s:", round, o.root);
    for (int i = 0; i < nc; i++)
        fprintf(stderr, " %.3f", p->thr[i]);
    fprintf(stderr, "\n");
    if (f) {
        fprintf(f, "# PixIntraDA round %d: t_k = min(cap %.3g, median confidence of class k)\n", round, p->cap);
        for (int i = 0; i < nc; i++)
            fprintf(f, "%d %s %.6f\n", i, seg_labels_class_name(nc, i), p->thr[i]);
        fprintf(f, "# alpha  proportion of easy pixels (Eq. 4)\n");
    }
    for (int a = 0; a < nalpha; a++) {
        double prop = total > 0 ? easy[a] / total : 0;
        fprintf(stderr, "pixintra: round %d: alpha %.3g: easy-pixel proportion %.4f\n", round, alphas[a], prop);
        if (f)
            fprintf(f, "%.4g %.6f\n", alphas[a], prop);
    }
    if (f)
        fclose(f);
    return write_state(t, p, round);
}

static enum seg_status reset_discriminators(struct seg_trainer *t);

/* Thresholds for this round: from the checkpointed state, fixed, the target set, or (no
 * target set configured) the first batch. */
static enum seg_status ensure_round(struct seg_trainer *t, struct pixintra *p, int round,
                                    const struct seg_batch *tgt)
{
    int nc = t->model->cfg.num_classes;
    if (!p->synced) {
        float v[257];
        TRY(seg_tensor_read(state_tensor(t), v, (size_t)(nc + 1) * sizeof *v));
        p->synced = true;
        if ((int)v[0] > 0) {
            p->round = (int)v[0];
            memcpy(p->thr, v + 1, (size_t)nc * sizeof *v);
        }
    }
    if (p->round == round)
        return SEG_STATUS_OK;
    if (round == 2 || p->inter_share > 0) /* the model so far (stage I / round 1) becomes G_inter */
        TRY(seg_model_copy(p->inter, t->model));
    if (round == 1 && p->inter_share > 0)
        TRY(reset_discriminators(t));
    if (seg_config_str(&t->cfg, "pixintra.thresholds")[0])
        return write_state(t, p, round); /* fixed: the same in both rounds */
    if (seg_config_str(&t->cfg, "data.target_root")[0])
        return target_pass(t, p, round);
    struct seg_tensor *acc = NULL;
    fprintf(stderr, "pixintra: no data.target_root: thresholds from the first target batch\n");
    enum seg_status st = SEG_STATUS_OK;
    for (int c = 0; !st && c < t->accumulate; c++) { /* sub-batches: the counts add up */
        struct seg_batch part;
        struct seg_tensor *probs = NULL, *h = NULL;
        seg_batch_part(t, tgt, c, &part);
        st = inter_probs(t, p->inter, part.images, part.n, part.h, part.w, &probs);
        if (!st) st = seg_pixintra_conf_hist(probs, (int)p->bins, &h);
        if (!st) st = accumulate(&acc, h);
        seg_tensor_free(probs);
    }
    if (!st) st = thresholds_from_hist(t, p, acc);
    seg_tensor_free(acc);
    return st ? st : write_state(t, p, round);
}

/* Stage II's discriminators start afresh after an in-run stage I: new weights, no Adam state. */
static enum seg_status reset_discriminators(struct seg_trainer *t)
{
    for (int i = 0; i < 2; i++) {
        struct seg_model *fresh = NULL;
        struct seg_model_config dc = t->aux[i]->cfg;
        dc.seed += 1000;
        TRY(seg_model_create(t->be, &dc, &fresh));
        enum seg_status st = seg_model_copy(t->aux[i], fresh);
        seg_model_destroy(fresh);
        TRY(st);
        for (int k = 0; k < t->aux[i]->nparams; k++) {
            seg_tensor_free(t->aux_opt[i]->state1[k]);
            seg_tensor_free(t->aux_opt[i]->state2[k]);
            t->aux_opt[i]->state1[k] = t->aux_opt[i]->state2[k] = NULL;
        }
    }
    return SEG_STATUS_OK;
}

/* D's logits on softmax(logits), upsampled to h x w. */
static enum seg_status disc(struct seg_trainer *t, struct seg_model *d, struct seg_var *probs, int64_t h,
                            int64_t w, struct seg_var **out)
{
    struct seg_model_out o;
    TRY(seg_model_forward(t->ag, d, probs, true, &o));
    return seg_ag_resize_bilinear(t->ag, o.main, h, w, true, out);
}

static enum seg_status add_scaled(struct seg_ag *ag, struct seg_var **acc, struct seg_var *x, double w)
{
    struct seg_var *s, *sum;
    TRY(seg_ag_affine(ag, x, (float)w, 0.0f, &s));
    if (!*acc) {
        *acc = s;
        return SEG_STATUS_OK;
    }
    TRY(seg_ag_add(ag, *acc, s, &sum));
    *acc = sum;
    return SEG_STATUS_OK;
}

struct split {
    struct seg_tensor *labels, *hard, *easy, *z;
    struct seg_tensor *n_hard, *n_easy; /* pixel counts [1] on the device */
};

static void split_free(struct split *s)
{
    seg_tensor_free(s->n_hard);
    seg_tensor_free(s->n_easy);
    seg_tensor_free(s->labels);
    seg_tensor_free(s->hard);
    seg_tensor_free(s->easy);
    seg_tensor_free(s->z);
}

/* The G step on the target (and the optional source term). probs_out: the detached softmax
 * maps (main, aux) for the D step. */
static enum seg_status g_step(struct seg_trainer *t, struct pixintra *p, int round, const struct seg_batch *src,
                              const struct seg_batch *tgt, const struct split *sp, struct seg_losses *losses,
                              struct seg_tensor **probs_out)
{
    struct seg_var *x, *loss = NULL, *up[2] = {NULL, NULL}, *l;
    struct seg_model_out o;
    int64_t h = tgt->h, w = tgt->w;
    if (p->src_w > 0) { /* not in the paper: supervised source loss on the main output */
        struct seg_tensor *labels = NULL;
        struct seg_var *xs, *us;
        struct seg_model_out so;
        TRY(seg_batch_upload(t, src, &xs, &labels));
        enum seg_status st = seg_model_forward_source(t->ag, t->model, xs, true, &so);
        if (!st) st = seg_ag_resize_bilinear(t->ag, so.main, src->h, src->w, true, &us);
        if (!st) st = seg_ag_cross_entropy(t->ag, us, labels, NULL, 255, &l);
        seg_tensor_free(labels);
        if (!st) st = seg_losses_add_var(losses, "src_seg", l);
        if (!st) st = add_scaled(t->ag, &loss, l, p->src_w);
        TRY(st);
    }
    TRY(seg_batch_upload(t, tgt, &x, NULL));
    TRY(seg_model_forward(t->ag, t->model, x, true, &o));
    TRY(seg_ag_resize_bilinear(t->ag, o.main, h, w, true, &up[1]));
    if (o.aux && (p->aux_w != 0 || p->lam_aux != 0))
        TRY(seg_ag_resize_bilinear(t->ag, o.aux, h, w, true, &up[0]));
    /* Eq. 5; no easy pixel makes these terms 0 (on the device, no host test) */
    TRY(seg_ag_cross_entropy_or_zero(t->ag, up[1], sp->labels, NULL, 255, &l));
    TRY(seg_losses_add_var(losses, "seg", l));
    TRY(add_scaled(t->ag, &loss, l, 1.0));
    if (up[0] && p->aux_w != 0) {
        TRY(seg_ag_cross_entropy_or_zero(t->ag, up[0], sp->labels, NULL, 255, &l));
        TRY(seg_losses_add_var(losses, "seg_aux", l));
        TRY(add_scaled(t->ag, &loss, l, p->aux_w));
    }
    if (p->kld && (round == 2 || p->kld_all) && p->kld_w != 0) {
        TRY(seg_pixintra_kld(t->ag, up[1], sp->easy, sp->n_easy, &l));
        TRY(seg_losses_add_var(losses, "kld", l));
        TRY(add_scaled(t->ag, &loss, l, p->kld_w));
    }
    for (int lv = 1; p->pla && lv >= 0; lv--) {
        double lam = lv ? p->lam_main : p->lam_aux;
        struct seg_var *pr, *d;
        if (!up[lv] || lam == 0)
            continue;
        TRY(seg_ag_softmax(t->ag, up[lv], 1, false, &pr));
        TRY(seg_clone(pr->value, &probs_out[lv]));
        TRY(disc(t, t->aux[lv], pr, h, w, &d));
        if (p->cts)
            TRY(seg_pixintra_cts_g(t->ag, d, sp->hard, p->cts_sigmoid, &l));
        else
            TRY(seg_pixintra_pla_g(t->ag, d, sp->hard, sp->n_hard, p->bce, &l));
        TRY(seg_losses_add_var(losses, lv ? "adv" : "adv_aux", l));
        TRY(add_scaled(t->ag, &loss, l, lam));
    }
    if (!loss)
        return SEG_STATUS_OK; /* nothing to learn from this batch */
    if (t->accumulate > 1)
        TRY(seg_ag_affine(t->ag, loss, 1.0f / (float)t->accumulate, 0.0f, &loss));
    return seg_ag_backward(t->ag, loss);
}

/* One sub-batch (solver.accumulate): its split by G_inter, then G's and D's gradients, each
 * term a 1/k share (losses->weight). The optimizer steps follow the last sub-batch. */
static enum seg_status pixintra_part(struct seg_trainer *t, struct pixintra *p, int round, const struct seg_batch *src,
                                     const struct seg_batch *tgt, struct seg_losses *losses)
{
    /* The split of this batch by G_inter (Eq. 2, 3, 7), on the device. */
    struct split sp = {0};
    struct seg_tensor *probs = NULL, *thr = NULL, *dprobs[2] = {NULL, NULL};
    double share = 1.0 / t->accumulate;
    losses->weight = share;
    enum seg_status st = inter_probs(t, p->inter, tgt->images, tgt->n, tgt->h, tgt->w, &probs);
    if (!st) st = scaled_thresholds(t, p, p->alpha, &thr);
    if (!st) st = seg_pixintra_split(probs, thr, &sp.labels, &sp.hard, &sp.z);
    if (!st) st = seg_pixintra_easy_count(probs, thr, &sp.n_easy);
    if (!st) st = seg_unary(SEG_UNARY_AFFINE, sp.hard, -1.0f, 1.0f, &sp.easy);
    seg_tensor_free(probs);
    seg_tensor_free(thr);
    double npx = (double)tgt->n * tgt->h * tgt->w;
    int nranks = seg_dist_size(t->dist);
    if (!st && nranks > 1) { /* the D loss normalises by the global batch's counts, per rank */
        float e = 0;
        st = seg_tensor_read(sp.n_easy, &e, sizeof e);
        double v[2] = {e, npx};
        if (!st) st = seg_dist_sum_f64(t->dist, v, 2);
        if (!st) st = seg_fill(sp.n_easy, (float)(v[0] / nranks));
        npx = v[1] / nranks;
    }
    if (!st) st = seg_unary(SEG_UNARY_AFFINE, sp.n_easy, -1.0f, (float)npx, &sp.n_hard);
    if (!st) st = seg_losses_add_dev(losses, "easy", sp.n_easy, 1.0 / npx);

    for (int i = 0; p->pla && i < 2; i++)
        set_requires_grad(t->aux[i], false);
    if (!st) st = g_step(t, p, round, src, tgt, &sp, losses, dprobs);
    seg_ag_reset(t->ag);
    for (int i = 0; p->pla && i < 2; i++)
        set_requires_grad(t->aux[i], true);

    /* D on the detached maps: hard pixels 1 / easy 0 (PLA), or regress Z (CTS). */
    static const char *const dname[2] = {"d_aux", "d"};
    for (int lv = 1; !st && lv >= 0; lv--) {
        struct seg_var *v, *d, *l = NULL;
        if (!dprobs[lv])
            continue;
        st = seg_ag_const(t->ag, dprobs[lv], &v);
        dprobs[lv] = NULL;
        if (!st) st = disc(t, t->aux[lv], v, tgt->h, tgt->w, &d);
        if (!st)
            st = p->cts ? seg_pixintra_cts_d(t->ag, d, sp.z, p->cts_sigmoid, &l)
                        : seg_pixintra_pla_d(t->ag, d, sp.hard, sp.n_hard, sp.n_easy, p->bce, &l);
        if (!st) st = seg_losses_add_var(losses, dname[lv], l);
        if (!st && share != 1.0) st = seg_ag_affine(t->ag, l, (float)share, 0.0f, &l);
        if (!st) st = seg_ag_backward(t->ag, l);
        seg_ag_reset(t->ag);
    }
    seg_tensor_free(dprobs[0]);
    seg_tensor_free(dprobs[1]);
    split_free(&sp);
    losses->weight = 1.0;
    return st;
}

static enum seg_status pixintra_step(struct seg_trainer *t, const struct seg_batch *src,
                                     const struct seg_batch *tgt, struct seg_losses *losses)
{
    struct pixintra *p = t->priv;
    /* Phases: [0, start1) stage I (in-run AdaptSegNet, inter_share > 0), [start1, start2)
     * round 1, [start2, iterations) round 2. */
    int64_t total = t->iterations, start1 = (int64_t)llround(p->inter_share * (double)total);
    int64_t start2 = p->rounds == 2 ? start1 + (int64_t)llround(p->round_split * (double)(total - start1)) : total;
    int round = t->iter < start1 ? 0 : t->iter >= start2 ? 2 : 1;
    if (p->restart_lr && (start1 > 0 || p->rounds == 2)) { /* each phase its own poly schedule */
        double power;
        int64_t begin = round == 0 ? 0 : round == 1 ? start1 : start2;
        int64_t end = round == 0 ? start1 : round == 1 ? start2 : total;
        TRY(seg_config_float(&t->cfg, "solver.power", &power));
        t->lr = seg_poly_lr(t->opt->cfg.lr, t->iter - begin, end - begin, (float)power);
        if (p->pla || start1 > 0)
            t->lr_aux = seg_poly_lr(t->aux_opt[0]->cfg.lr, t->iter - begin, end - begin, (float)power);
    }
    if (round == 0) { /* stage I: AdaptSegNet's step (adaptsegnet.* keys), G_inter untouched */
        extern const struct seg_method seg_method_adaptsegnet;
        enum seg_status st = seg_method_adaptsegnet.step(t, src, tgt, losses);
        set_requires_grad(p->inter, false);
        return st;
    }
    TRY(ensure_round(t, p, round, tgt));
    seg_model_zero_grad(t->model);
    for (int i = 0; i < t->naux; i++)
        seg_model_zero_grad(t->aux[i]);
    for (int c = 0; c < t->accumulate; c++) {
        struct seg_batch sp, tp;
        seg_batch_part(t, src, c, &sp);
        seg_batch_part(t, tgt, c, &tp);
        TRY(pixintra_part(t, p, round, &sp, &tp, losses));
    }
    TRY(seg_check_finite(t, losses));
    TRY(seg_optim_step(t->opt, (float)t->lr));
    for (int lv = 1; p->pla && lv >= 0; lv--) /* the discriminators that got a gradient */
        if (lv ? p->lam_main != 0 : (p->lam_aux != 0 && t->model->cfg.multi_level))
            TRY(seg_optim_step(t->aux_opt[lv], (float)t->lr_aux));
    return SEG_STATUS_OK;
}

const struct seg_method seg_method_pixintra = {"pixintra", pixintra_init, pixintra_step, pixintra_destroy};
