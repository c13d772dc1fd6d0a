/* pseudo_dass.c: DASS's static pseudo labels (see pseudo_dass.h). */
#include "app/pseudo_dass.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

static int cmp_asc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

size_t seg_dass_sample(float *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_asc);
    size_t m = 0;
    for (size_t i = 0; i < n; i += 5)
        v[m++] = v[i];
    return m;
}

float seg_dass_class_threshold(float *v, size_t n, double portion)
{
    qsort(v, n, sizeof *v, cmp_asc);
    size_t i = (size_t)floor((double)n * portion);
    if (i > n)
        i = n;
    return i ? v[n - i] : v[0];
}

enum seg_status seg_dass_labels(const float *prob, int classes, size_t px, const float *thr, double portion,
                                uint8_t *lab, int32_t *pred, float *conf)
{
    if (classes < 1 || !px)
        return seg_error(SEG_STATUS_INVALID, "pseudo-label dass: empty image or no classes");
    float *best = malloc(px * sizeof *best), *sorted = malloc(px * sizeof *sorted);
    uint8_t *cls = malloc(px);
    if (!best || !sorted || !cls) {
        free(best);
        free(sorted);
        free(cls);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "pseudo-label dass: out of host memory");
    }
    for (size_t p = 0; p < px; p++) {
        int arg = 0;
        bool pass = false;
        for (int c = 0; c < classes; c++) {
            float v = prob[(size_t)c * px + p];
            if (v > prob[(size_t)arg * px + p]) /* the first maximum, as torch's argmax */
                arg = c;
            pass |= v >= thr[c];
        }
        best[p] = prob[(size_t)arg * px + p];
        cls[p] = (uint8_t)arg;
        sorted[p] = best[p];
        lab[p] = pass ? (uint8_t)arg : 255;
        if (pred)
            pred[p] = arg;
        if (conf)
            conf[p] = best[p];
    }
    /* the image's own cut: rank floor(portion * px) - 1 from the top (-1: Python's last) */
    qsort(sorted, px, sizeof *sorted, cmp_asc);
    long r = (long)floor(portion * (double)px) - 1;
    float cut = r < 0 ? sorted[0] : sorted[px - 1 - (size_t)r];
    for (size_t p = 0; p < px; p++)
        if (lab[p] == 255 && best[p] > cut)
            lab[p] = cls[p];
    free(best);
    free(cls);
    free(sorted);
    return SEG_STATUS_OK;
}
