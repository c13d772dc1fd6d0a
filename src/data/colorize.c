/* colorize.c: class maps to Cityscapes colours, overlays, and input | gt | prediction grids. */
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

enum seg_status seg_colorize(const int32_t *labels, int w, int h, int num_classes,
                             struct seg_image *out)
{
    enum seg_status st = seg_image_alloc(out, w, h, 3);
    if (st != SEG_STATUS_OK)
        return st;
    uint8_t lut[SEG_METRICS_MAX_CLASSES][3];
    int k = num_classes < SEG_METRICS_MAX_CLASSES ? num_classes : SEG_METRICS_MAX_CLASSES;
    for (int c = 0; c < k; c++) {
        if (seg_labels_space_valid(num_classes)) {
            seg_labels_color(num_classes, c, lut[c]);
        } else { /* any other k: spread hues deterministically */
            lut[c][0] = (uint8_t)(37 * c + 64);
            lut[c][1] = (uint8_t)(91 * c + 32);
            lut[c][2] = (uint8_t)(151 * c + 128);
        }
    }
    for (size_t i = 0; i < (size_t)w * h; i++) {
        int32_t v = labels[i];
        uint8_t *p = out->data + 3 * i;
        if (v >= 0 && v < k)
            memcpy(p, lut[v], 3);
        else
            p[0] = p[1] = p[2] = 0;
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_overlay(const struct seg_image *image, const struct seg_image *colors,
                            float alpha, struct seg_image *out)
{
    if (image->w != colors->w || image->h != colors->h || image->c != 3 || colors->c != 3)
        return seg_error(SEG_STATUS_INVALID, "overlay: image %dx%dx%d and colours %dx%dx%d differ",
                         image->w, image->h, image->c, colors->w, colors->h, colors->c);
    if (!(alpha >= 0 && alpha <= 1))
        return seg_error(SEG_STATUS_INVALID, "overlay: alpha %g outside [0, 1]", alpha);
    enum seg_status st = seg_image_alloc(out, image->w, image->h, 3);
    if (st != SEG_STATUS_OK)
        return st;
    for (size_t i = 0; i < (size_t)image->w * image->h * 3; i++)
        out->data[i] = seg_clamp_u8((1 - alpha) * image->data[i] + alpha * colors->data[i]);
    return SEG_STATUS_OK;
}

/* Nearest resize of an int32 class map. */
static int32_t *resize_labels(const int32_t *in, int iw, int ih, int w, int h)
{
    int32_t *out = malloc((size_t)w * h * sizeof *out);
    if (!out)
        return NULL;
    for (int y = 0; y < h; y++) {
        int yy = (int)(((int64_t)y * 2 + 1) * ih / (2 * (int64_t)h));
        for (int x = 0; x < w; x++) {
            int xx = (int)(((int64_t)x * 2 + 1) * iw / (2 * (int64_t)w));
            out[(size_t)y * w + x] = in[(size_t)yy * iw + xx];
        }
    }
    return out;
}

enum seg_status seg_grid_compose(const struct seg_image *input, const int32_t *gt, int gt_w, int gt_h,
                                 const int32_t *pred, int w, int h, int num_classes, struct seg_image *grid)
{
    memset(grid, 0, sizeof *grid);
    if (!input || input->c != 3 || !pred || w <= 0 || h <= 0 || (gt && (gt_w <= 0 || gt_h <= 0)))
        return seg_error(SEG_STATUS_INVALID, "grid needs an RGB input and a prediction");
    struct seg_image in_r = {0}, gt_c = {0}, pr_c = {0};
    int32_t *gt_r = NULL;
    enum seg_status st = seg_image_resize_bilinear(input, w, h, &in_r);
    if (st == SEG_STATUS_OK && gt) {
        gt_r = resize_labels(gt, gt_w, gt_h, w, h);
        st = gt_r ? seg_colorize(gt_r, w, h, num_classes, &gt_c)
                  : seg_error(SEG_STATUS_OUT_OF_MEMORY, "grid: out of host memory");
    } else if (st == SEG_STATUS_OK && (st = seg_image_alloc(&gt_c, w, h, 3)) == SEG_STATUS_OK) {
        memset(gt_c.data, 0, (size_t)w * h * 3);
    }
    if (st == SEG_STATUS_OK)
        st = seg_colorize(pred, w, h, num_classes, &pr_c);
    if (st == SEG_STATUS_OK)
        st = seg_image_alloc(grid, 3 * w, h, 3);
    if (st == SEG_STATUS_OK) {
        const struct seg_image *panel[3] = {&in_r, &gt_c, &pr_c};
        for (int y = 0; y < h; y++)
            for (int k = 0; k < 3; k++)
                memcpy(grid->data + ((size_t)y * 3 * w + (size_t)k * w) * 3,
                       panel[k]->data + (size_t)y * w * 3, (size_t)w * 3);
    }
    free(gt_r);
    seg_image_free(&in_r);
    seg_image_free(&gt_c);
    seg_image_free(&pr_c);
    return st;
}

enum seg_status seg_grid_write(const char *path, const struct seg_image *input,
                               const int32_t *gt, int gt_w, int gt_h, const int32_t *pred,
                               int w, int h, int num_classes)
{
    struct seg_image grid;
    enum seg_status st = seg_grid_compose(input, gt, gt_w, gt_h, pred, w, h, num_classes, &grid);
    if (st) {
        char msg[512]; /* seg_error's buffer is the message's: copy it first */
        snprintf(msg, sizeof msg, "%s", seg_last_error());
        return seg_error(st, "%s: %s", path, msg);
    }
    st = seg_image_write_png(path, &grid);
    seg_image_free(&grid);
    return st;
}
