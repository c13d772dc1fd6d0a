/* data_internal.h: helpers shared by the files of src/data (not public API). */
#ifndef SEGDA_DATA_INTERNAL_H
#define SEGDA_DATA_INTERNAL_H

#include "data/data.h"

/* A growable list of malloc'ed strings. */
struct seg_strv {
    char **v;
    int    n, cap;
};
enum seg_status seg_strv_push(struct seg_strv *s, const char *str);  /* copies str */
enum seg_status seg_strv_push_owned(struct seg_strv *s, char *str);  /* takes str */
void seg_strv_sort(struct seg_strv *s);
void seg_strv_free(struct seg_strv *s);

/* malloc'ed "a/b" (either may be empty; an absolute b is returned as is). NULL when out
 * of memory. */
char *seg_path_join(const char *a, const char *b);
char *seg_path_join3(const char *a, const char *b, const char *c);
char *seg_strdup(const char *s);
bool seg_path_is_dir(const char *path);
bool seg_path_is_file(const char *path);
bool seg_str_ends_with(const char *s, const char *suffix);

/* Names of the entries of dir (not "." or ".."), sorted; dirs_only / files_only filter. */
enum seg_status seg_dir_list(const char *dir, bool dirs_only, bool files_only,
                             struct seg_strv *out);

/* A warning line on stderr: "segda: warning: ...". */
void seg_data_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prediction files (pred_format.c): the class of each grey value and colour of a space. */
#define SEG_PRED_NONE 255   /* table entry of a value that is no class */
struct seg_pred_codec {
    int     num_classes;
    bool    has_labelids;                          /* a 19, 16 or 13-class space */
    uint8_t trainid[256], labelid[256];            /* grey value -> class or SEG_PRED_NONE */
    uint8_t class_labelid[SEG_METRICS_MAX_CLASSES];
    uint8_t color[SEG_METRICS_MAX_CLASSES][3];     /* seg_colorize's */
};
enum seg_status seg_pred_codec_init(struct seg_pred_codec *c, int num_classes);
/* The class of an RGB colour, -1 when it is no class's. */
int seg_pred_codec_color_class(const struct seg_pred_codec *c, const uint8_t *rgb);

static inline uint8_t seg_clamp_u8(float v)
{
    return v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)(v + 0.5f);
}

#endif
