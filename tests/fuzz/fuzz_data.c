/* fuzz_data.c: mutates valid PNG (RGB, grey, palette, 16-bit multi-channel) and JPEG bytes
 * with a seeded RNG (bit flips, byte changes, truncation, insertions, chunk lengths, IHDR
 * fields; half of the time the chunk CRCs are fixed up so the damage reaches the decoder)
 * and checks that decoding images and label ids, and mapping ids, only ever succeed with a
 * sane result or return an error, never crash (run under ASan in CI). List files are
 * mutated too and opened as datasets. Bounded by iterations and seconds.
 * usage: fuzz_data [ITERATIONS] [SEED] [SECONDS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "data/data.h"

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rewrites the CRC of every chunk that fits in the buffer. */
static void fix_crcs(uint8_t *b, size_t n)
{
    size_t pos = 8;
    while (pos + 12 <= n) {
        uint32_t len = be32(b + pos);
        if (len > n || pos + 12 + len > n)
            break;
        uint32_t c = crc32_png(b + pos + 4, (size_t)len + 4);
        b[pos + 8 + len] = (uint8_t)(c >> 24);
        b[pos + 9 + len] = (uint8_t)(c >> 16);
        b[pos + 10 + len] = (uint8_t)(c >> 8);
        b[pos + 11 + len] = (uint8_t)c;
        pos += 12 + len;
    }
}

struct seed {
    uint8_t *data;
    size_t   size;
    bool     png;
};

static int add_png(struct seed *s, const void *px, int w, int h, int c, int depth, const uint8_t *pal, int np)
{
    s->png = true;
    if (seg_png_encode(px, w, h, c, depth, pal, np, &s->data, &s->size) != SEG_STATUS_OK) {
        fprintf(stderr, "fuzz_data: %s\n", seg_last_error());
        return 1;
    }
    return 0;
}

static void touch(const void *p, size_t n, volatile unsigned *sink)
{
    const uint8_t *b = p;
    unsigned s = 0;
    for (size_t i = 0; i < n; i++)
        s += b[i];
    *sink += s;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    uint32_t rs = argc > 2 ? (uint32_t)atol(argv[2]) | 1u : 12345u;
    double seconds = argc > 3 ? atof(argv[3]) : 15.0;
    int w = 23, h = 11;
    uint8_t rgb[23 * 11 * 3], ids8[23 * 11], pal[256 * 3];
    uint16_t px16[23 * 11 * 4];
    for (int i = 0; i < w * h; i++) {
        rgb[3 * i] = (uint8_t)(i * 7);
        rgb[3 * i + 1] = (uint8_t)(i * 13);
        rgb[3 * i + 2] = (uint8_t)(i / 3);
        ids8[i] = (uint8_t)(i % 34);
        for (int k = 0; k < 4; k++)
            px16[4 * i + k] = (uint16_t)(k == 0 ? i % 23 : 1000 * k + i);
    }
    seg_labels_cityscapes_id_palette(pal);
    struct seed seeds[6] = {{0}};
    int bad = add_png(&seeds[0], rgb, w, h, 3, 8, NULL, 0) | add_png(&seeds[1], ids8, w, h, 1, 8, pal, 256) |
              add_png(&seeds[2], px16, w, h, 4, 16, NULL, 0) | add_png(&seeds[3], ids8, w, h, 1, 8, NULL, 0) |
              add_png(&seeds[4], px16, w, h, 2, 16, NULL, 0);
    char tmp[512];
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/fuzz_data.%ld.jpg", td && td[0] ? td : "/tmp", (long)getpid());
    if (bad || seg_jpeg_write(tmp, rgb, w, h, 3, 80) != SEG_STATUS_OK ||
        seg_file_read(tmp, 0, &seeds[5].data, &seeds[5].size) != SEG_STATUS_OK) {
        fprintf(stderr, "fuzz_data: cannot build the seeds: %s\n", seg_last_error());
        return 1;
    }
    remove(tmp);
    struct seg_labelmap *maps = malloc(2 * sizeof *maps);
    seg_labelmap_init(&maps[0], SEG_DATASET_GTA5, 19);
    seg_labelmap_init(&maps[1], SEG_DATASET_SYNTHIA, 16);
    uint8_t *labels = malloc((size_t)1 << 20);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long it, ok_img = 0, ok_ids = 0, lists = 0;
    volatile unsigned sink = 0;
    for (it = 0; it < iters; it++) {
        if ((it & 255) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec) > seconds)
                break;
        }
        const struct seed *sd = &seeds[next(&rs) % 6];
        size_t size = sd->size, cap = sd->size + 64;
        uint8_t *b = malloc(cap);
        memcpy(b, sd->data, size);
        int nmut = 1 + (int)(next(&rs) % 4);
        for (int m = 0; m < nmut; m++) {
            switch (next(&rs) % 7) {
            case 0: b[next(&rs) % size] ^= (uint8_t)(1u << (next(&rs) % 8)); break;
            case 1: b[next(&rs) % size] = (uint8_t)next(&rs); break;
            case 2: size = next(&rs) % size + 1; break; /* truncate */
            case 3: /* IHDR fields: width, height, depth, colour type, interlace */
                if (sd->png && size > 29) {
                    static const int at[] = {16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 28};
                    b[at[next(&rs) % 11]] = (uint8_t)(next(&rs) % 3 ? next(&rs) % 17 : next(&rs));
                }
                break;
            case 4: /* a chunk length */
                if (sd->png && size > 40) {
                    size_t at = 33 + next(&rs) % (size - 40);
                    b[at] = (uint8_t)next(&rs);
                }
                break;
            case 5: /* insert bytes */
                if (size + 8 <= cap) {
                    size_t at = next(&rs) % size;
                    memmove(b + at + 8, b + at, size - at);
                    for (int k = 0; k < 8; k++)
                        b[at + k] = (uint8_t)next(&rs);
                    size += 8;
                }
                break;
            default: /* delete bytes */
                if (size > 16) {
                    size_t at = next(&rs) % (size - 8);
                    memmove(b + at, b + at + 8, size - at - 8);
                    size -= 8;
                }
                break;
            }
        }
        if (sd->png && (next(&rs) & 1))
            fix_crcs(b, size);
        uint8_t *copy = malloc(size); /* exact size so ASan sees any overread */
        memcpy(copy, b, size);
        free(b);
        struct seg_image im;
        if (seg_image_decode(copy, size, "fuzz", &im) == SEG_STATUS_OK) {
            if (im.w <= 0 || im.h <= 0 || im.c != 3 || !im.data) {
                fprintf(stderr, "fuzz_data: iteration %ld: bad image %dx%dx%d\n", it, im.w, im.h, im.c);
                return 1;
            }
            touch(im.data, (size_t)im.w * im.h * 3, &sink);
            seg_image_free(&im);
            ok_img++;
        }
        struct seg_ids ids;
        if (seg_ids_decode(copy, size, "fuzz", &ids) == SEG_STATUS_OK) {
            if (ids.w <= 0 || ids.h <= 0 || !ids.data) {
                fprintf(stderr, "fuzz_data: iteration %ld: bad ids %dx%d\n", it, ids.w, ids.h);
                return 1;
            }
            if ((size_t)ids.w * ids.h <= ((size_t)1 << 20))
                for (int k = 0; k < 2; k++) {
                    enum seg_status st = seg_labelmap_apply(&maps[k], &ids, "fuzz", labels);
                    if (st != SEG_STATUS_OK && st != SEG_STATUS_FORMAT) {
                        fprintf(stderr, "fuzz_data: iteration %ld: labelmap status %d\n", it, st);
                        return 1;
                    }
                }
            seg_ids_free(&ids);
            ok_ids++;
        }
        free(copy);
        /* every 64th iteration: a mutated list file opened as a dataset */
        if ((it & 63) == 0) {
            char list[256];
            int n = snprintf(list, sizeof list, "00000.png\nimages/00001.png labels/00001.png\n\t x \r\n");
            for (int m = 0; m < 3; m++)
                list[next(&rs) % (unsigned)n] = (uint8_t)next(&rs);
            snprintf(tmp, sizeof tmp, "%s/fuzz_data.%ld.txt", td && td[0] ? td : "/tmp", (long)getpid());
            FILE *f = fopen(tmp, "wb");
            if (f) {
                fwrite(list, 1, (size_t)n, f);
                fclose(f);
                struct seg_dataset_opts o = {.kind = (enum seg_dataset_kind)(next(&rs) % 4), .root = ".",
                                             .split = "val", .city = "Rome", .list = tmp,
                                             .num_classes = 19, .labels = false};
                struct seg_dataset *ds;
                if (seg_dataset_open(&o, &ds) == SEG_STATUS_OK)
                    seg_dataset_close(ds);
                remove(tmp);
                lists++;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("fuzz_data: %ld iterations (%.1f s): %ld images and %ld label maps decoded, %ld lists, "
           "the rest rejected (checksum %u)\n",
           it, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), ok_img, ok_ids,
           lists, (unsigned)sink);
    for (int i = 0; i < 6; i++)
        free(seeds[i].data);
    free(maps);
    free(labels);
    return 0;
}
