/* cl_sources.h: the OpenCL C sources embedded at build time by cl/embed.cmake.
 * The table itself is generated into ${CMAKE_BINARY_DIR}/gen/segda_cl_sources.c. */
#ifndef SEGDA_CL_SOURCES_H
#define SEGDA_CL_SOURCES_H

#include <stddef.h>

struct seg_cl_source {
    const char *name;   /* the .cl file name without extension: "pointwise", "reduce", ... */
    const char *source; /* NUL-terminated, with cl/common.h already expanded */
    size_t      size;   /* strlen(source) */
};

extern const struct seg_cl_source seg_cl_sources[];
extern const int                  seg_cl_source_count;

#endif
