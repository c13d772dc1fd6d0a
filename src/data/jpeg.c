/* jpeg.c: the JPEG writer (fixtures, outputs). It calls stb_image_write from the system
 * libstb rather than from image.c's instrumented copy: stb's JPEG bit writer shifts signed
 * ints past their range, which UBSan builds reject although the bytes are right. */
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "data/data_internal.h"

struct mem_sink {
    uint8_t *p;
    size_t   n, cap;
    bool     oom;
};

static void sink_write(void *ctx, void *data, int size)
{
    struct mem_sink *s = ctx;
    if (s->oom || size <= 0)
        return;
    if (s->n + (size_t)size > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->n + (size_t)size)
            cap *= 2;
        uint8_t *p = realloc(s->p, cap);
        if (!p) {
            s->oom = true;
            return;
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->n, data, (size_t)size);
    s->n += (size_t)size;
}

enum seg_status seg_jpeg_write(const char *path, const uint8_t *pixels, int w, int h, int c,
                               int quality)
{
    if (w <= 0 || h <= 0 || w > 65535 || h > 65535 || (c != 1 && c != 3) || quality < 1 ||
        quality > 100)
        return seg_error(SEG_STATUS_INVALID, "%s: cannot encode JPEG %dx%dx%d quality %d", path, w,
                         h, c, quality);
    struct mem_sink s = {0};
    int ok = stbi_write_jpg_to_func(sink_write, &s, w, h, c, pixels, quality);
    if (!ok || s.oom) {
        free(s.p);
        return seg_error(s.oom ? SEG_STATUS_OUT_OF_MEMORY : SEG_STATUS_INVALID,
                         "%s: JPEG encoding failed", path);
    }
    enum seg_status st = seg_file_write_atomic(path, s.p, s.n);
    free(s.p);
    return st;
}
