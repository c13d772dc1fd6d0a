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

static inline uint8_t seg_clamp_u8(float v)
{
    return v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)(v + 0.5f);
}

#endif
