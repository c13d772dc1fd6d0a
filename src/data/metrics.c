/* metrics.c: confusion matrix, per-class IoU and the mIoU variants papers report
 * (AdaptSegNet's compute_iou: IoU = TP / (TP + FP + FN), mean over classes ignoring NaN),
 * printed as a table and saved as JSON and CSV (atomic writes). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

enum seg_status seg_confusion_init(struct seg_confusion *c, int k)
{
    c->k = 0;
    c->m = NULL;
    if (k < 1 || k > SEG_METRICS_MAX_CLASSES)
        return seg_error(SEG_STATUS_INVALID, "confusion: %d classes (1..%d)", k, SEG_METRICS_MAX_CLASSES);
    c->m = calloc((size_t)k * k, sizeof *c->m);
    if (!c->m)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "confusion: out of host memory");
    c->k = k;
    return SEG_STATUS_OK;
}

void seg_confusion_free(struct seg_confusion *c)
{
    free(c->m);
    c->m = NULL;
    c->k = 0;
}

void seg_confusion_reset(struct seg_confusion *c)
{
    memset(c->m, 0, (size_t)c->k * c->k * sizeof *c->m);
}

enum seg_status seg_confusion_add(struct seg_confusion *c, const int32_t *pred,
                                  const int32_t *labels, size_t n)
{
    int k = c->k;
    for (size_t i = 0; i < n; i++) { /* validate first: a failed call changes nothing */
        int32_t l = labels[i], p = pred[i];
        if (l == SEG_IGNORE)
            continue;
        if (l < 0 || l >= k)
            return seg_error(SEG_STATUS_INVALID, "confusion: label %d at %zu is outside [0, %d) and not %d",
                             l, i, k, SEG_IGNORE);
        if (p < 0 || p >= k)
            return seg_error(SEG_STATUS_INVALID, "confusion: prediction %d at %zu is outside [0, %d)", p, i, k);
    }
    for (size_t i = 0; i < n; i++)
        if (labels[i] != SEG_IGNORE)
            c->m[(size_t)labels[i] * k + pred[i]]++;
    return SEG_STATUS_OK;
}

enum seg_status seg_confusion_merge(struct seg_confusion *dst, const struct seg_confusion *src)
{
    if (dst->k != src->k)
        return seg_error(SEG_STATUS_INVALID, "confusion: cannot merge %d and %d classes", dst->k, src->k);
    for (size_t i = 0; i < (size_t)dst->k * dst->k; i++)
        dst->m[i] += src->m[i];
    return SEG_STATUS_OK;
}

void seg_confusion_iou(const struct seg_confusion *c, double *iou)
{
    int k = c->k;
    for (int i = 0; i < k; i++) {
        uint64_t tp = c->m[(size_t)i * k + i], row = 0, col = 0;
        for (int j = 0; j < k; j++) {
            row += c->m[(size_t)i * k + j];
            col += c->m[(size_t)j * k + i];
        }
        uint64_t den = row + col - tp;
        iou[i] = den ? (double)tp / (double)den : NAN;
    }
}

double seg_miou_subset(const double *iou, const int *classes, int n)
{
    double s = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(iou[classes[i]])) {
            s += iou[classes[i]];
            m++;
        }
    return m ? s / m : NAN;
}

int seg_metrics_view_classes(int k, int v, const char **name, int *classes)
{
    /* (space, view) -> name and the 19-space trainIds it keeps */
    static const int8_t syn16[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18};
    static const int8_t syn13[13] = {0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18};
    const int8_t *ids = NULL;
    int n = 0;
    const char *nm = NULL;
    if (k == 19) {
        if (v == 0)
            nm = "mIoU", n = 19;
        else if (v == 1)
            nm = "mIoU16", ids = syn16, n = 16;
        else if (v == 2)
            nm = "mIoU13", ids = syn13, n = 13;
    } else if (k == 16) {
        if (v == 0)
            nm = "mIoU16", n = 16;
        else if (v == 1)
            nm = "mIoU13", ids = syn13, n = 13;
    } else if (k == 13) {
        if (v == 0)
            nm = "mIoU13", n = 13;
    } else if (v == 0 && k >= 1 && k <= SEG_METRICS_MAX_CLASSES) {
        nm = "mIoU", n = k;
    }
    if (!nm)
        return 0;
    for (int i = 0; i < n; i++)
        classes[i] = ids ? seg_labels_from19(k, ids[i]) : i;
    if (name)
        *name = nm;
    return n;
}

void seg_metrics_compute(const struct seg_confusion *c, struct seg_metrics_report *r)
{
    memset(r, 0, sizeof *r);
    r->k = c->k;
    seg_confusion_iou(c, r->iou);
    uint64_t tp = 0, all = 0;
    for (int i = 0; i < c->k; i++)
        for (int j = 0; j < c->k; j++) {
            all += c->m[(size_t)i * c->k + j];
            if (i == j)
                tp += c->m[(size_t)i * c->k + j];
        }
    r->pixels = all;
    r->pixel_acc = all ? (double)tp / (double)all : NAN;
    for (int v = 0; v < SEG_METRICS_MAX_VIEWS; v++) {
        int cls[SEG_METRICS_MAX_CLASSES];
        const char *nm;
        int n = seg_metrics_view_classes(c->k, v, &nm, cls);
        if (!n)
            break;
        snprintf(r->view_name[v], sizeof r->view_name[v], "%s", nm);
        r->view_miou[v] = seg_miou_subset(r->iou, cls, n);
        r->nviews = v + 1;
    }
}

static const char *class_name(int k, int i, char *buf, size_t n)
{
    if (seg_labels_space_valid(k))
        return seg_labels_class_name(k, i);
    snprintf(buf, n, "class%d", i);
    return buf;
}

void seg_metrics_print(const struct seg_metrics_report *r, FILE *f)
{
    char buf[32];
    fprintf(f, "%-14s %7s\n", "class", "IoU");
    for (int i = 0; i < r->k; i++) {
        if (isnan(r->iou[i]))
            fprintf(f, "%-14s %7s\n", class_name(r->k, i, buf, sizeof buf), "-");
        else
            fprintf(f, "%-14s %7.2f\n", class_name(r->k, i, buf, sizeof buf), 100.0 * r->iou[i]);
    }
    for (int v = 0; v < r->nviews; v++)
        fprintf(f, "%-14s %7.2f\n", r->view_name[v], 100.0 * r->view_miou[v]);
    fprintf(f, "%-14s %7.2f  (%llu pixels)\n", "pixel acc", 100.0 * r->pixel_acc,
            (unsigned long long)r->pixels);
}

/* Appends to a growing buffer. */
struct text {
    char  *p;
    size_t n, cap;
    bool   oom;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? t->cap - t->n : 0, fmt, ap);
        va_end(ap);
        if (m < 0) {
            t->oom = true;
            return;
        }
        if (t->p && t->n + (size_t)m < t->cap) {
            t->n += (size_t)m;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->n + (size_t)m + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

static void put_num(struct text *t, double v)
{
    if (isnan(v))
        put(t, "null");
    else
        put(t, "%.4f", 100.0 * v);
}

static enum seg_status text_save(struct text *t, const char *path)
{
    enum seg_status st = t->oom ? seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", path)
                                : seg_file_write_atomic(path, t->p, t->n);
    free(t->p);
    return st;
}

enum seg_status seg_metrics_save_json(const struct seg_metrics_report *r, const char *path)
{
    struct text t = {0};
    char buf[32];
    put(&t, "{\n  \"num_classes\": %d,\n  \"pixels\": %llu,\n  \"pixel_acc\": ", r->k,
        (unsigned long long)r->pixels);
    put_num(&t, r->pixel_acc);
    for (int v = 0; v < r->nviews; v++) {
        put(&t, ",\n  \"%s\": ", r->view_name[v]);
        put_num(&t, r->view_miou[v]);
    }
    put(&t, ",\n  \"iou\": {");
    for (int i = 0; i < r->k; i++) {
        put(&t, "%s\n    \"%s\": ", i ? "," : "", class_name(r->k, i, buf, sizeof buf));
        put_num(&t, r->iou[i]);
    }
    put(&t, "\n  }\n}\n");
    return text_save(&t, path);
}

enum seg_status seg_metrics_save_csv(const struct seg_metrics_report *r, const char *path)
{
    struct text t = {0};
    char buf[32];
    put(&t, "name,value\n");
    for (int i = 0; i < r->k; i++) {
        put(&t, "%s,", class_name(r->k, i, buf, sizeof buf));
        if (!isnan(r->iou[i]))
            put(&t, "%.4f", 100.0 * r->iou[i]);
        put(&t, "\n");
    }
    for (int v = 0; v < r->nviews; v++) {
        put(&t, "%s,", r->view_name[v]);
        if (!isnan(r->view_miou[v]))
            put(&t, "%.4f", 100.0 * r->view_miou[v]);
        put(&t, "\n");
    }
    put(&t, "pixel_acc,");
    if (!isnan(r->pixel_acc))
        put(&t, "%.4f", 100.0 * r->pixel_acc);
    put(&t, "\n");
    return text_save(&t, path);
}
