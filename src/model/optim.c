/* optim.c: the optimizers (state lives on the parameters' backend). */
#include <math.h>
#include <stdlib.h>

#include "model/optim.h"

enum seg_status seg_optim_create(struct seg_model *m, const struct seg_optim_config *cfg,
                                 struct seg_optim **out)
{
    struct seg_optim *o = calloc(1, sizeof *o);
    if (!o)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "optimizer: out of host memory");
    o->cfg = *cfg;
    o->model = m;
    o->state1 = calloc((size_t)m->nparams, sizeof *o->state1);
    o->state2 = calloc((size_t)m->nparams, sizeof *o->state2);
    if (!o->state1 || !o->state2) {
        seg_optim_destroy(o);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "optimizer: out of host memory");
    }
    *out = o;
    return SEG_STATUS_OK;
}

void seg_optim_destroy(struct seg_optim *o)
{
    if (!o)
        return;
    for (int i = 0; o->state1 && i < o->model->nparams; i++) {
        seg_tensor_free(o->state1[i]);
        if (o->state2)
            seg_tensor_free(o->state2[i]);
    }
    free(o->state1);
    free(o->state2);
    free(o);
}

static enum seg_status zeros_like(const struct seg_tensor *t, struct seg_tensor **out)
{
    enum seg_status st = seg_tensor_new_like(t, out);
    if (!st)
        st = seg_fill(*out, 0.0f);
    return st;
}

void seg_optim_set_collective(struct seg_optim *o, const struct seg_collective *c)
{
    o->coll = c && c->nranks > 1 ? c : NULL;
}

enum seg_status seg_optim_step(struct seg_optim *o, float lr)
{
    if (o->coll) {
        enum seg_status st = o->coll->average_grads(o->coll->ctx, o->model);
        if (st)
            return st;
    }
    o->step++;
    for (int i = 0; i < o->model->nparams; i++) {
        struct seg_param *p = &o->model->params[i];
        struct seg_var *v = p->var;
        if (p->is_buffer || !v->requires_grad || !v->grad)
            continue;
        float plr = lr * o->cfg.group_lr_mult[p->group ? 1 : 0];
        enum seg_status st;
        bool first = o->state1[i] == NULL;
        if (first && (st = zeros_like(v->value, &o->state1[i])))
            return st;
        if (o->cfg.kind == SEG_OPTIM_SGD) {
            st = seg_sgd_step(v->value, o->state1[i], v->grad, plr, o->cfg.momentum,
                              o->cfg.weight_decay, first, o->skip);
        } else {
            if (!o->state2[i] && (st = zeros_like(v->value, &o->state2[i])))
                return st;
            bool decoupled = o->cfg.kind == SEG_OPTIM_ADAMW;
            st = seg_adam_step(v->value, o->state1[i], o->state2[i], v->grad, plr, o->cfg.beta1, o->cfg.beta2,
                               o->cfg.eps, decoupled ? 0.0f : o->cfg.weight_decay,
                               decoupled ? plr * o->cfg.weight_decay : 0.0f, o->step, o->skip);
        }
        if (st)
            return st;
    }
    return SEG_STATUS_OK;
}

void seg_optim_reset(struct seg_optim *o)
{
    for (int i = 0; i < o->model->nparams; i++) {
        seg_tensor_free(o->state1[i]);
        seg_tensor_free(o->state2[i]);
        o->state1[i] = o->state2[i] = NULL; /* absent state: the kernels' first-step path */
    }
    o->step = 0;
}

float seg_poly_lr(float base, int64_t iter, int64_t max_iter, float power)
{
    if (max_iter <= 0 || iter >= max_iter)
        return 0.0f;
    return base * (float)pow(1.0 - (double)iter / (double)max_iter, power);
}

/* Round r spans [r * n / R, (r + 1) * n / R): lengths differ by at most one iteration. */
static int64_t round_start(const struct seg_lr_schedule *s, int r)
{
    return (int64_t)((double)r * (double)s->iterations / s->rounds);
}

int seg_schedule_round(const struct seg_lr_schedule *s, int64_t iter, int64_t *begin)
{
    int r = 0;
    while (r + 1 < s->rounds && iter >= round_start(s, r + 1))
        r++;
    if (begin)
        *begin = round_start(s, r);
    return r;
}

static float warmup(const struct seg_lr_schedule *s, float lr, int64_t iter)
{
    if (iter >= s->warmup_iters)
        return lr;
    double k = (1.0 - (double)iter / (double)s->warmup_iters) * (1.0 - (double)s->warmup_ratio);
    return (float)((double)lr * (1.0 - k));
}

static float scheduled_lr(const struct seg_lr_schedule *s, float base, int64_t iter);

float seg_schedule_lr(const struct seg_lr_schedule *s, float base, int64_t iter)
{
    return warmup(s, scheduled_lr(s, base, iter), iter);
}

static float scheduled_lr(const struct seg_lr_schedule *s, float base, int64_t iter)
{
    if (s->rounds <= 1 && s->horizon == 1.0f) /* the plain poly schedule, bit for bit */
        return seg_poly_lr(base, iter, s->iterations, s->power);
    if (iter >= s->iterations)
        return 0.0f;
    int64_t begin;
    int r = seg_schedule_round(s, iter, &begin);
    int64_t end = r + 1 < s->rounds ? round_start(s, r + 1) : s->iterations;
    double span = (double)s->horizon * (double)(end - begin);
    double left = 1.0 - (double)(iter - begin) / span;
    return (float)((double)base * pow((double)s->factor, r) * pow(left > 0 ? left : 0.0, s->power));
}
