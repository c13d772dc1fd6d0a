/* config.h: training configuration: INI files (inih) plus `--set section.key=value`
 * overrides, checked against one table of known keys with defaults, so a typo is an error
 * that names the file, the line and the key. */
#ifndef SEGDA_CONFIG_H
#define SEGDA_CONFIG_H

#include "segda.h"

struct seg_config_key {
    const char *name;   /* "section.key" */
    const char *def;    /* default value */
    const char *help;
};

struct seg_config {
    char **names, **values; /* parallel to the key table: the effective values */
    int    n;
};

/* The table of every known key. */
const struct seg_config_key *seg_config_keys(int *n);

/* Defaults for every key. */
enum seg_status seg_config_init(struct seg_config *c);
void seg_config_free(struct seg_config *c);
/* Reads an INI file over the current values. */
enum seg_status seg_config_load(struct seg_config *c, const char *path);
/* "section.key=value" */
enum seg_status seg_config_set(struct seg_config *c, const char *assignment);

const char *seg_config_str(const struct seg_config *c, const char *name);
/* Typed getters: the value must parse entirely, else an error names the key and value. */
enum seg_status seg_config_int(const struct seg_config *c, const char *name, long *out);
enum seg_status seg_config_float(const struct seg_config *c, const char *name, double *out);
enum seg_status seg_config_bool(const struct seg_config *c, const char *name, bool *out);
/* A comma-separated list of at most max numbers, each in (0, 16] (scale factors); "" gives
 * *n = 0. */
enum seg_status seg_config_floats(const struct seg_config *c, const char *name, int max, float *out, int *n);
/* "WxH" */
enum seg_status seg_config_size(const struct seg_config *c, const char *name, int *w, int *h);

/* Prints the effective configuration as INI (to f) and writes it atomically to path. */
void seg_config_print(const struct seg_config *c, void *file);
enum seg_status seg_config_save(const struct seg_config *c, const char *path);

#endif
