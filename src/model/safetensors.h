/* safetensors.h: reading and writing safetensors files (float32/int32/int64 tensors plus a
 * string metadata map). The reader validates everything before use and never reads out
 * of bounds; the writer writes a temporary file, fsyncs it and renames it into place. */
#ifndef SEGDA_SAFETENSORS_H
#define SEGDA_SAFETENSORS_H

#include "segda.h"

#define SEG_ST_MAX_DIMS 8

enum seg_st_dtype { SEG_ST_F32, SEG_ST_I32, SEG_ST_I64, SEG_ST_U8 };

struct seg_st_tensor {
    char             *name;
    enum seg_st_dtype dtype;
    int               ndim;
    int64_t           shape[SEG_ST_MAX_DIMS];
    const void       *data;   /* into the file's buffer (reader) or the caller's (writer) */
    size_t            nbytes;
};

struct seg_st_meta {
    char *key, *value;
};

struct seg_st_file {
    struct seg_st_tensor *tensors;
    int                   ntensors;
    struct seg_st_meta   *meta;
    int                   nmeta;
    unsigned char        *buf;    /* the whole file (reader) */
    size_t                size;
};

/* Parses a file held in memory (takes over buf, which must come from malloc). */
enum seg_status seg_st_parse(unsigned char *buf, size_t size, const char *what,
                             struct seg_st_file *out);
enum seg_status seg_st_read(const char *path, struct seg_st_file *out);
void seg_st_free(struct seg_st_file *f);
const struct seg_st_tensor *seg_st_find(const struct seg_st_file *f, const char *name);
const char *seg_st_meta_get(const struct seg_st_file *f, const char *key);

/* Writes tensors (data and nbytes set by the caller) and metadata atomically. */
enum seg_status seg_st_write(const char *path, const struct seg_st_tensor *tensors, int n,
                             const struct seg_st_meta *meta, int nmeta);

size_t seg_st_dtype_size(enum seg_st_dtype d);

#endif
