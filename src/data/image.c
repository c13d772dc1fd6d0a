/* image.c: PNG/JPEG decoding (stb_image, compiled here as static functions so that it is
 * instrumented with the rest of the library and cannot clash with libstb), label-id
 * decoding (channel 0, 16-bit, palette indices), and a PNG encoder (8/16-bit, palette).
 *
 * Every PNG is walked chunk by chunk before stb sees it: signature, chunk bounds, CRCs,
 * IHDR first, known critical chunks only, IEND present. So truncated and corrupt files
 * get a precise message, and stb never reaches its non-thread-safe unknown-chunk path. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

/* stb's static declarations of functions it then leaves undefined are reported at the end
 * of the file, so this one stays off for the whole file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS (1 << 16)
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

#define MAX_PIXELS ((uint64_t)1 << 28)

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

struct crc_table {
    uint32_t t[256];
};

static void crc_table_init(struct crc_table *ct)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        ct->t[n] = c;
    }
}

static uint32_t crc32_png(const struct crc_table *ct, const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = ct->t[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

struct png_scan {
    uint32_t w, h;
    int      depth, color;
    size_t   ihdr_at;     /* offset of the IHDR data */
    size_t   trns_at[4];  /* offsets of tRNS chunk types */
    int      ntrns;
};

static bool is_png(const uint8_t *b, size_t n)
{
    return n >= 8 && !memcmp(b, png_sig, 8);
}

static bool is_jpeg(const uint8_t *b, size_t n)
{
    return n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff;
}

static void chunk_name(const uint8_t *t, char out[5])
{
    for (int i = 0; i < 4; i++)
        out[i] = (t[i] >= 32 && t[i] < 127) ? (char)t[i] : '?';
    out[4] = '\0';
}

static enum seg_status png_walk(const uint8_t *b, size_t n, const char *name, struct png_scan *s)
{
    memset(s, 0, sizeof *s);
    if (!is_png(b, n))
        return seg_error(SEG_STATUS_FORMAT, "%s: not a PNG file (bad signature)", name);
    struct crc_table ct;
    crc_table_init(&ct);
    size_t pos = 8;
    bool first = true, plte = false, idat = false;
    for (;;) {
        if (pos + 8 > n)
            return seg_error(SEG_STATUS_FORMAT,
                             "%s: truncated PNG (file ends at byte %zu before the IEND chunk)",
                             name, n);
        uint32_t len = be32(b + pos);
        const uint8_t *type = b + pos + 4;
        char tn[5];
        chunk_name(type, tn);
        for (int i = 0; i < 4; i++)
            if (!((type[i] >= 'A' && type[i] <= 'Z') || (type[i] >= 'a' && type[i] <= 'z')))
                return seg_error(SEG_STATUS_FORMAT, "%s: corrupt PNG (bad chunk type '%s' at byte %zu)",
                                 name, tn, pos);
        if (len > 0x7fffffffu)
            return seg_error(SEG_STATUS_FORMAT, "%s: corrupt PNG (chunk %s length %u)", name, tn, len);
        if ((uint64_t)pos + 12 + len > n)
            return seg_error(SEG_STATUS_FORMAT,
                             "%s: truncated PNG (chunk %s at byte %zu needs %u bytes, file has %zu)",
                             name, tn, pos, len + 12, n);
        uint32_t crc = be32(b + pos + 8 + len);
        if (crc32_png(&ct, type, (size_t)len + 4) != crc)
            return seg_error(SEG_STATUS_FORMAT, "%s: corrupt PNG (CRC mismatch in chunk %s at byte %zu)",
                             name, tn, pos);
        const uint8_t *d = b + pos + 8;
        if (first) {
            if (memcmp(type, "IHDR", 4) || len != 13)
                return seg_error(SEG_STATUS_FORMAT, "%s: corrupt PNG (first chunk is %s, not IHDR)",
                                 name, tn);
            s->w = be32(d);
            s->h = be32(d + 4);
            s->depth = d[8];
            s->color = d[9];
            s->ihdr_at = pos + 8;
            if (!s->w || !s->h || (uint64_t)s->w * s->h > MAX_PIXELS || s->w > (1u << 16) ||
                s->h > (1u << 16))
                return seg_error(SEG_STATUS_FORMAT, "%s: unsupported PNG size %ux%u", name, s->w, s->h);
            first = false;
        } else if (!memcmp(type, "IHDR", 4)) {
            return seg_error(SEG_STATUS_FORMAT, "%s: corrupt PNG (second IHDR)", name);
        } else if (!memcmp(type, "PLTE", 4)) {
            plte = true;
        } else if (!memcmp(type, "IDAT", 4)) {
            idat = true;
        } else if (!memcmp(type, "IEND", 4)) {
            break;
        } else if (!memcmp(type, "tRNS", 4)) {
            if (s->ntrns < 4)
                s->trns_at[s->ntrns++] = pos + 4;
        } else if (!(type[0] & 0x20)) {
            return seg_error(SEG_STATUS_FORMAT, "%s: unsupported PNG (unknown critical chunk %s)",
                             name, tn);
        }
        pos += 12 + (size_t)len;
    }
    if (!idat)
        return seg_error(SEG_STATUS_FORMAT, "%s: corrupt PNG (no IDAT image data)", name);
    if (s->color == 3 && !plte)
        return seg_error(SEG_STATUS_FORMAT, "%s: corrupt PNG (palette image without PLTE)", name);
    return SEG_STATUS_OK;
}

/* Walks the JPEG markers: every segment inside the file, Huffman tables that stb 2.27 would
 * copy past its 256-entry arrays (more than 256 codes) refused, an end-of-image marker. */
static enum seg_status check_jpeg(const uint8_t *b, size_t n, const char *name)
{
    size_t pos = 2;
    for (;;) {
        if (pos + 2 > n)
            return seg_error(SEG_STATUS_FORMAT, "%s: truncated JPEG (no end-of-image marker)", name);
        if (b[pos] != 0xff)
            return seg_error(SEG_STATUS_FORMAT, "%s: corrupt JPEG (no marker at byte %zu)", name, pos);
        uint8_t m = b[pos + 1];
        if (m == 0xff) { /* fill byte */
            pos++;
            continue;
        }
        pos += 2;
        if (m == 0xd9)
            return SEG_STATUS_OK;
        if ((m >= 0xd0 && m <= 0xd7) || m == 0x01)
            continue;
        if (pos + 2 > n)
            return seg_error(SEG_STATUS_FORMAT, "%s: truncated JPEG (marker 0x%02x at byte %zu)", name, m, pos - 2);
        size_t len = (size_t)b[pos] << 8 | b[pos + 1];
        if (len < 2 || pos + len > n)
            return seg_error(SEG_STATUS_FORMAT, "%s: truncated JPEG (segment 0x%02x at byte %zu needs %zu bytes, file has %zu)",
                             name, m, pos - 2, len, n);
        if (m == 0xc4) { /* DHT */
            size_t q = pos + 2, end = pos + len;
            while (q < end) {
                if (q + 17 > end)
                    return seg_error(SEG_STATUS_FORMAT, "%s: corrupt JPEG (short Huffman table at byte %zu)", name, q);
                size_t codes = 0;
                for (int i = 1; i <= 16; i++)
                    codes += b[q + i];
                if (codes > 256 || q + 17 + codes > end)
                    return seg_error(SEG_STATUS_FORMAT, "%s: corrupt JPEG (Huffman table of %zu codes at byte %zu)",
                                     name, codes, q);
                q += 17 + codes;
            }
        }
        pos += len;
        if (m == 0xda) { /* entropy-coded data up to the next marker */
            while (pos + 1 < n && !(b[pos] == 0xff && b[pos + 1] != 0 &&
                                    !(b[pos + 1] >= 0xd0 && b[pos + 1] <= 0xd7)))
                pos++;
        }
    }
}

static enum seg_status stb_fail(const char *name)
{
    const char *why = stbi_failure_reason();
    if (why && !strcmp(why, "outofmem"))
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory while decoding", name);
    return seg_error(SEG_STATUS_FORMAT, "%s: corrupt image data (%s)", name, why ? why : "unknown");
}

enum seg_status seg_image_alloc(struct seg_image *im, int w, int h, int c)
{
    im->w = im->h = im->c = 0;
    im->data = NULL;
    if (w <= 0 || h <= 0 || c <= 0 || (uint64_t)w * h > MAX_PIXELS)
        return seg_error(SEG_STATUS_INVALID, "image: bad size %dx%dx%d", w, h, c);
    im->data = malloc((size_t)w * h * c);
    if (!im->data)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "image: out of host memory (%dx%dx%d)", w, h, c);
    im->w = w;
    im->h = h;
    im->c = c;
    return SEG_STATUS_OK;
}

void seg_image_free(struct seg_image *im)
{
    if (!im)
        return;
    free(im->data);
    im->data = NULL;
    im->w = im->h = im->c = 0;
}

enum seg_status seg_image_decode(const void *buf, size_t size, const char *name,
                                 struct seg_image *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *b = buf;
    if (size > INT_MAX)
        return seg_error(SEG_STATUS_FORMAT, "%s: file too large to decode", name);
    enum seg_status st;
    if (is_png(b, size)) {
        struct png_scan s;
        if ((st = png_walk(b, size, name, &s)) != SEG_STATUS_OK)
            return st;
    } else if (is_jpeg(b, size)) {
        if ((st = check_jpeg(b, size, name)) != SEG_STATUS_OK)
            return st;
        int w, h, c;
        if (!stbi_info_from_memory(b, (int)size, &w, &h, &c))
            return stb_fail(name);
        if ((uint64_t)w * h > MAX_PIXELS)
            return seg_error(SEG_STATUS_FORMAT, "%s: unsupported JPEG size %dx%d", name, w, h);
    } else {
        return seg_error(SEG_STATUS_FORMAT, "%s: not a PNG or JPEG file (%zu bytes)", name, size);
    }
    int w = 0, h = 0, c = 0;
    uint8_t *px = stbi_load_from_memory(b, (int)size, &w, &h, &c, 3);
    if (!px)
        return stb_fail(name);
    out->w = w;
    out->h = h;
    out->c = 3;
    out->data = px;
    return SEG_STATUS_OK;
}

enum seg_status seg_image_load(const char *path, struct seg_image *out)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t n;
    enum seg_status st = seg_file_read(path, 0, &buf, &n);
    if (st != SEG_STATUS_OK)
        return st;
    st = seg_image_decode(buf, n, path, out);
    free(buf);
    return st;
}

/* ---- label ids ---- */

void seg_ids_free(struct seg_ids *ids)
{
    if (!ids)
        return;
    free(ids->data);
    ids->data = NULL;
    ids->w = ids->h = 0;
}

enum seg_status seg_ids_decode(const void *buf, size_t size, const char *name,
                               struct seg_ids *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *b = buf;
    if (size > INT_MAX)
        return seg_error(SEG_STATUS_FORMAT, "%s: file too large to decode", name);
    if (!is_png(b, size))
        return seg_error(SEG_STATUS_FORMAT, "%s: label files must be PNG (bad signature)", name);
    struct png_scan s;
    enum seg_status st = png_walk(b, size, name, &s);
    if (st != SEG_STATUS_OK)
        return st;
    size_t npx = (size_t)s.w * s.h;
    uint16_t *ids = malloc(npx * sizeof *ids);
    if (!ids)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", name);
    int w = 0, h = 0, c = 0;
    if (s.color == 3 || (s.color == 0 && s.depth < 8)) {
        /* stb_image always expands palettes to colours. The index plane of a palette PNG
         * is a valid greyscale plane of the same depth, so present it as one: colour type
         * 0, tRNS renamed to an ancillary chunk stb skips. stb scales grey samples below
         * 8 bits to 0..255; the scale is undone below. */
        uint8_t *copy = NULL;
        const uint8_t *src = b;
        if (s.color == 3) {
            copy = malloc(size);
            if (!copy) {
                free(ids);
                return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", name);
            }
            memcpy(copy, b, size);
            copy[s.ihdr_at + 9] = 0;
            for (int i = 0; i < s.ntrns; i++)
                memcpy(copy + s.trns_at[i], "tRNx", 4);
            src = copy;
        }
        uint8_t *px = stbi_load_from_memory(src, (int)size, &w, &h, &c, 0);
        free(copy);
        if (!px) {
            free(ids);
            return stb_fail(name);
        }
        int scale = s.depth == 1 ? 255 : s.depth == 2 ? 0x55 : s.depth == 4 ? 0x11 : 1;
        for (size_t i = 0; i < npx; i++)
            ids[i] = (uint16_t)(px[i * (size_t)c] / scale);
        stbi_image_free(px);
    } else if (s.depth == 16) {
        uint16_t *px = stbi_load_16_from_memory(b, (int)size, &w, &h, &c, 0);
        if (!px) {
            free(ids);
            return stb_fail(name);
        }
        for (size_t i = 0; i < npx; i++)
            ids[i] = px[i * (size_t)c];
        stbi_image_free(px);
    } else {
        uint8_t *px = stbi_load_from_memory(b, (int)size, &w, &h, &c, 0);
        if (!px) {
            free(ids);
            return stb_fail(name);
        }
        for (size_t i = 0; i < npx; i++)
            ids[i] = px[i * (size_t)c];
        stbi_image_free(px);
    }
    if ((uint32_t)w != s.w || (uint32_t)h != s.h) { /* cannot happen; keeps the copy honest */
        free(ids);
        return seg_error(SEG_STATUS_FORMAT, "%s: decoded size %dx%d differs from IHDR %ux%u", name,
                         w, h, s.w, s.h);
    }
    out->w = w;
    out->h = h;
    out->depth = s.depth;
    out->palette = s.color == 3;
    out->channels = s.color == 3 ? 1 : (s.color & 2 ? 3 : 1) + (s.color & 4 ? 1 : 0);
    out->data = ids;
    return SEG_STATUS_OK;
}

enum seg_status seg_ids_load(const char *path, struct seg_ids *out)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t n;
    enum seg_status st = seg_file_read(path, 0, &buf, &n);
    if (st != SEG_STATUS_OK)
        return st;
    st = seg_ids_decode(buf, n, path, out);
    free(buf);
    return st;
}

/* ---- PNG encoder ---- */

static int paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return (pa <= pb && pa <= pc) ? a : pb <= pc ? b : c;
}

/* Filters row cur (prev = NULL for the first) with filter f into out. */
static void png_filter_row(int f, const uint8_t *cur, const uint8_t *prev, size_t n, int bpp,
                           uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int a = i >= (size_t)bpp ? cur[i - bpp] : 0;
        int b = prev ? prev[i] : 0;
        int c = (prev && i >= (size_t)bpp) ? prev[i - bpp] : 0;
        int x = cur[i];
        switch (f) {
        case 0: out[i] = (uint8_t)x; break;
        case 1: out[i] = (uint8_t)(x - a); break;
        case 2: out[i] = (uint8_t)(x - b); break;
        case 3: out[i] = (uint8_t)(x - ((a + b) >> 1)); break;
        default: out[i] = (uint8_t)(x - paeth(a, b, c)); break;
        }
    }
}

static uint8_t *put_chunk(uint8_t *p, const struct crc_table *ct, const char *type,
                          const uint8_t *data, uint32_t len)
{
    put_be32(p, len);
    memcpy(p + 4, type, 4);
    if (len)
        memcpy(p + 8, data, len);
    put_be32(p + 8 + len, crc32_png(ct, p + 4, (size_t)len + 4));
    return p + 12 + len;
}

enum seg_status seg_png_encode(const void *pixels, int w, int h, int c, int depth,
                               const uint8_t *palette, int npalette, uint8_t **out,
                               size_t *size)
{
    *out = NULL;
    *size = 0;
    if (w <= 0 || h <= 0 || (uint64_t)w * h > MAX_PIXELS || c < 1 || c > 4 ||
        (depth != 8 && depth != 16))
        return seg_error(SEG_STATUS_INVALID, "png: cannot encode %dx%d, %d channels, %d bits", w, h,
                         c, depth);
    if (palette && (c != 1 || depth != 8 || npalette < 1 || npalette > 256))
        return seg_error(SEG_STATUS_INVALID, "png: a palette needs 1 channel, 8 bits, 1..256 entries");
    int bpp = c * depth / 8;
    size_t stride = (size_t)w * bpp, raw_len = (stride + 1) * (size_t)h;
    if (raw_len > INT_MAX / 2)
        return seg_error(SEG_STATUS_INVALID, "png: image too large to encode");
    uint8_t *rows = malloc(stride * 2), *raw = malloc(raw_len), *trial = malloc(stride);
    if (!rows || !raw || !trial) {
        free(rows), free(raw), free(trial);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "png: out of host memory");
    }
    uint8_t *cur = rows, *prev = rows + stride;
    bool have_prev = false;
    for (int y = 0; y < h; y++) {
        if (depth == 8) {
            memcpy(cur, (const uint8_t *)pixels + (size_t)y * stride, stride);
        } else {
            const uint16_t *src = (const uint16_t *)pixels + (size_t)y * w * c;
            for (size_t i = 0; i < (size_t)w * c; i++) {
                cur[2 * i] = (uint8_t)(src[i] >> 8);
                cur[2 * i + 1] = (uint8_t)src[i];
            }
        }
        uint8_t *dst = raw + (size_t)y * (stride + 1);
        int best = 0;
        if (!palette) { /* the usual heuristic: least sum of |signed residual| */
            long best_cost = -1;
            for (int f = 0; f < 5; f++) {
                png_filter_row(f, cur, have_prev ? prev : NULL, stride, bpp, trial);
                long cost = 0;
                for (size_t i = 0; i < stride; i++)
                    cost += abs((int)(int8_t)trial[i]);
                if (best_cost < 0 || cost < best_cost) {
                    best_cost = cost;
                    best = f;
                }
            }
        }
        dst[0] = (uint8_t)best;
        png_filter_row(best, cur, have_prev ? prev : NULL, stride, bpp, dst + 1);
        uint8_t *t = prev;
        prev = cur;
        cur = t;
        have_prev = true;
    }
    free(rows);
    free(trial);
    int zlen = 0;
    uint8_t *z = stbi_zlib_compress(raw, (int)raw_len, &zlen, 8);
    free(raw);
    if (!z)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "png: out of host memory (deflate)");
    size_t total = 8 + 25 + (palette ? 12 + 3 * (size_t)npalette : 0) + 12 + (size_t)zlen + 12;
    uint8_t *png = malloc(total);
    if (!png) {
        free(z);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "png: out of host memory");
    }
    struct crc_table ct;
    crc_table_init(&ct);
    memcpy(png, png_sig, 8);
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = palette ? 3 : c == 1 ? 0 : c == 2 ? 4 : c == 3 ? 2 : 6;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    uint8_t *p = put_chunk(png + 8, &ct, "IHDR", ihdr, 13);
    if (palette)
        p = put_chunk(p, &ct, "PLTE", palette, (uint32_t)(3 * npalette));
    p = put_chunk(p, &ct, "IDAT", z, (uint32_t)zlen);
    p = put_chunk(p, &ct, "IEND", NULL, 0);
    free(z);
    *out = png;
    *size = (size_t)(p - png);
    return SEG_STATUS_OK;
}

enum seg_status seg_png_write(const char *path, const void *pixels, int w, int h, int c,
                              int depth, const uint8_t *palette, int npalette)
{
    uint8_t *png;
    size_t n;
    enum seg_status st = seg_png_encode(pixels, w, h, c, depth, palette, npalette, &png, &n);
    if (st != SEG_STATUS_OK)
        return seg_error(st, "%s: %s", path, seg_last_error());
    st = seg_file_write_atomic(path, png, n);
    free(png);
    return st;
}
