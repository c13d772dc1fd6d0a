/* deeplab.c: DeepLab-v2 (bottleneck ResNet in the caffe or the torchvision layout, ASPP heads
 * summed over dilations 6/12/18/24, or those of model.aspp_rates) and the AdaptSegNet
 * discriminator: parameters and forward passes. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "model/model.h"

#define TRY(expr) SEG_TRY(expr)

static const char *const arch_names[SEG_ARCH_COUNT] = {
    [SEG_ARCH_DEEPLABV2_RESNET101] = "deeplabv2_resnet101",
    [SEG_ARCH_DEEPLABV2_RESNET50] = "deeplabv2_resnet50",
    [SEG_ARCH_DEEPLABV2_RESNET101_TV] = "deeplabv2_resnet101_tv",
    [SEG_ARCH_DEEPLABV2_TINY] = "deeplabv2_tiny",
    [SEG_ARCH_DEEPLABV2_VGG16] = "deeplabv2_vgg16",
    [SEG_ARCH_DISCRIMINATOR] = "discriminator",
};

const char *seg_arch_name(enum seg_arch a) { return a < SEG_ARCH_COUNT ? arch_names[a] : "?"; }

int seg_arch_from_name(const char *name)
{
    for (int a = 0; a < SEG_ARCH_COUNT; a++)
        if (!strcmp(name, arch_names[a]))
            return a;
    return -1;
}

/* tv: torchvision's layout (SDCA's released backbone) rather than caffe's: the stride of a
 * layer's first block on its 3x3 conv instead of its first 1x1, the first block of a dilated
 * layer at the previous layer's dilation, the max pool rounding down. Same parameters. */
struct resnet_shape {
    int  blocks[4];
    int  base;
    bool tv;
};

static struct resnet_shape resnet_shape_of(const struct seg_model_config *c)
{
    struct resnet_shape s = {{3, 4, 23, 3}, 64, c->arch == SEG_ARCH_DEEPLABV2_RESNET101_TV};
    if (c->arch == SEG_ARCH_DEEPLABV2_RESNET50)
        s.blocks[2] = 6;
    if (c->arch == SEG_ARCH_DEEPLABV2_TINY) {
        for (int i = 0; i < 4; i++)
            s.blocks[i] = 1;
        s.base = 8;
    }
    if (c->width > 0)
        s.base = c->width;
    return s;
}

static const int layer_stride[4] = {1, 2, 1, 1};
static const int layer_dilation[4] = {1, 1, 2, 4};
static const int default_aspp_rates[SEG_ASPP_MAX] = {6, 12, 18, 24};

int seg_aspp_rates_of(const struct seg_model_config *cfg, int rates[SEG_ASPP_MAX])
{
    const int *src = cfg->aspp_rates[0] > 0 ? cfg->aspp_rates : default_aspp_rates;
    int n = 0;
    while (n < SEG_ASPP_MAX && src[n] > 0) {
        rates[n] = src[n];
        n++;
    }
    for (int i = n; i < SEG_ASPP_MAX; i++)
        rates[i] = 0;
    return n;
}

enum seg_status seg_aspp_rates_parse(const char *s, int rates[SEG_ASPP_MAX])
{
    int n = 0;
    const char *p = s;
    memset(rates, 0, SEG_ASPP_MAX * sizeof *rates);
    while (*p) {
        char *end;
        long r = strtol(p, &end, 10);
        bool repeated = false;
        for (int i = 0; i < n; i++)
            repeated |= rates[i] == r;
        if (end == p || r < 1 || r > 1024 || repeated || n == SEG_ASPP_MAX || (*end && *end != ','))
            return seg_error(SEG_STATUS_INVALID, "ASPP rates '%s': 1 to %d distinct positive dilations, comma-separated",
                             s, SEG_ASPP_MAX);
        rates[n++] = (int)r;
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return seg_error(SEG_STATUS_INVALID, "ASPP rates '%s': a trailing comma", s);
    }
    if (n == 0)
        return seg_error(SEG_STATUS_INVALID, "ASPP rates '%s': no dilation given", s);
    return SEG_STATUS_OK;
}

/* torchvision's _make_layer with replace_stride_with_dilation: a dilated layer's first block
 * keeps the dilation the previous layer ended with (layer3: 1, layer4: 2). */
static int block_dilation(const struct resnet_shape *s, int l, int b)
{
    return s->tv && b == 0 && l > 0 ? layer_dilation[l - 1] : layer_dilation[l];
}

/* ---- parameters ---------------------------------------------------------------------- */

enum init_kind { INIT_NORMAL_001, INIT_ONE, INIT_ZERO, INIT_FAN_IN };

struct initrng {
    uint64_t s;
};

static double rng_unit(struct initrng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return ((double)(r->s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* n initial values; every kind draws the same numbers, so one parameter's kind does not
 * change the next one's values. INIT_FAN_IN: U(-b, b), b = 1/sqrt(fan_in). */
static void init_fill(struct initrng *r, enum init_kind init, double fan_in, float *h, int64_t n)
{
    double bound = fan_in > 0 ? 1.0 / sqrt(fan_in) : 0.0;
    for (int64_t i = 0; i < n; i += 2) {
        /* Box-Muller: two normals per pair of uniforms */
        double u1 = rng_unit(r), u2 = rng_unit(r);
        double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
        double z[2] = {rad * cos(th), rad * sin(th)};
        for (int k = 0; k < 2 && i + k < n; k++) {
            float v = 0.0f;
            switch (init) {
            case INIT_NORMAL_001: v = (float)(0.01 * z[k]); break;
            case INIT_ONE: v = 1.0f; break;
            case INIT_ZERO: v = 0.0f; break;
            case INIT_FAN_IN: v = (float)(bound * (2.0 * (k ? u2 : u1) - 1.0)); break;
            }
            h[i + k] = v;
        }
    }
}

static enum seg_status add_param(struct seg_model *m, struct initrng *r, enum init_kind init,
                                 double fan_in, int group, bool trainable, bool buffer, int ndim,
                                 const int64_t *shape, const char *fmt, ...)
{
    if (m->nparams == m->cap) {
        int cap = m->cap ? m->cap * 2 : 256;
        struct seg_param *p = realloc(m->params, (size_t)cap * sizeof *p);
        if (!p)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "model: out of host memory");
        m->params = p;
        m->cap = cap;
    }
    struct seg_param *p = &m->params[m->nparams];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->group = group;
    p->is_buffer = buffer;
    struct seg_tensor *t = NULL;
    enum seg_status st = seg_tensor_new(m->be, SEG_DTYPE_F32, ndim, shape, &t);
    if (st)
        return st;
    int64_t n = seg_tensor_numel(t);
    float *h = malloc((size_t)n * sizeof *h);
    if (!h) {
        seg_tensor_free(t);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "model: out of host memory");
    }
    init_fill(r, init, fan_in, h, n);
    st = seg_tensor_write(t, h, (size_t)n * sizeof *h);
    free(h);
    if (!st)
        st = seg_var_leaf_new(t, trainable && !buffer, &p->var);
    if (st) {
        seg_tensor_free(t);
        return st;
    }
    m->nparams++;
    return SEG_STATUS_OK;
}

static enum seg_status add_conv(struct seg_model *m, struct initrng *r, int group, int cout,
                                int cin, int k, bool bias, const char *prefix)
{
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    enum seg_status st = add_param(m, r, INIT_NORMAL_001, 0, group, true, false, 4, ws, "%s.weight", prefix);
    if (!st && bias)
        st = add_param(m, r, INIT_ZERO, 0, group, true, false, 1, bs, "%s.bias", prefix);
    return st;
}

static enum seg_status add_bn(struct seg_model *m, struct initrng *r, int c, const char *prefix)
{
    int64_t s[1] = {c};
    bool train = m->cfg.bn == SEG_BN_POLICY_TRAINABLE;
    enum seg_status st = add_param(m, r, INIT_ONE, 0, 0, train, false, 1, s, "%s.weight", prefix);
    if (!st)
        st = add_param(m, r, INIT_ZERO, 0, 0, train, false, 1, s, "%s.bias", prefix);
    if (!st)
        st = add_param(m, r, INIT_ZERO, 0, 0, false, true, 1, s, "%s.running_mean", prefix);
    if (!st)
        st = add_param(m, r, INIT_ONE, 0, 0, false, true, 1, s, "%s.running_var", prefix);
    return st;
}

/* Only the branches of the rates in use exist: a checkpoint with all four (AdaptSegNet's
 * released weights) loads, its unused branches left in the file. */
static enum seg_status add_aspp(struct seg_model *m, struct initrng *r, int cin, const char *prefix)
{
    char name[64];
    int rates[SEG_ASPP_MAX], n = seg_aspp_rates_of(&m->cfg, rates);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s.conv2d_list.%d", prefix, i);
        enum seg_status st = add_conv(m, r, 1, m->cfg.num_classes, cin, 3, m->cfg.classifier_bias, name);
        if (st)
            return st;
    }
    return SEG_STATUS_OK;
}

/* ResNet layer l (0-based) under prefix ("" or the target stem's): its bottlenecks, a
 * projection on the first. */
static enum seg_status add_resnet_layer(struct seg_model *m, struct initrng *r, const struct resnet_shape *s,
                                        int l, int inplanes, const char *prefix)
{
    enum seg_status st = SEG_STATUS_OK;
    int planes = s->base << l;
    char name[96];
    for (int b = 0; b < s->blocks[l] && !st; b++) {
        int cin = b == 0 ? inplanes : planes * 4;
        snprintf(name, sizeof name, "%slayer%d.%d.conv1", prefix, l + 1, b);
        st = add_conv(m, r, 0, planes, cin, 1, false, name);
        snprintf(name, sizeof name, "%slayer%d.%d.bn1", prefix, l + 1, b);
        if (!st) st = add_bn(m, r, planes, name);
        snprintf(name, sizeof name, "%slayer%d.%d.conv2", prefix, l + 1, b);
        if (!st) st = add_conv(m, r, 0, planes, planes, 3, false, name);
        snprintf(name, sizeof name, "%slayer%d.%d.bn2", prefix, l + 1, b);
        if (!st) st = add_bn(m, r, planes, name);
        snprintf(name, sizeof name, "%slayer%d.%d.conv3", prefix, l + 1, b);
        if (!st) st = add_conv(m, r, 0, planes * 4, planes, 1, false, name);
        snprintf(name, sizeof name, "%slayer%d.%d.bn3", prefix, l + 1, b);
        if (!st) st = add_bn(m, r, planes * 4, name);
        /* DeepLab's _make_layer: a projection for the first block of every layer. */
        if (!st && b == 0) {
            snprintf(name, sizeof name, "%slayer%d.0.downsample.0", prefix, l + 1);
            st = add_conv(m, r, 0, planes * 4, inplanes, 1, false, name);
            snprintf(name, sizeof name, "%slayer%d.0.downsample.1", prefix, l + 1);
            if (!st) st = add_bn(m, r, planes * 4, name);
        }
    }
    return st;
}

static enum seg_status add_resnet_stem(struct seg_model *m, struct initrng *r, const struct resnet_shape *s,
                                       const char *prefix)
{
    char conv1[32], bn1[32];
    snprintf(conv1, sizeof conv1, "%sconv1", prefix);
    snprintf(bn1, sizeof bn1, "%sbn1", prefix);
    enum seg_status st = add_conv(m, r, 0, s->base, 3, 7, false, conv1);
    if (!st) st = add_bn(m, r, s->base, bn1);
    if (!st) st = add_resnet_layer(m, r, s, 0, s->base, prefix);
    return st;
}

/* The target stem starts as a copy of the shared one; its parameters come last, so the
 * shared ones are initialised (and ordered) as in a model without it. */
static enum seg_status add_target_stem(struct seg_model *m, struct initrng *r, const struct resnet_shape *s)
{
    int first = m->nparams;
    enum seg_status st = add_resnet_stem(m, r, s, SEG_TARGET_STEM_PREFIX);
    for (int i = first; i < m->nparams && !st; i++) {
        struct seg_param *src = seg_model_find(m, m->params[i].name + strlen(SEG_TARGET_STEM_PREFIX));
        st = src ? seg_tensor_copy(m->params[i].var->value, src->var->value)
                 : seg_error(SEG_STATUS_INVALID, "model: the target stem's %s has no shared twin", m->params[i].name);
    }
    return st;
}

static enum seg_status build_resnet(struct seg_model *m, struct initrng *r)
{
    struct resnet_shape s = resnet_shape_of(&m->cfg);
    enum seg_status st = add_resnet_stem(m, r, &s, "");
    for (int l = 1; l < 4 && !st; l++)
        st = add_resnet_layer(m, r, &s, l, (s.base << (l - 1)) * 4, "");
    if (!st && m->cfg.multi_level)
        st = add_aspp(m, r, s.base * 16, "layer5");
    if (!st)
        st = add_aspp(m, r, s.base * 32, "layer6");
    if (!st && m->cfg.target_stem)
        st = add_target_stem(m, r, &s);
    return st;
}

/* torchvision's vgg16.features indices of the 13 convs (pools at 4, 9, 16, 23, 30);
 * pool4 (23) and pool5 (30) are removed, conv5 (24, 26, 28) dilated by 2. */
static const int vgg_conv_index[13] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};
static const int vgg_conv_mult[13] = {1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 8, 8, 8};

static int vgg_base(const struct seg_model_config *c) { return c->width > 0 ? c->width : 64; }

static enum seg_status build_vgg(struct seg_model *m, struct initrng *r)
{
    int base = vgg_base(&m->cfg), cin = 3;
    char name[64];
    enum seg_status st = SEG_STATUS_OK;
    for (int i = 0; i < 13 && !st; i++) {
        snprintf(name, sizeof name, "features.%d", vgg_conv_index[i]);
        st = add_conv(m, r, 0, base * vgg_conv_mult[i], cin, 3, true, name);
        cin = base * vgg_conv_mult[i];
    }
    if (!st) st = add_conv(m, r, 0, base * 16, cin, 3, true, "fc6");
    if (!st) st = add_conv(m, r, 0, base * 16, base * 16, 3, true, "fc7");
    if (!st) st = add_aspp(m, r, base * 16, "layer6");
    return st;
}

static enum seg_status build_discriminator(struct seg_model *m, struct initrng *r)
{
    int ndf = m->cfg.width > 0 ? m->cfg.width : 64;
    int ch[6] = {m->cfg.num_classes, ndf, ndf * 2, ndf * 4, ndf * 8, 1};
    const char *names[5] = {"conv1", "conv2", "conv3", "conv4", "classifier"};
    for (int i = 0; i < 5; i++) {
        int64_t ws[4] = {ch[i + 1], ch[i], 4, 4}, bs[1] = {ch[i + 1]};
        double fan = (double)ch[i] * 16;
        enum seg_status st = add_param(m, r, INIT_FAN_IN, fan, 0, true, false, 4, ws, "%s.weight", names[i]);
        if (!st)
            st = add_param(m, r, INIT_FAN_IN, fan, 0, true, false, 1, bs, "%s.bias", names[i]);
        if (st)
            return st;
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_model_create(struct seg_backend *be, const struct seg_model_config *cfg,
                                 struct seg_model **out)
{
    *out = NULL;
    if ((unsigned)cfg->arch >= SEG_ARCH_COUNT || cfg->num_classes < 1)
        return seg_error(SEG_STATUS_INVALID, "model: bad architecture %d or %d classes",
                         (int)cfg->arch, cfg->num_classes);
    if (cfg->target_stem && (cfg->arch == SEG_ARCH_DEEPLABV2_VGG16 || cfg->arch == SEG_ARCH_DISCRIMINATOR))
        return seg_error(SEG_STATUS_INVALID, "model: a target stem needs a ResNet architecture, not %s",
                         seg_arch_name(cfg->arch));
    /* Batch statistics without an epsilon divide by zero on a constant channel. */
    if (cfg->bn_eps_zero && cfg->bn != SEG_BN_POLICY_FROZEN)
        return seg_error(SEG_STATUS_INVALID, "model: batch norm without epsilon (bn_eps_zero) needs the frozen "
                         "BN policy (running statistics, as SDCA's FrozenBatchNorm2d)");
    for (int i = 0; i < SEG_ASPP_MAX; i++)
        if (cfg->aspp_rates[i] < 0 || (i > 0 && cfg->aspp_rates[i] > 0 && cfg->aspp_rates[i - 1] == 0))
            return seg_error(SEG_STATUS_INVALID, "model: ASPP rate %d of the list is %d", i, cfg->aspp_rates[i]);
    struct seg_model *m = calloc(1, sizeof *m);
    if (!m)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "model: out of host memory");
    m->cfg = *cfg;
    if (cfg->arch == SEG_ARCH_DEEPLABV2_VGG16 || cfg->arch == SEG_ARCH_DISCRIMINATOR)
        m->cfg.multi_level = false; /* single-level networks */
    m->be = be;
    struct initrng r = {0x9E3779B97F4A7C15ull ^ ((uint64_t)cfg->seed * 0xBF58476D1CE4E5B9ull)};
    if (!r.s)
        r.s = 1;
    enum seg_status st = cfg->arch == SEG_ARCH_DISCRIMINATOR ? build_discriminator(m, &r)
                         : cfg->arch == SEG_ARCH_DEEPLABV2_VGG16 ? build_vgg(m, &r)
                                                                 : build_resnet(m, &r);
    if (st) {
        seg_model_destroy(m);
        return st;
    }
    *out = m;
    return SEG_STATUS_OK;
}

enum seg_status seg_model_init_classifier(struct seg_model *m, enum seg_classifier_init init)
{
    if (init != SEG_CLASSIFIER_INIT_NORMAL && init != SEG_CLASSIFIER_INIT_PYTORCH)
        return seg_error(SEG_STATUS_INVALID, "model: bad classifier init %d", (int)init);
    if (m->cfg.arch == SEG_ARCH_DISCRIMINATOR)
        return seg_error(SEG_STATUS_INVALID, "model: a discriminator has no ASPP classifier");
    struct initrng r = {0xD1B54A32D192ED03ull ^ ((uint64_t)m->cfg.seed * 0x94D049BB133111EBull)};
    if (!r.s)
        r.s = 1;
    for (int i = 0; i < m->nparams; i++) {
        struct seg_param *p = &m->params[i];
        if (p->group != 1 || p->is_buffer) /* group 1: the ASPP heads alone */
            continue;
        struct seg_tensor *t = p->var->value;
        const struct seg_tensor *wt = t;
        if (t->ndim != 4) { /* a bias: fan_in of its weight */
            char wname[96];
            size_t len = strlen(p->name);
            if (len < 5 || strcmp(p->name + len - 5, ".bias"))
                return seg_error(SEG_STATUS_INVALID, "model: classifier parameter %s is neither weight nor bias", p->name);
            snprintf(wname, sizeof wname, "%.*s.weight", (int)(len - 5), p->name);
            struct seg_param *w = seg_model_find(m, wname);
            if (!w)
                return seg_error(SEG_STATUS_INVALID, "model: %s has no weight %s", p->name, wname);
            wt = w->var->value;
        }
        double fan_in = (double)(wt->shape[1] * wt->shape[2] * wt->shape[3]);
        enum init_kind kind = init == SEG_CLASSIFIER_INIT_PYTORCH ? INIT_FAN_IN : t->ndim == 4 ? INIT_NORMAL_001 : INIT_ZERO;
        int64_t n = seg_tensor_numel(t);
        float *h = malloc((size_t)n * sizeof *h);
        if (!h)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "model: out of host memory");
        init_fill(&r, kind, fan_in, h, n);
        enum seg_status st = seg_tensor_write(t, h, (size_t)n * sizeof *h);
        free(h);
        if (st)
            return st;
    }
    return SEG_STATUS_OK;
}

void seg_model_destroy(struct seg_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nparams; i++)
        seg_var_leaf_free(m->params[i].var);
    free(m->params);
    free(m);
}

struct seg_param *seg_model_find(struct seg_model *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name))
            return &m->params[i];
    return NULL;
}

int64_t seg_model_num_params(const struct seg_model *m, bool trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < m->nparams; i++)
        if (!m->params[i].is_buffer && (!trainable_only || m->params[i].var->requires_grad))
            n += seg_tensor_numel(m->params[i].var->value);
    return n;
}

enum seg_status seg_model_copy(struct seg_model *dst, const struct seg_model *src)
{
    if (dst->nparams != src->nparams)
        return seg_error(SEG_STATUS_INVALID, "model copy: the models differ (%d and %d tensors)", dst->nparams,
                         src->nparams);
    for (int i = 0; i < src->nparams; i++)
        SEG_TRY(seg_tensor_copy(dst->params[i].var->value, src->params[i].var->value));
    return SEG_STATUS_OK;
}

void seg_model_zero_grad(struct seg_model *m)
{
    for (int i = 0; i < m->nparams; i++)
        seg_var_zero_grad(m->params[i].var);
}

/* ---- forward ------------------------------------------------------------------------------ */

static struct seg_var *P(struct seg_model *m, const char *fmt, ...)
{
    char name[80];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    struct seg_param *p = seg_model_find(m, name);
    return p ? p->var : NULL;
}

static enum seg_status conv(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                            const char *prefix, int stride, int pad, int dil, bool bias,
                            struct seg_var **y)
{
    struct seg_conv2d_params p = {stride, stride, pad, pad, dil, dil};
    struct seg_var *w = P(m, "%s.weight", prefix), *b = bias ? P(m, "%s.bias", prefix) : NULL;
    if (!w)
        return seg_error(SEG_STATUS_INVALID, "model: no parameter %s.weight", prefix);
    return seg_ag_conv2d(ag, x, w, b, &p, y);
}

static enum seg_status bn(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                          const char *prefix, bool train, bool relu, struct seg_var **y)
{
    struct seg_param *rm = NULL, *rv = NULL;
    char name[80];
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    rm = seg_model_find(m, name);
    snprintf(name, sizeof name, "%s.running_var", prefix);
    rv = seg_model_find(m, name);
    if (!rm || !rv)
        return seg_error(SEG_STATUS_INVALID, "model: no running statistics for %s", prefix);
    enum seg_bn_mode mode = train && m->cfg.bn != SEG_BN_POLICY_FROZEN ? SEG_BN_BATCH_STATS : SEG_BN_FROZEN;
    struct seg_var *t = NULL;
    TRY(seg_ag_batchnorm(ag, x, P(m, "%s.weight", prefix), P(m, "%s.bias", prefix),
                         rm->var->value, rv->var->value, mode, 0.1f, m->cfg.bn_eps_zero ? 0.0f : 1e-5f,
                         relu ? &t : y));
    seg_var_done(x);
    if (!relu)
        return SEG_STATUS_OK;
    TRY(seg_ag_relu(ag, t, y));
    seg_var_done(t);
    return SEG_STATUS_OK;
}

/* stem: the prefix of layer1's parameters ("" or the target stem's). */
static enum seg_status bottleneck(struct seg_ag *ag, struct seg_model *m, const struct resnet_shape *s,
                                  struct seg_var *x, int l, int b, const char *stem, bool train,
                                  struct seg_var **y)
{
    char pre[48], pb[80];
    int stride = b == 0 ? layer_stride[l] : 1, dil = block_dilation(s, l, b);
    int stride1 = s->tv ? 1 : stride, stride2 = s->tv ? stride : 1;
    struct seg_var *t1, *t2, *t3, *t4, *t5, *t6, *res = x, *sum;
    snprintf(pre, sizeof pre, "%slayer%d.%d", l == 0 ? stem : "", l + 1, b);
    snprintf(pb, sizeof pb, "%s.conv1", pre);
    TRY(conv(ag, m, x, pb, stride1, 0, 1, false, &t1));
    snprintf(pb, sizeof pb, "%s.bn1", pre);
    TRY(bn(ag, m, t1, pb, train, true, &t2));
    snprintf(pb, sizeof pb, "%s.conv2", pre);
    TRY(conv(ag, m, t2, pb, stride2, dil, dil, false, &t3));
    snprintf(pb, sizeof pb, "%s.bn2", pre);
    TRY(bn(ag, m, t3, pb, train, true, &t4));
    snprintf(pb, sizeof pb, "%s.conv3", pre);
    TRY(conv(ag, m, t4, pb, 1, 0, 1, false, &t5));
    snprintf(pb, sizeof pb, "%s.bn3", pre);
    TRY(bn(ag, m, t5, pb, train, false, &t6));
    if (b == 0) {
        struct seg_var *d0;
        snprintf(pb, sizeof pb, "%s.downsample.0", pre);
        TRY(conv(ag, m, x, pb, stride, 0, 1, false, &d0));
        snprintf(pb, sizeof pb, "%s.downsample.1", pre);
        TRY(bn(ag, m, d0, pb, train, false, &res));
    }
    TRY(seg_ag_add(ag, t6, res, &sum));
    seg_var_done(t6);
    seg_var_done(t2);
    seg_var_done(t4);
    if (res != x)
        seg_var_done(res);
    seg_var_done(x);
    TRY(seg_ag_relu(ag, sum, y));
    seg_var_done(sum);
    return SEG_STATUS_OK;
}

/* branches (NULL: not wanted) receives the rate outputs, which then stay alive. */
static enum seg_status aspp(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                           const char *prefix, struct seg_var **y, struct seg_var **branches)
{
    struct seg_var *acc = NULL;
    char name[64];
    int rates[SEG_ASPP_MAX], n = seg_aspp_rates_of(&m->cfg, rates);
    for (int i = 0; i < n; i++) {
        struct seg_var *o, *s;
        snprintf(name, sizeof name, "%s.conv2d_list.%d", prefix, i);
        TRY(conv(ag, m, x, name, 1, rates[i], rates[i], m->cfg.classifier_bias, &o));
        if (branches)
            branches[i] = o;
        if (acc) {
            TRY(seg_ag_add(ag, acc, o, &s));
            if (!branches) {
                seg_var_done(acc);
                seg_var_done(o);
            } else if (i > 1) {
                seg_var_done(acc);
            }
            acc = s;
        } else {
            acc = o;
        }
    }
    *y = acc;
    return SEG_STATUS_OK;
}

/* source: x is a source-domain image, which takes the shared stem even in a model with a
 * target stem. */
static enum seg_status forward_resnet(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                                      bool train, bool source, struct seg_model_out *out)
{
    struct resnet_shape s = resnet_shape_of(&m->cfg);
    struct seg_var *t, *u, *h;
    const char *stem = m->cfg.target_stem && !source ? SEG_TARGET_STEM_PREFIX : "";
    char conv1[32], bn1[32];
    snprintf(conv1, sizeof conv1, "%sconv1", stem);
    snprintf(bn1, sizeof bn1, "%sbn1", stem);
    TRY(conv(ag, m, x, conv1, 2, 3, 1, false, &t));
    TRY(bn(ag, m, t, bn1, train, true, &u));
    struct seg_pool2d_params pool = {3, 3, 2, 2, 1, 1, !s.tv};
    TRY(seg_ag_maxpool2d(ag, u, &pool, &h));
    seg_var_done(u);
    for (int l = 0; l < 4; l++) {
        for (int b = 0; b < s.blocks[l]; b++) {
            struct seg_var *o;
            TRY(bottleneck(ag, m, &s, h, l, b, stem, train, &o));
            if (!(l == 2 && b == s.blocks[2] - 1 && m->cfg.multi_level))
                seg_var_done(h);
            h = o;
        }
        if (l == 2 && m->cfg.multi_level)
            TRY(aspp(ag, m, h, "layer5", &out->aux, NULL));
    }
    out->features = h;
    return aspp(ag, m, h, "layer6", &out->main,
                m->expose_branches ? out->branches : NULL);
}

static enum seg_status forward_discriminator(struct seg_ag *ag, struct seg_model *m,
                                             struct seg_var *x, struct seg_model_out *out)
{
    const char *names[5] = {"conv1", "conv2", "conv3", "conv4", "classifier"};
    struct seg_var *h = x;
    for (int i = 0; i < 5; i++) {
        struct seg_var *c;
        TRY(conv(ag, m, h, names[i], 2, 1, 1, true, &c));
        if (i < 4)
            TRY(seg_ag_unary(ag, SEG_UNARY_LEAKY_RELU, c, 0.2f, 0.0f, &h));
        else
            h = c;
    }
    out->main = h;
    return SEG_STATUS_OK;
}

static enum seg_status forward_vgg(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                                   struct seg_model_out *out)
{
    struct seg_pool2d_params pool = {2, 2, 2, 2, 0, 0, false};
    struct seg_var *h = x;
    char name[64];
    for (int i = 0; i < 13; i++) {
        struct seg_var *c, *a;
        int d = i >= 10 ? 2 : 1;
        snprintf(name, sizeof name, "features.%d", vgg_conv_index[i]);
        TRY(conv(ag, m, h, name, 1, d, d, true, &c));
        TRY(seg_ag_relu(ag, c, &a));
        h = a;
        if (i == 1 || i == 3 || i == 6) { /* pool1..pool3 */
            TRY(seg_ag_maxpool2d(ag, h, &pool, &a));
            h = a;
        }
    }
    struct seg_var *f6, *r6, *f7;
    TRY(conv(ag, m, h, "fc6", 1, 4, 4, true, &f6));
    TRY(seg_ag_relu(ag, f6, &r6));
    TRY(conv(ag, m, r6, "fc7", 1, 4, 4, true, &f7));
    TRY(seg_ag_relu(ag, f7, &out->features));
    return aspp(ag, m, out->features, "layer6", &out->main,
                m->expose_branches ? out->branches : NULL);
}

enum seg_status seg_model_head(struct seg_ag *ag, struct seg_model *m, struct seg_var *features,
                               struct seg_var **logits)
{
    if (m->cfg.arch == SEG_ARCH_DISCRIMINATOR)
        return seg_error(SEG_STATUS_INVALID, "model: the discriminator has no classifier head");
    return aspp(ag, m, features, "layer6", logits, NULL);
}

static enum seg_status model_forward(struct seg_ag *ag, struct seg_model *m, struct seg_var *x, bool train,
                                     bool source, struct seg_model_out *out)
{
    memset(out, 0, sizeof *out);
    if (x->value->ndim != 4)
        return seg_error(SEG_STATUS_INVALID, "model: input must be [N, C, H, W]");
    if (m->cfg.arch == SEG_ARCH_DISCRIMINATOR)
        return forward_discriminator(ag, m, x, out);
    if (m->cfg.arch == SEG_ARCH_DEEPLABV2_VGG16)
        return forward_vgg(ag, m, x, out);
    return forward_resnet(ag, m, x, train, source, out);
}

enum seg_status seg_model_forward(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                                  bool train, struct seg_model_out *out)
{
    return model_forward(ag, m, x, train, false, out);
}

enum seg_status seg_model_forward_source(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                                         bool train, struct seg_model_out *out)
{
    return model_forward(ag, m, x, train, true, out);
}
