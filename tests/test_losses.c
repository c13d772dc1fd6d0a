/* test_losses.c: every method's loss terms against their PyTorch references (see
 * losses.h): the value, every named output and the gradient of each differentiable input,
 * on one backend. usage: test_losses -b BACKEND -d DIR -m METHOD */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "losses.h"
#include "model/safetensors.h"
#include "backend_open.h"

/* One line a method: its table lives in tests/losses_<method>.c. */
extern const struct lt_case lt_cases_base[];
extern const struct lt_case lt_cases_plca[];
extern const struct lt_case lt_cases_pixintra[];
extern const struct lt_case lt_cases_sdca[];
extern const struct lt_case lt_cases_bida[];
extern const struct lt_case lt_cases_mic[];
static const struct lt_method methods[] = {
    {"base", lt_cases_base},
    {"plca", lt_cases_plca},
    {"pixintra", lt_cases_pixintra},
    {"sdca", lt_cases_sdca},
    {"bida", lt_cases_bida},
    {"mic", lt_cases_mic},
};
#define NMETHODS ((int)(sizeof methods / sizeof methods[0]))

#define LT_MAX 32
struct lt_ctx {
    struct seg_backend       *be;
    struct seg_ag            *ag;
    const struct seg_st_file *file;
    const char               *case_name;
    int                       nvars, ntensors, nouts;
    const char               *var_name[LT_MAX];
    struct seg_var           *vars[LT_MAX];
    const char               *tensor_name[LT_MAX];
    struct seg_tensor        *tensors[LT_MAX];
    const char               *out_name[LT_MAX];
    float                    *out_value[LT_MAX];
    int64_t                   out_numel[LT_MAX];
};

struct seg_ag *lt_ag(struct lt_ctx *c) { return c->ag; }

static const struct seg_st_tensor *find_prefixed(const struct lt_ctx *c, const char *prefix, const char *name)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    return seg_st_find(c->file, key);
}

static enum seg_status upload(struct lt_ctx *c, const char *name, struct seg_tensor **out)
{
    const struct seg_st_tensor *s = find_prefixed(c, "in", name);
    if (!s)
        return seg_error(SEG_STATUS_INVALID, "%s: no input in.%s", c->case_name, name);
    if (s->dtype != SEG_ST_F32 && s->dtype != SEG_ST_I32)
        return seg_error(SEG_STATUS_INVALID, "%s: in.%s must be F32 or I32", c->case_name, name);
    enum seg_status st = seg_tensor_new(c->be, s->dtype == SEG_ST_F32 ? SEG_DTYPE_F32 : SEG_DTYPE_I32, s->ndim, s->shape, out);
    if (!st)
        st = seg_tensor_write(*out, s->data, s->nbytes);
    return st;
}

struct seg_var *lt_var(struct lt_ctx *c, const char *name)
{
    for (int i = 0; i < c->nvars; i++)
        if (!strcmp(c->var_name[i], name))
            return c->vars[i];
    struct seg_tensor *t = NULL;
    struct seg_var *v = NULL;
    if (c->nvars == LT_MAX || upload(c, name, &t))
        return NULL;
    if (seg_var_leaf_new(t, find_prefixed(c, "grad", name) != NULL, &v)) {
        seg_tensor_free(t);
        return NULL;
    }
    c->var_name[c->nvars] = name;
    c->vars[c->nvars++] = v;
    return v;
}

const struct seg_tensor *lt_tensor(struct lt_ctx *c, const char *name)
{
    for (int i = 0; i < c->ntensors; i++)
        if (!strcmp(c->tensor_name[i], name))
            return c->tensors[i];
    struct seg_tensor *t = NULL;
    if (c->ntensors == LT_MAX || upload(c, name, &t))
        return NULL;
    c->tensor_name[c->ntensors] = name;
    c->tensors[c->ntensors++] = t;
    return t;
}

const char *lt_param_str(const struct lt_ctx *c, const char *key, const char *def)
{
    const char *v = seg_st_meta_get(c->file, key);
    return v ? v : def;
}

double lt_param(const struct lt_ctx *c, const char *key, double def)
{
    const char *v = seg_st_meta_get(c->file, key);
    return v ? strtod(v, NULL) : def;
}

static enum seg_status read_all(const struct seg_tensor *t, float **out, int64_t *n)
{
    *n = seg_tensor_numel(t);
    *out = malloc((size_t)(*n ? *n : 1) * sizeof **out);
    if (!*out)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "out of host memory");
    if (t->dtype == SEG_DTYPE_F32)
        return seg_tensor_read(t, *out, (size_t)*n * 4);
    int32_t *tmp = malloc((size_t)(*n ? *n : 1) * 4);
    enum seg_status st = tmp ? seg_tensor_read(t, tmp, (size_t)*n * 4) : SEG_STATUS_OUT_OF_MEMORY;
    for (int64_t i = 0; !st && i < *n; i++)
        (*out)[i] = (float)tmp[i];
    free(tmp);
    return st;
}

enum seg_status lt_output(struct lt_ctx *c, const char *name, struct seg_var *v)
{
    return lt_output_tensor(c, name, v ? v->value : NULL);
}

enum seg_status lt_output_tensor(struct lt_ctx *c, const char *name, const struct seg_tensor *t)
{
    if (!t || c->nouts == LT_MAX)
        return seg_error(SEG_STATUS_INVALID, "%s: output %s missing", c->case_name, name);
    int i = c->nouts++;
    c->out_name[i] = name;
    return read_all(t, &c->out_value[i], &c->out_numel[i]);
}

/* max |a - r| / max |r| (NaN in a counts as infinite) */
static double rel_err(const float *a, const float *r, int64_t n)
{
    double e = 0, m = 1e-12;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - r[i]);
        if (!(d <= e))
            e = isnan(d) ? INFINITY : d;
        m = fmax(m, fabs(r[i]));
    }
    return e / m;
}

static int compare(const char *cname, const char *what, const float *a, int64_t n, const struct seg_st_tensor *ref,
                   double tol)
{
    if (!ref || ref->dtype != SEG_ST_F32 || (int64_t)(ref->nbytes / 4) != n) {
        printf("  %-28s %-22s FAIL: %s\n", cname, what, ref ? "size differs from the reference" : "no reference");
        return 1;
    }
    double e = rel_err(a, ref->data, n);
    bool ok = e <= tol;
    printf("  %-28s %-22s %s  rel err %.2e (tol %.0e)\n", cname, what, ok ? "pass" : "FAIL", e, tol);
    return ok ? 0 : 1;
}

static int run_case(struct seg_backend *be, const char *dir, const struct lt_case *k)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, k->name);
    struct seg_st_file f;
    if (seg_st_read(path, &f)) {
        printf("  %-28s FAIL: %s\n", k->name, seg_last_error());
        return 1;
    }
    struct lt_ctx c = {.be = be, .file = &f, .case_name = k->name};
    int fails = 0;
    struct seg_var *loss = NULL;
    enum seg_status st = seg_ag_create(be, &c.ag);
    if (!st) st = k->build(&c, &loss);
    if (!st && !loss) st = seg_error(SEG_STATUS_INVALID, "%s: no loss", k->name);
    float *lv = NULL;
    int64_t ln = 0;
    if (!st) st = read_all(loss->value, &lv, &ln);
    /* a case without grad.<name> entries (masks, EMA, labels) has nothing to differentiate */
    bool has_grads = false;
    for (int i = 0; i < f.ntensors; i++)
        has_grads |= !strncmp(f.tensors[i].name, "grad.", 5);
    if (!st && has_grads) st = seg_ag_backward(c.ag, loss);
    if (st) {
        printf("  %-28s FAIL: %s\n", k->name, seg_last_error());
        fails++;
    } else {
        double tol = lt_param(&c, "tol", 1e-4), gtol = lt_param(&c, "grad_tol", tol);
        fails += compare(k->name, "loss", lv, ln, seg_st_find(&f, "out.loss"), tol);
        for (int i = 0; i < c.nouts; i++) {
            char what[96];
            snprintf(what, sizeof what, "out.%s", c.out_name[i]);
            fails += compare(k->name, what, c.out_value[i], c.out_numel[i], seg_st_find(&f, what), tol);
        }
        for (int i = 0; i < f.ntensors; i++) { /* every grad.<name> must be matched */
            if (strncmp(f.tensors[i].name, "grad.", 5))
                continue;
            const char *vn = f.tensors[i].name + 5;
            struct seg_var *v = NULL;
            for (int j = 0; j < c.nvars; j++)
                if (!strcmp(c.var_name[j], vn))
                    v = c.vars[j];
            float *g = NULL;
            int64_t gn = 0;
            if (!v) {
                printf("  %-28s %-22s FAIL: the case never used in.%s\n", k->name, f.tensors[i].name, vn);
                fails++;
                continue;
            }
            if (v->grad) {
                if (read_all(v->grad, &g, &gn)) {
                    printf("  %-28s %-22s FAIL: %s\n", k->name, f.tensors[i].name, seg_last_error());
                    fails++;
                    continue;
                }
            } else { /* no gradient reached it: zero */
                gn = seg_tensor_numel(v->value);
                g = calloc((size_t)(gn ? gn : 1), sizeof *g);
            }
            fails += compare(k->name, f.tensors[i].name, g, gn, &f.tensors[i], gtol);
            free(g);
        }
    }
    free(lv);
    for (int i = 0; i < c.nouts; i++)
        free(c.out_value[i]);
    seg_ag_destroy(c.ag);
    for (int i = 0; i < c.nvars; i++)
        seg_var_leaf_free(c.vars[i]);
    for (int i = 0; i < c.ntensors; i++)
        seg_tensor_free(c.tensors[i]);
    seg_st_free(&f);
    return fails;
}

int main(int argc, char **argv)
{
    const char *backend = "cpu", *dir = ".", *method = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            backend = argv[++i];
        else if (!strcmp(argv[i], "-d") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            method = argv[++i];
        else {
            printf("usage: test_losses [-b BACKEND] [-d DIR] -m METHOD\n"
                   "  DIR holds the case files of tests/loss_ref/gen.py METHOD DIR\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    const struct lt_method *m = NULL;
    for (int i = 0; i < NMETHODS; i++)
        if (method && !strcmp(methods[i].name, method))
            m = &methods[i];
    if (!m) {
        fprintf(stderr, "test_losses: -m: unknown method '%s'\n", method ? method : "");
        return 2;
    }
    struct seg_backend *be = NULL;
    int rc = test_backend_open(backend, &be);
    if (rc)
        return rc;
    printf("%s loss terms on %s (%s)\n", m->name, seg_backend_device(be)->spec, seg_backend_device(be)->name);
    int fails = 0, n = 0;
    for (const struct lt_case *k = m->cases; k->name; k++, n++)
        fails += run_case(be, dir, k);
    seg_backend_destroy(be);
    printf("%d cases, %d failures\n", n, fails);
    return fails ? 1 : 0;
}
