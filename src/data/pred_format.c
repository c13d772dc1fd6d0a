/* pred_format.c: prediction PNGs in the formats other tools exchange: trainid (grey class
 * indices), labelid (grey Cityscapes labelIds, what the benchmark server takes) and color
 * (the palette segda predict has always written). */
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

static const char *const format_names[] = {
    [SEG_PRED_AUTO] = "auto", [SEG_PRED_TRAINID] = "trainid", [SEG_PRED_LABELID] = "labelid",
    [SEG_PRED_COLOR] = "color",
};

int seg_pred_format_from_name(const char *name)
{
    for (int i = 0; i < (int)(sizeof format_names / sizeof format_names[0]); i++)
        if (!strcmp(name, format_names[i]))
            return i;
    return -1;
}

const char *seg_pred_format_name(enum seg_pred_format f)
{
    return (unsigned)f < sizeof format_names / sizeof format_names[0] ? format_names[f] : "?";
}

enum seg_status seg_pred_codec_init(struct seg_pred_codec *c, int num_classes)
{
    memset(c, 0, sizeof *c);
    if (num_classes < 1 || num_classes > SEG_METRICS_MAX_CLASSES)
        return seg_error(SEG_STATUS_INVALID, "predictions: %d classes (1..%d)", num_classes,
                         SEG_METRICS_MAX_CLASSES);
    c->num_classes = num_classes;
    memset(c->trainid, SEG_PRED_NONE, sizeof c->trainid);
    memset(c->labelid, SEG_PRED_NONE, sizeof c->labelid);
    int32_t all[SEG_METRICS_MAX_CLASSES];
    for (int k = 0; k < num_classes; k++) {
        c->trainid[k] = (uint8_t)k;
        all[k] = k;
    }
    struct seg_image row = {0}; /* the colours are seg_colorize's, whatever the space */
    enum seg_status st = seg_colorize(all, num_classes, 1, num_classes, &row);
    if (st)
        return st;
    memcpy(c->color, row.data, (size_t)num_classes * 3);
    seg_image_free(&row);
    if (!seg_labels_space_valid(num_classes))
        return SEG_STATUS_OK;
    /* labelId -> class is the Cityscapes label map read as a prediction: void ids and
     * classes outside the space are no class here (a prediction is never "ignore") */
    struct seg_labelmap *m = malloc(sizeof *m);
    if (!m)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "predictions: out of host memory");
    st = seg_labelmap_init(m, SEG_DATASET_CITYSCAPES, num_classes);
    for (int id = 0; !st && id < 256; id++)
        if (m->lut[id] < num_classes) {
            c->labelid[id] = m->lut[id];
            c->class_labelid[m->lut[id]] = (uint8_t)id;
        }
    free(m);
    c->has_labelids = !st;
    return st;
}

int seg_pred_codec_color_class(const struct seg_pred_codec *c, const uint8_t *rgb)
{
    for (int k = 0; k < c->num_classes; k++)
        if (!memcmp(c->color[k], rgb, 3))
            return k;
    return -1;
}

enum seg_status seg_pred_encode(const int32_t *classes, int w, int h, int num_classes,
                                enum seg_pred_format f, struct seg_image *out)
{
    memset(out, 0, sizeof *out);
    if (f == SEG_PRED_COLOR)
        return seg_colorize(classes, w, h, num_classes, out);
    if (f != SEG_PRED_TRAINID && f != SEG_PRED_LABELID)
        return seg_error(SEG_STATUS_INVALID, "predictions: no encoding for format %d", (int)f);
    struct seg_pred_codec *c = malloc(sizeof *c);
    enum seg_status st = c ? seg_pred_codec_init(c, num_classes)
                           : seg_error(SEG_STATUS_OUT_OF_MEMORY, "predictions: out of host memory");
    if (!st && f == SEG_PRED_LABELID && !c->has_labelids)
        st = seg_error(SEG_STATUS_INVALID, "predictions: labelid needs a 19, 16 or 13-class model (this one has %d)",
                       num_classes);
    if (!st) st = seg_image_alloc(out, w, h, 1);
    for (size_t i = 0; !st && i < (size_t)w * h; i++) {
        int32_t v = classes[i];
        bool in = v >= 0 && v < num_classes;
        out->data[i] = f == SEG_PRED_TRAINID ? (in ? (uint8_t)v : SEG_IGNORE) : (in ? c->class_labelid[v] : 0);
    }
    free(c);
    return st;
}
