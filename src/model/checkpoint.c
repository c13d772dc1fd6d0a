/* checkpoint.c: model weights to and from safetensors, named as PyTorch's state_dict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/safetensors.h"

enum seg_status seg_model_save(const struct seg_model *m, const char *path,
                               const char *const *meta_kv, int nmeta)
{
    struct seg_st_tensor *ts = calloc((size_t)m->nparams, sizeof *ts);
    void **bufs = calloc((size_t)m->nparams, sizeof *bufs);
    struct seg_st_meta meta[32];
    struct seg_model_meta_buf mb;
    enum seg_status st = SEG_STATUS_OK;
    if (!ts || !bufs) {
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", path);
        goto out;
    }
    for (int i = 0; i < m->nparams && !st; i++) {
        const struct seg_tensor *t = m->params[i].var->value;
        size_t nb = seg_tensor_nbytes(t);
        bufs[i] = malloc(nb ? nb : 1);
        if (!bufs[i]) {
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", path);
            break;
        }
        st = seg_tensor_read(t, bufs[i], nb);
        ts[i].name = m->params[i].name;
        ts[i].dtype = SEG_ST_F32;
        ts[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++)
            ts[i].shape[d] = t->shape[d];
        ts[i].data = bufs[i];
        ts[i].nbytes = nb;
    }
    if (st)
        goto out;
    int k = seg_model_meta(&m->cfg, &mb, meta);
    for (int i = 0; i + 1 < 2 * nmeta && k < 32; i += 2)
        meta[k++] = (struct seg_st_meta){(char *)meta_kv[i], (char *)meta_kv[i + 1]};
    st = seg_st_write(path, ts, m->nparams, meta, k);
out:
    for (int i = 0; bufs && i < m->nparams; i++)
        free(bufs[i]);
    free(bufs);
    free(ts);
    return st;
}

int seg_model_meta(const struct seg_model_config *cfg, struct seg_model_meta_buf *buf, struct seg_st_meta *meta)
{
    snprintf(buf->nc, sizeof buf->nc, "%d", cfg->num_classes);
    snprintf(buf->ml, sizeof buf->ml, "%d", cfg->multi_level);
    snprintf(buf->bias, sizeof buf->bias, "%d", cfg->classifier_bias);
    snprintf(buf->width, sizeof buf->width, "%d", cfg->width);
    snprintf(buf->stem, sizeof buf->stem, "%d", cfg->target_stem);
    snprintf(buf->eps0, sizeof buf->eps0, "%d", cfg->bn_eps_zero);
    int rates[SEG_ASPP_MAX], n = seg_aspp_rates_of(cfg, rates);
    size_t len = 0;
    buf->rates[0] = 0;
    for (int i = 0; i < n && len < sizeof buf->rates; i++)
        len += (size_t)snprintf(buf->rates + len, sizeof buf->rates - len, "%s%d", i ? "," : "", rates[i]);
    meta[0] = (struct seg_st_meta){"format", "segda-1"};
    meta[1] = (struct seg_st_meta){"arch", (char *)seg_arch_name(cfg->arch)};
    meta[2] = (struct seg_st_meta){"num_classes", buf->nc};
    meta[3] = (struct seg_st_meta){"multi_level", buf->ml};
    meta[4] = (struct seg_st_meta){"classifier_bias", buf->bias};
    meta[5] = (struct seg_st_meta){"width", buf->width};
    meta[6] = (struct seg_st_meta){"target_stem", buf->stem};
    meta[7] = (struct seg_st_meta){"bn_eps_zero", buf->eps0};
    if (!strcmp(buf->rates, "6,12,18,24")) /* the default: files stay as before the key */
        return SEG_MODEL_META_COUNT - 1;
    meta[8] = (struct seg_st_meta){"aspp_rates", buf->rates};
    return SEG_MODEL_META_COUNT;
}

static bool parse_int(const char *s, int *v)
{
    if (!s || !*s)
        return false;
    char *end;
    long x = strtol(s, &end, 10);
    if (*end || x < 0 || x > 1 << 20)
        return false;
    *v = (int)x;
    return true;
}

enum seg_status seg_model_config_from_file(const char *path, struct seg_model_config *cfg)
{
    struct seg_st_file f;
    enum seg_status st = seg_st_read(path, &f);
    if (st)
        return st;
    memset(cfg, 0, sizeof *cfg);
    const char *arch = seg_st_meta_get(&f, "arch");
    int a = arch ? seg_arch_from_name(arch) : -1, ml = 0, bias = 1, width = 0, stem = 0, eps0 = 0;
    if (a < 0) {
        st = seg_error(SEG_STATUS_FORMAT, "%s: metadata names no known architecture (arch=%s)",
                       path, arch ? arch : "missing");
    } else if (!parse_int(seg_st_meta_get(&f, "num_classes"), &cfg->num_classes) ||
               cfg->num_classes < 1) {
        st = seg_error(SEG_STATUS_FORMAT, "%s: metadata lacks a valid num_classes", path);
    } else {
        parse_int(seg_st_meta_get(&f, "multi_level"), &ml);
        parse_int(seg_st_meta_get(&f, "classifier_bias"), &bias);
        parse_int(seg_st_meta_get(&f, "width"), &width);
        parse_int(seg_st_meta_get(&f, "target_stem"), &stem);
        parse_int(seg_st_meta_get(&f, "bn_eps_zero"), &eps0);
        const char *rates = seg_st_meta_get(&f, "aspp_rates"); /* absent: the default */
        if (rates && seg_aspp_rates_parse(rates, cfg->aspp_rates))
            st = seg_error(SEG_STATUS_FORMAT, "%s: metadata aspp_rates = '%s' is not a list of dilations",
                           path, rates);
        cfg->arch = (enum seg_arch)a;
        cfg->multi_level = ml;
        cfg->classifier_bias = bias;
        cfg->width = width;
        cfg->target_stem = stem;
        cfg->bn_eps_zero = eps0;
        cfg->bn = SEG_BN_POLICY_FROZEN_AFFINE;
    }
    seg_st_free(&f);
    return st;
}

enum seg_status seg_model_load(struct seg_model *m, const char *path, bool strict)
{
    struct seg_st_file f;
    enum seg_status st = seg_st_read(path, &f);
    if (st)
        return st;
    int loaded = 0;
    for (int i = 0; i < m->nparams && !st; i++) {
        struct seg_tensor *t = m->params[i].var->value;
        const char *name = m->params[i].name;
        const struct seg_st_tensor *s = seg_st_find(&f, name);
        if (!s && !strncmp(name, SEG_TARGET_STEM_PREFIX, strlen(SEG_TARGET_STEM_PREFIX)))
            s = seg_st_find(&f, name + strlen(SEG_TARGET_STEM_PREFIX)); /* from the shared stem */
        if (!s) {
            if (strict)
                st = seg_error(SEG_STATUS_FORMAT, "%s: tensor '%s' is missing (architecture %s)",
                               path, m->params[i].name, seg_arch_name(m->cfg.arch));
            continue;
        }
        bool same = s->ndim == t->ndim && s->dtype == SEG_ST_F32;
        for (int d = 0; same && d < t->ndim; d++)
            same = s->shape[d] == t->shape[d];
        if (!same) {
            char want[96];
            st = seg_error(SEG_STATUS_FORMAT, "%s: tensor '%s' has the wrong dtype or shape (want %s)",
                           path, m->params[i].name, seg_tensor_shape_str(t, want, sizeof want));
            break;
        }
        st = seg_tensor_write(t, s->data, s->nbytes);
        loaded++;
    }
    if (!st && loaded == 0)
        st = seg_error(SEG_STATUS_FORMAT, "%s: no tensor of the model was found", path);
    seg_st_free(&f);
    return st;
}
