/* trainer.c: models and optimizers from the configuration, one iteration, checkpoints. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "dist/dist.h"
#include "model/safetensors.h"
#include "train/trainer.h"

#define TRY(expr) SEG_TRY(expr)

static void losses_put(struct seg_losses *l, const char *name, double value)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->name[i], name)) {
            l->value[i] += value;
            return;
        }
    if (l->n < SEG_MAX_TERMS) {
        l->name[l->n] = name;
        l->value[l->n++] = value;
    }
}

static void losses_entry(struct seg_losses *l, const char *name, int slot, double value)
{
    if (l->nent == SEG_STATS_SLOTS)
        return;
    l->ent_name[l->nent] = name;
    l->ent_slot[l->nent] = slot;
    l->ent_value[l->nent++] = value;
}

static double entry_weight(const struct seg_losses *l) { return l->weight != 0.0 ? l->weight : 1.0; }

void seg_losses_add(struct seg_losses *l, const char *name, double value)
{
    value *= entry_weight(l);
    losses_entry(l, name, -1, value);
    losses_put(l, name, value); /* host values are known at once */
}

/* slot += v * ratio on the device (a name's later sub-batch). */
static enum seg_status slot_add(struct seg_tensor *slot, const struct seg_tensor *v, double ratio)
{
    struct seg_tensor *f32 = NULL, *scaled = NULL, *sum = NULL;
    enum seg_status st = SEG_STATUS_OK;
    if (v->dtype == SEG_DTYPE_I32)
        st = seg_cast(v, SEG_DTYPE_F32, &f32);
    const struct seg_tensor *x = f32 ? f32 : v;
    if (!st && ratio != 1.0)
        st = seg_unary(SEG_UNARY_AFFINE, x, (float)ratio, 0.0f, &scaled);
    if (!st) st = seg_binary(SEG_BINARY_ADD, slot, scaled ? scaled : x, &sum);
    if (!st) st = seg_tensor_copy(slot, sum);
    seg_tensor_free(f32);
    seg_tensor_free(scaled);
    seg_tensor_free(sum);
    return st;
}

enum seg_status seg_losses_add_dev(struct seg_losses *l, const char *name, const struct seg_tensor *v,
                                   double scale)
{
    if (seg_tensor_numel(v) != 1 || (v->dtype != SEG_DTYPE_F32 && v->dtype != SEG_DTYPE_I32))
        return seg_error(SEG_STATUS_INVALID, "logged value '%s' is not one F32 or I32 number", name);
    scale *= entry_weight(l);
    int64_t one[1] = {1};
    for (int i = 0; l->stats && i < l->nent; i++) /* a name seen before: its slot adds it up */
        if (l->ent_slot[i] >= 0 && l->ent_value[i] != 0.0 && !strcmp(l->ent_name[i], name)) {
            struct seg_tensor *slot = NULL;
            enum seg_status st = seg_tensor_view(l->stats, l->ent_slot[i], 1, one, &slot);
            if (!st)
                st = slot_add(slot, v, scale / l->ent_value[i]);
            seg_tensor_free(slot);
            return st;
        }
    if (!l->stats || l->nslots == SEG_STATS_SLOTS) { /* outside a trainer step: read it now */
        float f = 0;
        int32_t i = 0;
        SEG_TRY(seg_tensor_read(v, v->dtype == SEG_DTYPE_F32 ? (void *)&f : (void *)&i, 4));
        double value = (v->dtype == SEG_DTYPE_F32 ? (double)f : (double)i) * scale;
        losses_entry(l, name, -1, value);
        losses_put(l, name, value);
        return SEG_STATUS_OK;
    }
    struct seg_tensor *slot = NULL, *f32 = NULL;
    enum seg_status st = seg_tensor_view(l->stats, l->nslots, 1, one, &slot);
    if (!st && v->dtype == SEG_DTYPE_I32)
        st = seg_cast(v, SEG_DTYPE_F32, &f32);
    if (!st)
        st = seg_tensor_copy(slot, f32 ? f32 : v);
    seg_tensor_free(slot);
    seg_tensor_free(f32);
    if (!st)
        losses_entry(l, name, l->nslots++, scale);
    return st;
}

enum seg_status seg_losses_resolve(struct seg_losses *l)
{
    float v[SEG_STATS_SLOTS + 1];
    if (l->stats && l->nslots > 0)
        SEG_TRY(seg_tensor_read(l->stats, v, sizeof v));
    l->nonfinite = l->stats && l->nslots > 0 && v[SEG_STATS_SLOTS] != 0.0f;
    l->n = 0;
    for (int i = 0; i < l->nent; i++)
        losses_put(l, l->ent_name[i], l->ent_slot[i] < 0 ? l->ent_value[i]
                                                         : (double)v[l->ent_slot[i]] * l->ent_value[i]);
    return SEG_STATUS_OK;
}

int seg_losses_first_nonfinite(const struct seg_losses *l)
{
    for (int i = 0; i < l->n; i++)
        if (!isfinite(l->value[i]))
            return i;
    return -1;
}

/* The device-side non-finite test over the step's entries so far: sets the flag that makes
 * every later optimizer step of this step a no-op. */
enum seg_status seg_trainer_test_finite(const struct seg_trainer *t, const struct seg_losses *l)
{
    if (!l->stats || l->nslots == 0)
        return SEG_STATUS_OK;
    int64_t n[1] = {l->nslots};
    struct seg_tensor *head = NULL;
    enum seg_status st = seg_tensor_view(l->stats, 0, 1, n, &head);
    if (!st)
        st = seg_nonfinite_any(head, t->skip_flag);
    seg_tensor_free(head);
    return st;
}

/* One line each; the method's own file defines seg_method_<name>. */
extern const struct seg_method seg_method_source_only, seg_method_adaptsegnet;
extern const struct seg_method seg_method_sdca;
extern const struct seg_method seg_method_plca;
extern const struct seg_method seg_method_pixintra;
extern const struct seg_method seg_method_bida;
extern const struct seg_method seg_method_mic;
static const struct seg_method *const methods[] = {
    &seg_method_source_only,
    &seg_method_adaptsegnet,
    &seg_method_plca,
    &seg_method_sdca,
    &seg_method_pixintra,
    &seg_method_bida,
    &seg_method_mic,
};
#define NMETHODS (sizeof methods / sizeof methods[0])

const struct seg_method *seg_method_find(const char *name)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (!strcmp(methods[i]->name, name))
            return methods[i];
    return NULL;
}

int seg_method_count(void) { return (int)NMETHODS; }

const struct seg_method *seg_method_at(int i) { return i >= 0 && i < (int)NMETHODS ? methods[i] : NULL; }

const char *seg_method_names(void)
{
    static _Thread_local char names[256];
    size_t len = 0;
    names[0] = 0;
    for (size_t i = 0; i < NMETHODS && len < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", methods[i]->name);
    return names;
}

/* solver.accumulate (plca.iter_size, the older PLCA-only name, is an alias): data.batch
 * must split into that many equal sub-batches. */
static enum seg_status accumulate_config(const struct seg_config *c, const char *method, int *out)
{
    long k, batch, iter_size = 1;
    TRY(seg_config_int(c, "solver.accumulate", &k));
    TRY(seg_config_int(c, "data.batch", &batch));
    if (!strcmp(method, "plca"))
        TRY(seg_config_int(c, "plca.iter_size", &iter_size));
    if (iter_size < 1)
        return seg_error(SEG_STATUS_INVALID, "config plca.iter_size = %ld: must be positive "
                         "(it is an alias of solver.accumulate)", iter_size);
    if (iter_size != 1 && k != 1 && iter_size != k)
        return seg_error(SEG_STATUS_INVALID, "config plca.iter_size = %ld and solver.accumulate = %ld: "
                         "plca.iter_size is an alias of solver.accumulate, set one", iter_size, k);
    if (iter_size != 1)
        k = iter_size;
    if (k < 1 || k > 4096)
        return seg_error(SEG_STATUS_INVALID, "config solver.accumulate = %ld: 1 to 4096", k);
    if (batch < 1 || batch % k)
        return seg_error(SEG_STATUS_INVALID, "config data.batch = %ld is not a multiple of solver.accumulate = %ld",
                         batch, k);
    *out = (int)k;
    return SEG_STATUS_OK;
}

static enum seg_status model_config(const struct seg_config *c, struct seg_model_config *mc)
{
    memset(mc, 0, sizeof *mc);
    const char *arch = seg_config_str(c, "model.arch"), *bn = seg_config_str(c, "model.bn");
    int a = seg_arch_from_name(arch);
    if (a < 0 || a == SEG_ARCH_DISCRIMINATOR)
        return seg_error(SEG_STATUS_INVALID, "config model.arch = '%s': unknown architecture", arch);
    long nc, width;
    TRY(seg_config_int(c, "model.num_classes", &nc));
    TRY(seg_config_int(c, "model.width", &width));
    TRY(seg_config_bool(c, "model.multi_level", &mc->multi_level));
    if (nc < 1 || nc > 255)
        return seg_error(SEG_STATUS_INVALID, "config model.num_classes = %ld: 1 to 255", nc);
    mc->arch = (enum seg_arch)a;
    mc->num_classes = (int)nc;
    mc->width = (int)width;
    TRY(seg_config_bool(c, "model.classifier_bias", &mc->classifier_bias));
    TRY(seg_config_bool(c, "model.target_stem", &mc->target_stem)); /* seg_model_create checks the arch */
    const char *rates = seg_config_str(c, "model.aspp_rates");
    if (seg_aspp_rates_parse(rates, mc->aspp_rates))
        return seg_error(SEG_STATUS_INVALID, "config model.aspp_rates = '%s': 1 to %d distinct positive "
                         "dilations, comma-separated (e.g. 6,12)", rates, SEG_ASPP_MAX);
    if (!strcmp(bn, "frozen_affine"))
        mc->bn = SEG_BN_POLICY_FROZEN_AFFINE;
    else if (!strcmp(bn, "frozen"))
        mc->bn = SEG_BN_POLICY_FROZEN;
    else if (!strcmp(bn, "trainable"))
        mc->bn = SEG_BN_POLICY_TRAINABLE;
    else
        return seg_error(SEG_STATUS_INVALID, "config model.bn = '%s': frozen_affine, frozen or trainable", bn);
    TRY(seg_config_bool(c, "model.bn_eps_zero", &mc->bn_eps_zero));
    if (mc->bn_eps_zero && mc->bn != SEG_BN_POLICY_FROZEN)
        return seg_error(SEG_STATUS_INVALID, "config model.bn_eps_zero = true needs model.bn = frozen (running "
                         "statistics), not %s", bn);
    long seed;
    TRY(seg_config_int(c, "train.seed", &seed));
    mc->seed = (uint32_t)seed;
    return SEG_STATUS_OK;
}

static enum seg_status schedule_config(const struct seg_config *c, long iters, struct seg_lr_schedule *s)
{
    double power, factor, horizon, wratio;
    long rounds, witers;
    TRY(seg_config_float(c, "solver.power", &power));
    TRY(seg_config_int(c, "solver.rounds", &rounds));
    TRY(seg_config_float(c, "solver.round_lr_factor", &factor));
    TRY(seg_config_float(c, "solver.round_horizon", &horizon));
    TRY(seg_config_int(c, "solver.warmup_iters", &witers));
    TRY(seg_config_float(c, "solver.warmup_ratio", &wratio));
    if (witers < 0 || witers > iters)
        return seg_error(SEG_STATUS_INVALID, "config solver.warmup_iters = %ld: 0 to solver.iterations (%ld)",
                         witers, iters);
    if (!(wratio >= 0 && wratio <= 1))
        return seg_error(SEG_STATUS_INVALID, "config solver.warmup_ratio = %g: 0 to 1", wratio);
    if (rounds < 1 || rounds > iters)
        return seg_error(SEG_STATUS_INVALID, "config solver.rounds = %ld: 1 to solver.iterations (%ld)",
                         rounds, iters);
    if (!(factor > 0))
        return seg_error(SEG_STATUS_INVALID, "config solver.round_lr_factor = %g: must be positive", factor);
    if (!(horizon >= 1))
        return seg_error(SEG_STATUS_INVALID, "config solver.round_horizon = %g: at least 1", horizon);
    *s = (struct seg_lr_schedule){iters, (float)power, (int)rounds, (float)factor, (float)horizon, witers,
                                  (float)wratio};
    return SEG_STATUS_OK;
}

enum seg_status seg_trainer_create(const struct seg_config *cfg, struct seg_backend *be,
                                   struct seg_trainer **out)
{
    return seg_trainer_create_dist(cfg, be, NULL, out);
}

/* Data-parallel wiring: rank 0's starting weights everywhere, gradient averaging in every
 * optimizer, synchronized BN on the tape. */
static enum seg_status join_ranks(struct seg_trainer *t)
{
    const struct seg_collective *c = seg_dist_collective(t->dist);
    bool sync_bn;
    TRY(seg_config_bool(&t->cfg, "train.sync_bn", &sync_bn));
    seg_ag_set_collective(t->ag, c, sync_bn);
    seg_optim_set_collective(t->opt, c);
    for (int i = 0; i < t->naux; i++)
        seg_optim_set_collective(t->aux_opt[i], c);
    return seg_trainer_sync_from_root(t);
}

static enum seg_status bcast_optim(struct seg_dist *d, struct seg_optim *o)
{
    struct seg_model *m = o->model;
    for (int i = 0; i < m->nparams; i++)
        for (int k = 0; k < 2; k++) {
            struct seg_tensor **slot = k ? &o->state2[i] : &o->state1[i];
            uint8_t has = *slot != NULL;
            TRY(seg_dist_bcast(d, &has, 1, 0));
            if (!has) {
                seg_tensor_free(*slot);
                *slot = NULL;
                continue;
            }
            if (!*slot)
                TRY(seg_tensor_new_like(m->params[i].var->value, slot));
            TRY(seg_dist_bcast_tensor(d, *slot, 0));
        }
    int32_t step = o->step;
    TRY(seg_dist_bcast(d, &step, sizeof step, 0));
    o->step = step;
    return SEG_STATUS_OK;
}

enum seg_status seg_trainer_sync_from_root(struct seg_trainer *t)
{
    struct seg_dist *d = t->dist;
    if (seg_dist_size(d) < 2)
        return SEG_STATUS_OK;
    TRY(seg_dist_bcast_model(d, t->model));
    TRY(bcast_optim(d, t->opt));
    for (int i = 0; i < t->naux; i++) {
        TRY(seg_dist_bcast_model(d, t->aux[i]));
        TRY(bcast_optim(d, t->aux_opt[i]));
    }
    for (int i = 0; i < t->nstate; i++)
        TRY(seg_dist_bcast_tensor(d, t->state[i], 0));
    int64_t v[2] = {t->iter, (int64_t)t->rng};
    TRY(seg_dist_bcast(d, v, sizeof v, 0));
    t->iter = v[0];
    t->rng = (uint64_t)v[1];
    return SEG_STATUS_OK;
}

enum seg_status seg_trainer_create_dist(const struct seg_config *cfg, struct seg_backend *be,
                                        struct seg_dist *dist, struct seg_trainer **out)
{
    *out = NULL;
    const char *mname = seg_config_str(cfg, "method.name");
    const struct seg_method *m = seg_method_find(mname);
    if (!m)
        return seg_error(SEG_STATUS_INVALID, "config method.name = '%s': available methods are %s",
                         mname, seg_method_names());
    struct seg_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "trainer: out of host memory");
    /* The trainer keeps its own copy of the configuration. */
    enum seg_status st = seg_config_init(&t->cfg);
    for (int i = 0; !st && i < cfg->n; i++) {
        char kv[4096];
        snprintf(kv, sizeof kv, "%s=%s", cfg->names[i], cfg->values[i]);
        st = seg_config_set(&t->cfg, kv);
    }
    t->method = m;
    t->be = be;
    t->dist = dist;
    struct seg_model_config mc;
    double lr, mom, wd, head;
    long iters, seed;
    if (!st) st = model_config(cfg, &mc);
    if (!st) st = seg_config_float(cfg, "solver.lr", &lr);
    if (!st) st = seg_config_float(cfg, "solver.momentum", &mom);
    if (!st) st = seg_config_float(cfg, "solver.weight_decay", &wd);
    if (!st) st = seg_config_float(cfg, "solver.head_lr_mult", &head);
    if (!st) st = seg_config_int(cfg, "solver.iterations", &iters);
    if (!st) st = seg_config_int(cfg, "train.seed", &seed);
    if (!st) st = accumulate_config(cfg, mname, &t->accumulate);
    if (!st && iters < 1)
        st = seg_error(SEG_STATUS_INVALID, "config solver.iterations = %ld: must be positive", iters);
    if (!st) st = schedule_config(cfg, iters, &t->sched);
    if (!st) st = seg_ag_create(be, &t->ag);
    if (!st) st = seg_model_create(be, &mc, &t->model);
    /* PLCA's released code leaves the classifier at nn.Conv2d's default init; model.init
     * (loaded next) replaces it where the file has the heads */
    const char *cinit = seg_config_str(cfg, "model.classifier_init");
    if (!st && !strcmp(cinit, "pytorch"))
        st = seg_model_init_classifier(t->model, SEG_CLASSIFIER_INIT_PYTORCH);
    else if (!st && strcmp(cinit, "normal"))
        st = seg_error(SEG_STATUS_INVALID, "config model.classifier_init = '%s': normal or pytorch", cinit);
    const char *init = seg_config_str(cfg, "model.init");
    if (!st && init[0])
        st = seg_model_load(t->model, init, false);
    if (!st) {
        const char *kind = seg_config_str(cfg, "solver.optimizer");
        bool adamw = !strcmp(kind, "adamw");
        /* AdamW at PyTorch's defaults (betas 0.9, 0.999, eps 1e-8), as DAFormer's configs */
        struct seg_optim_config oc = {adamw ? SEG_OPTIM_ADAMW : SEG_OPTIM_SGD, (float)lr, (float)mom, (float)wd,
                                      adamw ? 0.9f : 0.0f, adamw ? 0.999f : 0.0f, adamw ? 1e-8f : 0.0f,
                                      {1.0f, (float)head}};
        if (!adamw && strcmp(kind, "sgd"))
            st = seg_error(SEG_STATUS_INVALID, "config solver.optimizer = '%s': sgd or adamw", kind);
        else
            st = seg_optim_create(t->model, &oc, &t->opt);
    }
    t->iterations = iters;
    t->rng = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 1;
    if (!st && m->init)
        st = m->init(t);
    int64_t ns[1] = {SEG_STATS_SLOTS + 1}, one[1] = {1};
    if (!st) st = seg_tensor_new(be, SEG_DTYPE_F32, 1, ns, &t->stats);
    if (!st) st = seg_fill(t->stats, 0.0f);
    if (!st) st = seg_tensor_view(t->stats, SEG_STATS_SLOTS, 1, one, &t->skip_flag);
    /* One process gates its optimizers on the device; ranks of a data-parallel job test on
     * the host, together (seg_check_finite). */
    if (!st && seg_dist_size(dist) <= 1) {
        t->opt->skip = t->skip_flag;
        for (int i = 0; i < SEG_MAX_AUX_MODELS; i++)
            if (t->aux_opt[i])
                t->aux_opt[i]->skip = t->skip_flag;
    }
    if (!st && seg_dist_size(dist) > 1)
        st = join_ranks(t);
    if (st) {
        seg_trainer_destroy(t);
        return st;
    }
    *out = t;
    return SEG_STATUS_OK;
}

void seg_trainer_destroy(struct seg_trainer *t)
{
    if (!t)
        return;
    if (t->method && t->method->destroy)
        t->method->destroy(t);
    for (int i = 0; i < t->nstate; i++)
        seg_tensor_free(t->state[i]);
    for (int i = 0; i < t->naux; i++) {
        seg_optim_destroy(t->aux_opt[i]);
        seg_model_destroy(t->aux[i]);
    }
    seg_optim_destroy(t->opt);
    seg_model_destroy(t->model);
    seg_tensor_free(t->skip_flag);
    seg_tensor_free(t->stats);
    for (int i = 0; i < 2; i++) {
        seg_tensor_free(t->pre[i].x);
        seg_tensor_free(t->pre[i].labels);
    }
    seg_ag_destroy(t->ag);
    seg_config_free(&t->cfg);
    free(t);
}

enum seg_status seg_trainer_add_frozen(struct seg_trainer *t, struct seg_model **out)
{
    if (t->naux == SEG_MAX_AUX_MODELS)
        return seg_error(SEG_STATUS_INVALID, "trainer: more than %d auxiliary models", SEG_MAX_AUX_MODELS);
    int slot = t->naux;
    TRY(seg_model_create(t->be, &t->model->cfg, &t->aux[slot]));
    t->naux = slot + 1;
    for (int i = 0; i < t->aux[slot]->nparams; i++)
        t->aux[slot]->params[i].var->requires_grad = false;
    struct seg_optim_config oc = {SEG_OPTIM_SGD, 0.0f, 0, 0, 0, 0, 0, {1.0f, 1.0f}};
    TRY(seg_optim_create(t->aux[slot], &oc, &t->aux_opt[slot]));
    *out = t->aux[slot];
    return SEG_STATUS_OK;
}

enum seg_status seg_trainer_add_state(struct seg_trainer *t, const char *name, struct seg_tensor *tensor)
{
    if (t->nstate == SEG_MAX_METHOD_STATE || strlen(name) >= sizeof t->state_name[0] ||
        tensor->dtype != SEG_DTYPE_F32) {
        seg_tensor_free(tensor);
        return seg_error(SEG_STATUS_INVALID, "method state '%s': too many entries, name too long or not F32", name);
    }
    snprintf(t->state_name[t->nstate], sizeof t->state_name[0], "%s", name);
    t->state[t->nstate++] = tensor;
    return SEG_STATUS_OK;
}

static enum seg_status upload_next(struct seg_trainer *t);

enum seg_status seg_trainer_step(struct seg_trainer *t, const struct seg_batch *src,
                                 const struct seg_batch *tgt, struct seg_losses *losses)
{
    t->lr = seg_schedule_lr(&t->sched, t->opt->cfg.lr, t->iter);
    if (t->naux)
        t->lr_aux = seg_schedule_lr(&t->sched, t->aux_opt[0]->cfg.lr, t->iter);
    int64_t begin;
    if (seg_schedule_round(&t->sched, t->iter, &begin) > 0 && begin == t->iter) {
        /* a new round: every optimizer starts afresh (the released code builds a new one).
         * Derived from iter, so a checkpoint taken anywhere resumes into the same state. */
        seg_optim_reset(t->opt);
        for (int i = 0; i < t->naux; i++)
            seg_optim_reset(t->aux_opt[i]);
    }
    memset(losses, 0, sizeof *losses);
    losses->stats = t->stats;
    int nranks = seg_dist_size(t->dist);
    TRY(seg_fill(t->skip_flag, 0.0f));
    enum seg_status st = t->method->step(t, src, tgt, losses);
    seg_ag_reset(t->ag);
    if (!st)
        st = upload_next(t);
    /* The step's one host sync: every entry and the non-finite test, read together. */
    if (!st && nranks <= 1)
        st = seg_trainer_test_finite(t, losses);
    if (!st)
        st = seg_losses_resolve(losses);
    if (st)
        return st;
    int bad = seg_losses_first_nonfinite(losses);
    if (nranks <= 1 && (bad >= 0 || losses->nonfinite)) /* the optimizers skipped the update */
        return seg_error(SEG_STATUS_INVALID, "loss term '%s' is %g", bad >= 0 ? losses->name[bad] : "?",
                         bad >= 0 ? losses->value[bad] : NAN);
    t->iter++;
    if (nranks > 1) { /* the log shows the global batch's terms, when every rank has the same
                         ones (a method may skip a term its shard gives no pixel to) */
        int64_t n[2] = {losses->n, (int64_t)losses->n * losses->n};
        TRY(seg_dist_sum_i64(t->dist, n, 2));
        if (n[1] * nranks == n[0] * n[0]) { /* equality in Cauchy-Schwarz: every n the same */
            TRY(seg_dist_sum_f64(t->dist, losses->value, losses->n));
            for (int i = 0; i < losses->n; i++)
                losses->value[i] /= nranks;
        }
    }
    return SEG_STATUS_OK;
}

void seg_trainer_prefetch(struct seg_trainer *t, const struct seg_batch *src, const struct seg_batch *tgt)
{
    t->nnext = 0;
    if (src)
        t->next[t->nnext++] = *src;
    if (tgt && (!src || tgt->images != src->images))
        t->next[t->nnext++] = *tgt;
}

static enum seg_status upload_batch(struct seg_trainer *t, const struct seg_batch *b, bool with_labels,
                                    struct seg_tensor **x, struct seg_tensor **labels)
{
    int64_t xs[4] = {b->n, 3, b->h, b->w}, ls[3] = {b->n, b->h, b->w};
    *x = NULL;
    if (labels)
        *labels = NULL;
    enum seg_status st = seg_tensor_new(t->be, SEG_DTYPE_F32, 4, xs, x);
    if (!st) st = seg_tensor_write(*x, b->images, (size_t)b->n * 3 * b->h * b->w * sizeof(float));
    if (!st && with_labels) st = seg_tensor_new(t->be, SEG_DTYPE_I32, 3, ls, labels);
    if (!st && with_labels) st = seg_tensor_write(*labels, b->labels, (size_t)b->n * b->h * b->w * sizeof(int32_t));
    if (st) {
        seg_tensor_free(*x);
        *x = NULL;
        if (labels) {
            seg_tensor_free(*labels);
            *labels = NULL;
        }
    }
    return st;
}

/* The prefetched batches go up now; what this step did not take of the last ones goes. */
static enum seg_status upload_next(struct seg_trainer *t)
{
    for (int i = 0; i < 2; i++) {
        seg_tensor_free(t->pre[i].x);
        seg_tensor_free(t->pre[i].labels);
        memset(&t->pre[i], 0, sizeof t->pre[i]);
    }
    enum seg_status st = SEG_STATUS_OK;
    for (int i = 0; !st && i < t->nnext; i++) {
        const struct seg_batch *b = &t->next[i];
        struct seg_prefetched *p = &t->pre[i];
        st = upload_batch(t, b, b->labels != NULL, &p->x, &p->labels);
        p->images = b->images;
        p->n = b->n;
        p->h = b->h;
        p->w = b->w;
    }
    t->nnext = 0;
    return st;
}

enum seg_status seg_batch_upload(struct seg_trainer *t, const struct seg_batch *b,
                                 struct seg_var **images, struct seg_tensor **labels)
{
    for (int i = 0; i < 2; i++) { /* uploaded at the end of the previous step */
        struct seg_prefetched *p = &t->pre[i];
        if (!p->x || p->images != b->images || p->n != b->n || p->h != b->h || p->w != b->w ||
            (labels && !p->labels))
            continue;
        struct seg_tensor *x = p->x;
        p->x = NULL;
        p->images = NULL;
        if (labels) {
            *labels = p->labels;
            p->labels = NULL;
        }
        return seg_ag_const(t->ag, x, images);
    }
    for (int i = 0; i < 2; i++) { /* a sub-batch of a prefetched batch: views (the batch
                                     stays until the next upload, after this step) */
        struct seg_prefetched *p = &t->pre[i];
        size_t img = (size_t)3 * b->h * b->w;
        if (!p->x || p->h != b->h || p->w != b->w || b->images < p->images ||
            b->images + (size_t)b->n * img > p->images + (size_t)p->n * img ||
            (size_t)(b->images - p->images) % img || (labels && !p->labels))
            continue;
        int64_t first = (int64_t)((size_t)(b->images - p->images) / img);
        int64_t xs[4] = {b->n, 3, b->h, b->w}, ls[3] = {b->n, b->h, b->w};
        struct seg_tensor *x = NULL;
        TRY(seg_tensor_view(p->x, first * (int64_t)img, 4, xs, &x));
        enum seg_status st = SEG_STATUS_OK;
        if (labels)
            st = seg_tensor_view(p->labels, first * b->h * b->w, 3, ls, labels);
        if (st) {
            seg_tensor_free(x);
            return st;
        }
        st = seg_ag_const(t->ag, x, images);
        if (st && labels) {
            seg_tensor_free(*labels);
            *labels = NULL;
        }
        return st;
    }
    if (labels && !b->labels)
        return seg_error(SEG_STATUS_INVALID, "trainer: the batch has no labels");
    struct seg_tensor *x;
    TRY(upload_batch(t, b, labels != NULL, &x, labels));
    enum seg_status st = seg_ag_const(t->ag, x, images);
    if (st && labels) {
        seg_tensor_free(*labels);
        *labels = NULL;
    }
    return st;
}

void seg_batch_part(const struct seg_trainer *t, const struct seg_batch *b, int c, struct seg_batch *out)
{
    memset(out, 0, sizeof *out);
    if (!b)
        return;
    int k = t->accumulate > 0 ? t->accumulate : 1, n = b->n / k;
    size_t px = (size_t)b->h * b->w;
    *out = *b;
    out->n = n;
    out->images = b->images + (size_t)c * n * 3 * px;
    out->labels = b->labels ? b->labels + (size_t)c * n * px : NULL;
}

static int64_t labelled(const struct seg_batch *b)
{
    int64_t n = 0, total = (int64_t)b->n * b->h * b->w;
    for (int64_t i = 0; i < total; i++)
        n += b->labels[i] != 255;
    return n;
}

double seg_batch_label_share(const struct seg_trainer *t, const struct seg_batch *part,
                             const struct seg_batch *whole)
{
    int k = t->accumulate > 0 ? t->accumulate : 1;
    if (k == 1)
        return 1.0;
    int64_t all = whole->labels ? labelled(whole) : 0;
    return all > 0 ? (double)labelled(part) / (double)all : 1.0 / k;
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

struct ckpt {
    struct seg_st_tensor *t;
    void                **bufs;
    char                **names;
    int                   n, cap;
};

static enum seg_status ckpt_add(struct ckpt *c, const char *name, const struct seg_tensor *x)
{
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 512;
        struct seg_st_tensor *t = realloc(c->t, (size_t)cap * sizeof *t);
        void **b = realloc(c->bufs, (size_t)cap * sizeof *b);
        char **nm = realloc(c->names, (size_t)cap * sizeof *nm);
        if (t) c->t = t;
        if (b) c->bufs = b;
        if (nm) c->names = nm;
        if (!t || !b || !nm)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "checkpoint: out of host memory");
        c->cap = cap;
    }
    size_t nb = seg_tensor_nbytes(x);
    void *buf = malloc(nb ? nb : 1);
    char *nm = strdup(name);
    if (!buf || !nm) {
        free(buf);
        free(nm);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "checkpoint: out of host memory");
    }
    enum seg_status st = seg_tensor_read(x, buf, nb);
    if (st) {
        free(buf);
        free(nm);
        return st;
    }
    struct seg_st_tensor *e = &c->t[c->n];
    memset(e, 0, sizeof *e);
    e->name = nm;
    e->dtype = SEG_ST_F32;
    e->ndim = x->ndim;
    for (int d = 0; d < x->ndim; d++)
        e->shape[d] = x->shape[d];
    e->data = buf;
    e->nbytes = nb;
    c->bufs[c->n] = buf;
    c->names[c->n++] = nm;
    return SEG_STATUS_OK;
}

static enum seg_status ckpt_model(struct ckpt *c, const char *prefix, const struct seg_model *m,
                                  const struct seg_optim *o)
{
    char name[160];
    for (int i = 0; i < m->nparams; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, m->params[i].name);
        TRY(ckpt_add(c, name, m->params[i].var->value));
        if (o && o->state1[i]) {
            snprintf(name, sizeof name, "optim.%s%s.s1", prefix, m->params[i].name);
            TRY(ckpt_add(c, name, o->state1[i]));
        }
        if (o && o->state2[i]) {
            snprintf(name, sizeof name, "optim.%s%s.s2", prefix, m->params[i].name);
            TRY(ckpt_add(c, name, o->state2[i]));
        }
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_trainer_save(const struct seg_trainer *t, const char *path)
{
    struct ckpt c = {0};
    enum seg_status st = ckpt_model(&c, "", t->model, t->opt);
    for (int i = 0; !st && i < t->naux; i++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "aux%d.", i);
        st = ckpt_model(&c, prefix, t->aux[i], t->aux_opt[i]);
    }
    for (int i = 0; !st && i < t->nstate; i++) {
        char name[64];
        snprintf(name, sizeof name, "state.%s", t->state_name[i]);
        st = ckpt_add(&c, name, t->state[i]);
    }
    char iter[32], rng[32], step[32];
    snprintf(iter, sizeof iter, "%" PRId64, t->iter);
    snprintf(rng, sizeof rng, "%" PRIu64, t->rng);
    snprintf(step, sizeof step, "%d", t->opt->step);
    struct seg_model_meta_buf mb;
    struct seg_st_meta meta[SEG_MODEL_META_COUNT + 4];
    int k = seg_model_meta(&t->model->cfg, &mb, meta);
    meta[k++] = (struct seg_st_meta){"method", (char *)t->method->name};
    meta[k++] = (struct seg_st_meta){"iteration", iter};
    meta[k++] = (struct seg_st_meta){"rng", rng};
    meta[k++] = (struct seg_st_meta){"optim_step", step};
    if (!st)
        st = seg_st_write(path, c.t, c.n, meta, k);
    for (int i = 0; i < c.n; i++) {
        free(c.bufs[i]);
        free(c.names[i]);
    }
    free(c.t);
    free(c.bufs);
    free(c.names);
    return st;
}

static enum seg_status load_into(const struct seg_st_file *f, const char *path, const char *name,
                                 struct seg_tensor *t)
{
    const struct seg_st_tensor *s = seg_st_find(f, name);
    if (!s)
        return seg_error(SEG_STATUS_FORMAT, "%s: tensor '%s' is missing", path, name);
    if (s->dtype != SEG_ST_F32 || s->nbytes != seg_tensor_nbytes(t))
        return seg_error(SEG_STATUS_FORMAT, "%s: tensor '%s' has the wrong type or size", path, name);
    return seg_tensor_write(t, s->data, s->nbytes);
}

static enum seg_status resume_model(const struct seg_st_file *f, const char *path,
                                    const char *prefix, struct seg_model *m, struct seg_optim *o)
{
    char name[160];
    for (int i = 0; i < m->nparams; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, m->params[i].name);
        TRY(load_into(f, path, name, m->params[i].var->value));
        for (int k = 1; o && k <= 2; k++) {
            snprintf(name, sizeof name, "optim.%s%s.s%d", prefix, m->params[i].name, k);
            struct seg_tensor **slot = k == 1 ? &o->state1[i] : &o->state2[i];
            if (!seg_st_find(f, name)) {
                seg_tensor_free(*slot);
                *slot = NULL;
                continue;
            }
            if (!*slot)
                TRY(seg_tensor_new_like(m->params[i].var->value, slot));
            TRY(load_into(f, path, name, *slot));
        }
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_trainer_resume(struct seg_trainer *t, const char *path)
{
    struct seg_st_file f;
    TRY(seg_st_read(path, &f));
    const char *method = seg_st_meta_get(&f, "method"), *iter = seg_st_meta_get(&f, "iteration");
    const char *rng = seg_st_meta_get(&f, "rng"), *step = seg_st_meta_get(&f, "optim_step");
    enum seg_status st = SEG_STATUS_OK;
    if (!method || strcmp(method, t->method->name) || !iter || !rng || !step)
        st = seg_error(SEG_STATUS_FORMAT, "%s: not a %s training checkpoint (method %s)", path,
                       t->method->name, method ? method : "missing");
    if (!st)
        st = resume_model(&f, path, "", t->model, t->opt);
    for (int i = 0; !st && i < t->naux; i++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "aux%d.", i);
        st = resume_model(&f, path, prefix, t->aux[i], t->aux_opt[i]);
    }
    for (int i = 0; !st && i < t->nstate; i++) {
        char name[64];
        snprintf(name, sizeof name, "state.%s", t->state_name[i]);
        st = load_into(&f, path, name, t->state[i]);
    }
    if (!st) {
        t->iter = strtoll(iter, NULL, 10);
        t->rng = strtoull(rng, NULL, 10);
        t->opt->step = atoi(step);
        for (int i = 0; i < t->naux; i++)
            t->aux_opt[i]->step = t->opt->step;
    }
    seg_st_free(&f);
    return st;
}
