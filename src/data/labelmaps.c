/* labelmaps.c: class spaces (19 Cityscapes trainIds, SYNTHIA's 16, the 13 Cross-City /
 * mIoU* classes), the Cityscapes palette, and raw-id -> class tables per dataset, as
 * methods.md section 6 gives them. */
#include <string.h>

#include "data/data_internal.h"

static const char *const names19[19] = {
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
};

static const uint8_t palette19[19][3] = {
    {128, 64, 128}, {244, 35, 232}, {70, 70, 70},    {102, 102, 156}, {190, 153, 153},
    {153, 153, 153}, {250, 170, 30}, {220, 220, 0},  {107, 142, 35},  {152, 251, 152},
    {70, 130, 180}, {220, 20, 60},   {255, 0, 0},    {0, 0, 142},     {0, 0, 70},
    {0, 60, 100},   {0, 80, 100},    {0, 0, 230},    {119, 11, 32},
};

/* The 19 trainIds each smaller space keeps, in its class order. */
static const int8_t space16[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18};
static const int8_t space13[13] = {0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18};

/* Cityscapes labelId -> trainId (GTA5 uses the same ids). */
static const struct { uint8_t id, train; } cs_ids[19] = {
    {7, 0},   {8, 1},   {11, 2},  {12, 3},  {13, 4},  {17, 5},  {19, 6},  {20, 7},  {21, 8}, {22, 9},
    {23, 10}, {24, 11}, {25, 12}, {26, 13}, {27, 14}, {28, 15}, {31, 16}, {32, 17}, {33, 18},
};

/* SYNTHIA raw id -> 19-class trainId (DASS / MaxSquareLoss); restricted to the 16 classes
 * this is exactly SDCA's 16-class table. */
static const struct { uint8_t id, train; } syn_ids[19] = {
    {3, 0},  {4, 1},   {2, 2},   {21, 3},  {5, 4},  {7, 5},   {15, 6},  {9, 7},   {6, 8},  {16, 9},
    {1, 10}, {10, 11}, {17, 12}, {8, 13},  {18, 14}, {19, 15}, {20, 16}, {12, 17}, {11, 18},
};

/* Cityscapes labelId colours (labels.py), ids 0..33. */
static const uint8_t cs_id_colors[34][3] = {
    {0, 0, 0},       {0, 0, 0},       {0, 0, 0},       {0, 0, 0},       {0, 0, 0},
    {111, 74, 0},    {81, 0, 81},     {128, 64, 128},  {244, 35, 232},  {250, 170, 160},
    {230, 150, 140}, {70, 70, 70},    {102, 102, 156}, {190, 153, 153}, {180, 165, 180},
    {150, 100, 100}, {150, 120, 90},  {153, 153, 153}, {153, 153, 153}, {250, 170, 30},
    {220, 220, 0},   {107, 142, 35},  {152, 251, 152}, {70, 130, 180},  {220, 20, 60},
    {255, 0, 0},     {0, 0, 142},     {0, 0, 70},      {0, 60, 100},    {0, 0, 90},
    {0, 0, 110},     {0, 80, 100},    {0, 0, 230},     {119, 11, 32},
};

bool seg_labels_space_valid(int k)
{
    return k == 19 || k == 16 || k == 13;
}

int seg_labels_to19(int k, int cls)
{
    if (cls < 0 || cls >= k)
        return -1;
    switch (k) {
    case 19: return cls;
    case 16: return space16[cls];
    case 13: return space13[cls];
    default: return -1;
    }
}

int seg_labels_from19(int k, int t)
{
    if (t < 0 || t >= 19)
        return SEG_IGNORE;
    if (k == 19)
        return t;
    const int8_t *s = k == 16 ? space16 : k == 13 ? space13 : NULL;
    if (!s)
        return SEG_IGNORE;
    for (int i = 0; i < k; i++)
        if (s[i] == t)
            return i;
    return SEG_IGNORE;
}

const char *seg_labels_class_name(int k, int cls)
{
    int t = seg_labels_to19(k, cls);
    return t < 0 ? "?" : names19[t];
}

void seg_labels_color(int k, int cls, uint8_t rgb[3])
{
    int t = seg_labels_to19(k, cls);
    if (t < 0) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    memcpy(rgb, palette19[t], 3);
}

void seg_labels_cityscapes_id_palette(uint8_t palette[256 * 3])
{
    memset(palette, 0, 256 * 3);
    memcpy(palette, cs_id_colors, sizeof cs_id_colors);
}

static const char *const kind_names[SEG_DATASET_COUNT] = {
    [SEG_DATASET_GTA5] = "gta5",
    [SEG_DATASET_SYNTHIA] = "synthia",
    [SEG_DATASET_CITYSCAPES] = "cityscapes",
    [SEG_DATASET_CROSSCITY] = "crosscity",
};

const char *seg_dataset_kind_name(enum seg_dataset_kind k)
{
    return (unsigned)k < SEG_DATASET_COUNT ? kind_names[k] : "?";
}

int seg_dataset_kind_from_name(const char *name)
{
    for (int i = 0; i < SEG_DATASET_COUNT; i++)
        if (!strcmp(name, kind_names[i]))
            return i;
    return -1;
}

enum seg_status seg_labelmap_init(struct seg_labelmap *m, enum seg_dataset_kind kind, int k)
{
    if ((unsigned)kind >= SEG_DATASET_COUNT)
        return seg_error(SEG_STATUS_INVALID, "labelmap: unknown dataset kind %d", (int)kind);
    if (!seg_labels_space_valid(k))
        return seg_error(SEG_STATUS_INVALID, "labelmap: %d classes is not a class space (19, 16 or 13)", k);
    m->kind = kind;
    m->num_classes = k;
    memset(m->lut, SEG_LABELMAP_INVALID, sizeof m->lut);
    if (kind == SEG_DATASET_SYNTHIA) {
        m->max_id = 22;
        for (int id = 0; id <= 22; id++)
            m->lut[id] = SEG_IGNORE;
        for (int i = 0; i < 19; i++)
            m->lut[syn_ids[i].id] = (uint8_t)seg_labels_from19(k, syn_ids[i].train);
    } else {
        m->max_id = 33;
        for (int id = 0; id <= 33; id++)
            m->lut[id] = SEG_IGNORE;
        m->lut[255] = SEG_IGNORE; /* -1 (license plate) stored as uint8 */
        for (int i = 0; i < 19; i++)
            m->lut[cs_ids[i].id] = (uint8_t)seg_labels_from19(k, cs_ids[i].train);
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_labelmap_apply(const struct seg_labelmap *m, const struct seg_ids *ids,
                                   const char *name, uint8_t *labels)
{
    size_t n = (size_t)ids->w * ids->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t v = m->lut[ids->data[i]];
        if (v == SEG_LABELMAP_INVALID)
            return seg_error(SEG_STATUS_FORMAT,
                             "%s: label value %u at pixel (%zu, %zu) is not a %s id (valid: 0..%d%s)",
                             name, (unsigned)ids->data[i], i % (size_t)ids->w, i / (size_t)ids->w,
                             seg_dataset_kind_name(m->kind), m->max_id,
                             m->kind == SEG_DATASET_SYNTHIA ? "" : " and 255");
        labels[i] = v;
    }
    return SEG_STATUS_OK;
}
