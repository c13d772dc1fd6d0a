/* test_data.c: the data layer on small fixtures written here in each dataset's real layout
 * (GTA5 palette labels, SYNTHIA 16-bit multi-channel labels, Cityscapes, Cross-City JPEGs):
 * label maps, bad-input errors, augmentation, loader determinism across thread counts,
 * metrics against hand-computed values, colorized outputs, and the synthetic benchmark
 * (byte-identical per seed, readable by the GTA5 and Cityscapes loaders). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "data/data.h"

static char root[512]; /* a fresh temporary folder per run */

static char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *P(const char *fmt, ...)
{
    static _Thread_local char buf[4][1600];
    static _Thread_local int k;
    char rel[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

static void mkdirs(const char *path)
{
    assert_int_equal(seg_dir_create(path), SEG_STATUS_OK);
}

static void write_text(const char *path, const char *text)
{
    assert_int_equal(seg_file_write_atomic(path, text, strlen(text)), SEG_STATUS_OK);
}

/* A w x h RGB image whose pixels encode (x, y, seed). */
static uint8_t *make_rgb(int w, int h, int seed)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + 3 * ((size_t)y * w + x);
            q[0] = (uint8_t)(x * 7 + seed * 31);
            q[1] = (uint8_t)(y * 11 + seed * 17);
            q[2] = (uint8_t)(x * y + seed);
        }
    return p;
}

static void expect_error(enum seg_status st, enum seg_status want, const char *needle)
{
    if (st != want)
        print_error("status %d, want %d: '%s'\n", st, want, seg_last_error());
    assert_int_equal(st, want);
    if (!strstr(seg_last_error(), needle)) {
        print_error("error '%s' does not contain '%s'\n", seg_last_error(), needle);
        fail();
    }
}

/* ---- images ---- */

static void test_png_roundtrip(void **state)
{
    (void)state;
    int w = 13, h = 7;
    uint8_t *rgb = make_rgb(w, h, 1);
    uint8_t *png;
    size_t n;
    assert_int_equal(seg_png_encode(rgb, w, h, 3, 8, NULL, 0, &png, &n), SEG_STATUS_OK);
    struct seg_image im;
    assert_int_equal(seg_image_decode(png, n, "rt.png", &im), SEG_STATUS_OK);
    assert_int_equal(im.w, w);
    assert_int_equal(im.h, h);
    assert_memory_equal(im.data, rgb, (size_t)w * h * 3);
    seg_image_free(&im);
    free(png);

    /* palette: ids come back as indices, not colours */
    uint8_t ids8[13 * 7], pal[256 * 3];
    for (int i = 0; i < w * h; i++)
        ids8[i] = (uint8_t)(i % 34);
    seg_labels_cityscapes_id_palette(pal);
    assert_int_equal(seg_png_encode(ids8, w, h, 1, 8, pal, 256, &png, &n), SEG_STATUS_OK);
    struct seg_ids ids;
    assert_int_equal(seg_ids_decode(png, n, "pal.png", &ids), SEG_STATUS_OK);
    assert_true(ids.palette);
    for (int i = 0; i < w * h; i++)
        assert_int_equal(ids.data[i], ids8[i]);
    seg_ids_free(&ids);
    /* ... while the image decoder gives the palette colours */
    assert_int_equal(seg_image_decode(png, n, "pal.png", &im), SEG_STATUS_OK);
    assert_memory_equal(im.data + 3 * 7, pal + 3 * 7, 3);
    seg_image_free(&im);
    free(png);

    /* 16-bit RGBA: channel 0 */
    uint16_t *px16 = malloc((size_t)w * h * 4 * sizeof *px16);
    for (int i = 0; i < w * h; i++) {
        px16[4 * i] = (uint16_t)(i % 23);
        px16[4 * i + 1] = (uint16_t)(1000 + i * 300);
        px16[4 * i + 2] = 7;
        px16[4 * i + 3] = 65535;
    }
    assert_int_equal(seg_png_encode(px16, w, h, 4, 16, NULL, 0, &png, &n), SEG_STATUS_OK);
    assert_int_equal(seg_ids_decode(png, n, "syn.png", &ids), SEG_STATUS_OK);
    assert_int_equal(ids.depth, 16);
    assert_int_equal(ids.channels, 4);
    for (int i = 0; i < w * h; i++)
        assert_int_equal(ids.data[i], i % 23);
    seg_ids_free(&ids);
    free(png);
    free(px16);
    free(rgb);
}

static void test_image_errors(void **state)
{
    (void)state;
    int w = 16, h = 8;
    uint8_t *rgb = make_rgb(w, h, 2), *png;
    size_t n;
    assert_int_equal(seg_png_encode(rgb, w, h, 3, 8, NULL, 0, &png, &n), SEG_STATUS_OK);
    struct seg_image im;
    expect_error(seg_image_decode(png, n - 20, "cut.png", &im), SEG_STATUS_FORMAT, "cut.png: truncated");
    expect_error(seg_image_decode(png, 30, "cut.png", &im), SEG_STATUS_FORMAT, "truncated");
    png[46] ^= 0x55; /* inside IDAT's data: the CRC no longer matches */
    expect_error(seg_image_decode(png, n, "bad.png", &im), SEG_STATUS_FORMAT, "CRC");
    expect_error(seg_image_decode("hello world", 11, "x.txt", &im), SEG_STATUS_FORMAT, "not a PNG or JPEG");
    expect_error(seg_image_load(P("does-not-exist.png"), &im), SEG_STATUS_IO, "does-not-exist.png");
    /* a truncated file on disk */
    assert_int_equal(seg_file_write_atomic(P("trunc.png"), png, n / 2), SEG_STATUS_OK);
    expect_error(seg_image_load(P("trunc.png"), &im), SEG_STATUS_FORMAT, "trunc.png: truncated");
    /* JPEG: encoded, decoded approximately, then cut */
    assert_int_equal(seg_jpeg_write(P("a.jpg"), rgb, w, h, 3, 95), SEG_STATUS_OK);
    assert_int_equal(seg_image_load(P("a.jpg"), &im), SEG_STATUS_OK);
    assert_int_equal(im.w, w);
    seg_image_free(&im);
    uint8_t *jpg;
    size_t jn;
    assert_int_equal(seg_file_read(P("a.jpg"), 0, &jpg, &jn), SEG_STATUS_OK);
    expect_error(seg_image_decode(jpg, jn - 40, "cut.jpg", &im), SEG_STATUS_FORMAT, "truncated JPEG");
    free(jpg);
    free(png);
    free(rgb);
}

/* ---- fixtures in the real layouts ---- */

/* GTA5: ids at pixel i = ids_cycle[(i + k) % n] */
static const uint8_t gta_ids[] = {7, 8, 11, 26, 24, 23, 0, 255, 21, 17, 33, 3};

static void write_gta5(const char *dir, int count, int w, int h)
{
    uint8_t pal[256 * 3];
    seg_labels_cityscapes_id_palette(pal);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/images", dir);
    mkdirs(sub);
    snprintf(sub, sizeof sub, "%s/labels", dir);
    mkdirs(sub);
    uint8_t *ids = malloc((size_t)w * h);
    for (int k = 0; k < count; k++) {
        uint8_t *rgb = make_rgb(w, h, k);
        for (int i = 0; i < w * h; i++)
            ids[i] = gta_ids[(i + k) % sizeof gta_ids];
        char path[700];
        snprintf(path, sizeof path, "%s/images/%05d.png", dir, k);
        assert_int_equal(seg_png_write(path, rgb, w, h, 3, 8, NULL, 0), SEG_STATUS_OK);
        snprintf(path, sizeof path, "%s/labels/%05d.png", dir, k);
        assert_int_equal(seg_png_write(path, ids, w, h, 1, 8, pal, 256), SEG_STATUS_OK);
        free(rgb);
    }
    free(ids);
}

/* Cityscapes labelId -> trainId, written out independently of the library's table */
static int gta_train(int id)
{
    static const int t[34] = {255, 255, 255, 255, 255, 255, 255, 0,  1,  255, 255, 2,
                              3,   4,   255, 255, 255, 5,   255, 6,   7,  8,  9,   10,
                              11,  12,  13,  14,  15,  255, 255, 16,  17, 18};
    return id >= 0 && id < 34 ? t[id] : SEG_IGNORE;
}

static struct seg_dataset *open_ds(enum seg_dataset_kind kind, const char *r, const char *split,
                                   const char *city, const char *list, int k, bool labels)
{
    struct seg_dataset_opts o = {.kind = kind, .root = r, .split = split, .city = city, .list = list,
                                 .num_classes = k, .labels = labels};
    struct seg_dataset *ds = NULL;
    if (seg_dataset_open(&o, &ds) != SEG_STATUS_OK) {
        print_error("open %s: %s\n", r, seg_last_error());
        fail();
    }
    return ds;
}

static void test_gta5(void **state)
{
    (void)state;
    int w = 20, h = 10;
    write_gta5(P("gta"), 3, w, h);
    struct seg_dataset *ds = open_ds(SEG_DATASET_GTA5, P("gta"), NULL, NULL, NULL, 19, true);
    assert_int_equal(ds->n, 3);
    assert_string_equal(ds->names[2], "00002");
    struct seg_image im, lb;
    assert_int_equal(seg_dataset_load(ds, 1, &im, &lb), SEG_STATUS_OK);
    assert_int_equal(lb.w, w);
    uint8_t *want = make_rgb(w, h, 1);
    assert_memory_equal(im.data, want, (size_t)w * h * 3);
    free(want);
    for (int i = 0; i < w * h; i++)
        assert_int_equal(lb.data[i], gta_train(gta_ids[(i + 1) % sizeof gta_ids]));
    seg_image_free(&im);
    seg_image_free(&lb);
    seg_dataset_close(ds);
    /* the same files in the 13-class space: car 13 -> 9, wall/fence/pole gone */
    ds = open_ds(SEG_DATASET_GTA5, P("gta"), NULL, NULL, NULL, 13, true);
    assert_int_equal(seg_dataset_load(ds, 0, &im, &lb), SEG_STATUS_OK);
    for (int i = 0; i < w * h; i++) {
        int t = gta_train(gta_ids[i % sizeof gta_ids]);
        assert_int_equal(lb.data[i], t == SEG_IGNORE ? SEG_IGNORE : seg_labels_from19(13, t));
    }
    seg_image_free(&im);
    seg_image_free(&lb);
    seg_dataset_close(ds);
    /* a list file in AdaptSegNet's format, and PLCA's "image label" pairs */
    write_text(P("gta/list1.txt"), "00002.png\n\n00000.png\r\n");
    ds = open_ds(SEG_DATASET_GTA5, P("gta"), NULL, NULL, P("gta/list1.txt"), 19, true);
    assert_int_equal(ds->n, 2);
    assert_string_equal(ds->names[0], "00002");
    seg_dataset_close(ds);
    write_text(P("gta/list2.txt"), "images/00001.png labels/00001.png\n");
    ds = open_ds(SEG_DATASET_GTA5, P("gta"), NULL, NULL, P("gta/list2.txt"), 19, true);
    assert_int_equal(ds->n, 1);
    assert_string_equal(ds->names[0], "00001");
    seg_dataset_close(ds);
    char abs_list[2048]; /* absolute paths stand alone */
    snprintf(abs_list, sizeof abs_list, "%s/gta/images/00002.png %s/gta/labels/00002.png\n", root, root);
    write_text(P("gta/list3.txt"), abs_list);
    ds = open_ds(SEG_DATASET_GTA5, P("gta"), NULL, NULL, P("gta/list3.txt"), 19, true);
    assert_int_equal(ds->n, 1);
    assert_string_equal(ds->names[0], "00002");
    seg_dataset_close(ds);
}

static void test_synthia(void **state)
{
    (void)state;
    int w = 12, h = 6;
    mkdirs(P("syn/RAND_CITYSCAPES/RGB"));
    mkdirs(P("syn/RAND_CITYSCAPES/GT/LABELS"));
    uint16_t *lab = malloc((size_t)w * h * 3 * sizeof *lab);
    for (int i = 0; i < w * h; i++) {
        lab[3 * i] = (uint16_t)(i % 23);         /* class ids 0..22 */
        lab[3 * i + 1] = (uint16_t)(500 + i);    /* instance ids */
        lab[3 * i + 2] = 0;
    }
    uint8_t *rgb = make_rgb(w, h, 5);
    assert_int_equal(seg_png_write(P("syn/RAND_CITYSCAPES/RGB/0000000.png"), rgb, w, h, 3, 8, NULL, 0), 0);
    assert_int_equal(seg_png_write(P("syn/RAND_CITYSCAPES/GT/LABELS/0000000.png"), lab, w, h, 3, 16, NULL, 0), 0);
    /* SDCA's 16-class table */
    static const int16_t sdca[23] = {255, 9, 2, 0, 1, 4, 8, 5, 12, 7, 10, 15, 14,
                                      255, 255, 6, 255, 11, 255, 13, 255, 3, 255};
    struct seg_dataset *ds = open_ds(SEG_DATASET_SYNTHIA, P("syn"), NULL, NULL, NULL, 16, true);
    struct seg_image im, lb;
    assert_int_equal(seg_dataset_load(ds, 0, &im, &lb), SEG_STATUS_OK);
    for (int i = 0; i < w * h; i++)
        assert_int_equal(lb.data[i], sdca[i % 23]);
    seg_image_free(&im);
    seg_image_free(&lb);
    seg_dataset_close(ds);
    /* the 19-class variant: terrain 16 -> 9, sky 1 -> 10, train 20 -> 16 */
    ds = open_ds(SEG_DATASET_SYNTHIA, P("syn/RAND_CITYSCAPES"), NULL, NULL, NULL, 19, true);
    assert_int_equal(seg_dataset_load(ds, 0, &im, &lb), SEG_STATUS_OK);
    assert_int_equal(lb.data[16], 9);
    assert_int_equal(lb.data[1], 10);
    assert_int_equal(lb.data[20], 16);
    assert_int_equal(lb.data[22], SEG_IGNORE);
    seg_image_free(&im);
    seg_image_free(&lb);
    seg_dataset_close(ds);
    /* class 23 is outside SYNTHIA's ids */
    lab[3 * 5] = 23;
    assert_int_equal(seg_png_write(P("syn/RAND_CITYSCAPES/GT/LABELS/0000000.png"), lab, w, h, 3, 16, NULL, 0), 0);
    ds = open_ds(SEG_DATASET_SYNTHIA, P("syn"), NULL, NULL, NULL, 16, true);
    expect_error(seg_dataset_load(ds, 0, &im, &lb), SEG_STATUS_FORMAT, "label value 23 at pixel (5, 0)");
    seg_dataset_close(ds);
    free(lab);
    free(rgb);
}

static void write_cityscapes(const char *dir, const char *split, const char *city, int count, int w, int h)
{
    char p[800];
    snprintf(p, sizeof p, "%s/leftImg8bit/%s/%s", dir, split, city);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/gtFine/%s/%s", dir, split, city);
    mkdirs(p);
    uint8_t *ids = malloc((size_t)w * h);
    for (int k = 0; k < count; k++) {
        uint8_t *rgb = make_rgb(w, h, k + 40);
        for (int i = 0; i < w * h; i++)
            ids[i] = (uint8_t)((i + k) % 34);
        snprintf(p, sizeof p, "%s/leftImg8bit/%s/%s/%s_%06d_000019_leftImg8bit.png", dir, split, city, city, k);
        assert_int_equal(seg_png_write(p, rgb, w, h, 3, 8, NULL, 0), SEG_STATUS_OK);
        snprintf(p, sizeof p, "%s/gtFine/%s/%s/%s_%06d_000019_gtFine_labelIds.png", dir, split, city, city, k);
        assert_int_equal(seg_png_write(p, ids, w, h, 1, 8, NULL, 0), SEG_STATUS_OK);
        free(rgb);
    }
    free(ids);
}

static void test_cityscapes(void **state)
{
    (void)state;
    write_cityscapes(P("cs"), "val", "munster", 2, 16, 8);
    write_cityscapes(P("cs"), "val", "frankfurt", 2, 16, 8);
    struct seg_dataset *ds = open_ds(SEG_DATASET_CITYSCAPES, P("cs"), "val", NULL, NULL, 19, true);
    assert_int_equal(ds->n, 4);
    assert_string_equal(ds->names[0], "frankfurt/frankfurt_000000_000019"); /* sorted */
    assert_string_equal(ds->names[3], "munster/munster_000001_000019");
    struct seg_image im, lb;
    assert_int_equal(seg_dataset_load(ds, 1, &im, &lb), SEG_STATUS_OK);
    for (int i = 0; i < 16 * 8; i++)
        assert_int_equal(lb.data[i], gta_train((i + 1) % 34));
    assert_int_equal(lb.data[6], 0);   /* id 7 road */
    assert_int_equal(lb.data[11], 3);  /* id 12 wall */
    assert_int_equal(lb.data[30], 16); /* id 31 train */
    assert_int_equal(lb.data[8], SEG_IGNORE); /* id 9 parking */
    seg_image_free(&im);
    seg_image_free(&lb);
    seg_dataset_close(ds);
    /* SYNTHIA-style evaluation space: 16 classes, terrain (id 22) and truck (27) ignored */
    ds = open_ds(SEG_DATASET_CITYSCAPES, P("cs"), "val", NULL, NULL, 16, true);
    assert_int_equal(seg_dataset_load(ds, 0, &im, &lb), SEG_STATUS_OK);
    assert_int_equal(lb.data[22], SEG_IGNORE);
    assert_int_equal(lb.data[27], SEG_IGNORE);
    assert_int_equal(lb.data[23], 9);  /* sky */
    assert_int_equal(lb.data[26], 12); /* car */
    seg_image_free(&im);
    seg_image_free(&lb);
    seg_dataset_close(ds);
    /* AdaptSegNet's list format */
    write_text(P("cs/val.txt"), "munster/munster_000001_000019_leftImg8bit.png\n");
    ds = open_ds(SEG_DATASET_CITYSCAPES, P("cs"), "val", NULL, P("cs/val.txt"), 19, false);
    assert_int_equal(ds->n, 1);
    assert_null(ds->labels);
    assert_string_equal(ds->names[0], "munster/munster_000001_000019");
    seg_dataset_close(ds);
}

static void test_crosscity(void **state)
{
    (void)state;
    int w = 16, h = 8;
    mkdirs(P("nthu/Rome/Images/Test"));
    mkdirs(P("nthu/Rome/Images/Train"));
    mkdirs(P("nthu/Rome/Labels/Test"));
    uint8_t *rgb = make_rgb(w, h, 9), ids[16 * 8];
    for (int i = 0; i < w * h; i++)
        ids[i] = (uint8_t)(i % 34);
    assert_int_equal(seg_jpeg_write(P("nthu/Rome/Images/Test/pano_00002_2_180.jpg"), rgb, w, h, 3, 90), 0);
    assert_int_equal(seg_jpeg_write(P("nthu/Rome/Images/Train/pano_00001_0_0.jpg"), rgb, w, h, 3, 90), 0);
    assert_int_equal(seg_png_write(P("nthu/Rome/Labels/Test/pano_00002_2_180_eval.png"), ids, w, h, 1, 8, NULL, 0), 0);
    struct seg_dataset *ds = open_ds(SEG_DATASET_CROSSCITY, P("nthu"), "test", "Rome", NULL, 13, true);
    assert_int_equal(ds->n, 1);
    assert_string_equal(ds->names[0], "Rome/pano_00002_2_180");
    struct seg_image im, lb;
    assert_int_equal(seg_dataset_load(ds, 0, &im, &lb), SEG_STATUS_OK);
    assert_int_equal(lb.data[7], 0);          /* road */
    assert_int_equal(lb.data[12], SEG_IGNORE); /* wall: not a Cross-City class */
    assert_int_equal(lb.data[19], 3);          /* traffic light */
    assert_int_equal(lb.data[33], 12);         /* bicycle */
    seg_image_free(&im);
    seg_image_free(&lb);
    seg_dataset_close(ds);
    /* MaxSquareLoss lists carry bare ids */
    write_text(P("nthu/train.txt"), "pano_00001_0_0\n");
    ds = open_ds(SEG_DATASET_CROSSCITY, P("nthu"), "train", "Rome", P("nthu/train.txt"), 13, false);
    assert_int_equal(ds->n, 1);
    assert_int_equal(seg_dataset_load(ds, 0, &im, NULL), SEG_STATUS_OK);
    assert_int_equal(im.w, w);
    seg_image_free(&im);
    seg_dataset_close(ds);
    struct seg_dataset_opts o = {.kind = SEG_DATASET_CROSSCITY, .root = P("nthu"), .split = "train",
                                 .city = "Rome", .num_classes = 13, .labels = true};
    expect_error(seg_dataset_open(&o, &ds), SEG_STATUS_INVALID, "no labels");
    free(rgb);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    int w = 20, h = 10;
    write_gta5(P("bad"), 4, w, h);
    /* 1: label of the wrong size */
    uint8_t small[10 * 5] = {7};
    assert_int_equal(seg_png_write(P("bad/labels/00001.png"), small, 10, 5, 1, 8, NULL, 0), 0);
    /* 2: a value outside the map */
    uint8_t *ids = malloc((size_t)w * h);
    memset(ids, 7, (size_t)w * h);
    ids[3 * w + 4] = 40;
    assert_int_equal(seg_png_write(P("bad/labels/00002.png"), ids, w, h, 1, 8, NULL, 0), 0);
    /* 3: a truncated image */
    uint8_t *buf;
    size_t n;
    assert_int_equal(seg_file_read(P("bad/images/00003.png"), 0, &buf, &n), 0);
    assert_int_equal(seg_file_write_atomic(P("bad/images/00003.png"), buf, n - 7), 0);
    free(buf);
    struct seg_dataset *ds = open_ds(SEG_DATASET_GTA5, P("bad"), NULL, NULL, NULL, 19, true);
    struct seg_image im, lb;
    assert_int_equal(seg_dataset_load(ds, 0, &im, &lb), SEG_STATUS_OK);
    seg_image_free(&im);
    seg_image_free(&lb);
    expect_error(seg_dataset_load(ds, 1, &im, &lb), SEG_STATUS_FORMAT, "labels/00001.png: label is 10x5 but its image");
    expect_error(seg_dataset_load(ds, 2, &im, &lb), SEG_STATUS_FORMAT, "labels/00002.png: label value 40 at pixel (4, 3)");
    expect_error(seg_dataset_load(ds, 3, &im, &lb), SEG_STATUS_FORMAT, "images/00003.png: truncated");
    seg_dataset_close(ds);
    /* lists: empty, malformed, naming a missing file */
    char bad_root[1600], list[1600], nowhere[1600];
    snprintf(bad_root, sizeof bad_root, "%s", P("bad"));
    snprintf(nowhere, sizeof nowhere, "%s", P("nowhere"));
    struct seg_dataset_opts o = {.kind = SEG_DATASET_GTA5, .root = bad_root, .num_classes = 19, .labels = true};
    write_text(P("bad/empty.txt"), "\n  \n");
    snprintf(list, sizeof list, "%s", P("bad/empty.txt"));
    o.list = list;
    expect_error(seg_dataset_open(&o, &ds), SEG_STATUS_FORMAT, "empty.txt: list has no entries");
    write_text(P("bad/three.txt"), "a.png b.png c.png\n");
    snprintf(list, sizeof list, "%s", P("bad/three.txt"));
    o.list = list;
    expect_error(seg_dataset_open(&o, &ds), SEG_STATUS_FORMAT, "three.txt: line 1: malformed");
    write_text(P("bad/missing.txt"), "00000.png\n09999.png\n");
    snprintf(list, sizeof list, "%s", P("bad/missing.txt"));
    o.list = list;
    expect_error(seg_dataset_open(&o, &ds), SEG_STATUS_IO, "images/09999.png does not exist");
    o.skip_bad = true;
    assert_int_equal(seg_dataset_open(&o, &ds), SEG_STATUS_OK);
    assert_int_equal(ds->n, 1);
    seg_dataset_close(ds);
    o.list = NULL;
    o.root = nowhere;
    expect_error(seg_dataset_open(&o, &ds), SEG_STATUS_IO, "nowhere");
    struct seg_dataset_opts oc = {.kind = SEG_DATASET_CITYSCAPES, .root = bad_root, .split = "val",
                                  .num_classes = 19, .labels = true};
    expect_error(seg_dataset_open(&oc, &ds), SEG_STATUS_IO, "leftImg8bit/val does not exist");
    /* skip_bad in the loader: bad samples are replaced (by the next good one) and counted */
    o.root = bad_root;
    o.skip_bad = true;
    assert_int_equal(seg_dataset_open(&o, &ds), SEG_STATUS_OK);
    struct seg_loader_opts lo;
    seg_loader_opts_defaults(&lo);
    lo.ds = ds;
    lo.batch = 1;
    lo.workers = 2;
    lo.repeat = false;
    lo.sampling = SEG_SAMPLING_SEQUENTIAL;
    struct seg_loader *l;
    assert_int_equal(seg_loader_create(&lo, &l), SEG_STATUS_OK);
    struct seg_data_batch *b;
    int got = 0;
    while (seg_loader_next(l, &b) == SEG_STATUS_OK && b) {
        assert_int_equal(b->indices[0], 0); /* 1, 2, 3 are bad, 3 wraps around to 0 */
        seg_loader_release(l, b);
        got++;
    }
    assert_int_equal(got, 4);
    assert_int_equal(atomic_load(&ds->skipped), 6);
    seg_loader_destroy(l);
    seg_dataset_close(ds);
    /* without skip_bad the loader fails with the file's message, and keeps failing */
    o.skip_bad = false;
    assert_int_equal(seg_dataset_open(&o, &ds), SEG_STATUS_OK);
    lo.ds = ds;
    assert_int_equal(seg_loader_create(&lo, &l), SEG_STATUS_OK);
    assert_int_equal(seg_loader_next(l, &b), SEG_STATUS_OK);
    seg_loader_release(l, b);
    expect_error(seg_loader_next(l, &b), SEG_STATUS_FORMAT, "00001.png");
    expect_error(seg_loader_next(l, &b), SEG_STATUS_FORMAT, "00001.png");
    seg_loader_destroy(l);
    seg_dataset_close(ds);
    free(ids);
}

/* ---- augmentation ---- */

static void test_augment(void **state)
{
    (void)state;
    struct seg_image lb, out;
    assert_int_equal(seg_image_alloc(&lb, 4, 2, 1), 0);
    for (int i = 0; i < 8; i++)
        lb.data[i] = (uint8_t)i;
    assert_int_equal(seg_image_resize_nearest(&lb, 8, 4, &out), 0); /* each label doubled */
    assert_int_equal(out.data[0], 0);
    assert_int_equal(out.data[1], 0);
    assert_int_equal(out.data[2], 1);
    assert_int_equal(out.data[8 * 3 + 7], 7);
    seg_image_free(&out);
    assert_int_equal(seg_image_resize_nearest(&lb, 2, 1, &out), 0); /* sources (1, 1), (3, 1) */
    assert_int_equal(out.data[0], 5);
    assert_int_equal(out.data[1], 7);
    seg_image_free(&out);
    seg_image_flip(&lb);
    assert_int_equal(lb.data[0], 3);
    assert_int_equal(lb.data[4], 7);
    seg_image_free(&lb);
    /* bilinear of a constant image is that constant; shrinking averages */
    struct seg_image im;
    assert_int_equal(seg_image_alloc(&im, 9, 5, 3), 0);
    memset(im.data, 77, 9 * 5 * 3);
    assert_int_equal(seg_image_resize_bilinear(&im, 4, 3, &out), 0);
    for (int i = 0; i < 4 * 3 * 3; i++)
        assert_int_equal(out.data[i], 77);
    seg_image_free(&out);
    seg_image_free(&im);
    assert_int_equal(seg_image_alloc(&im, 2, 1, 3), 0);
    memset(im.data, 0, 3);
    memset(im.data + 3, 200, 3);
    assert_int_equal(seg_image_resize_bilinear(&im, 1, 1, &out), 0);
    assert_int_equal(out.data[0], 100);
    seg_image_free(&out);
    seg_image_free(&im);
    /* crop beyond the image pads with 0 / 255 */
    struct seg_augment a;
    seg_augment_defaults(&a);
    a.crop_w = 6;
    a.crop_h = 3;
    assert_int_equal(seg_image_alloc(&im, 4, 2, 3), 0);
    memset(im.data, 9, 4 * 2 * 3);
    assert_int_equal(seg_image_alloc(&lb, 4, 2, 1), 0);
    memset(lb.data, 1, 8);
    struct seg_data_rng r;
    seg_data_rng_init(&r, 1, 2, 3);
    assert_int_equal(seg_augment_apply(&a, &r, &im, &lb), 0);
    assert_int_equal(im.w, 6);
    assert_int_equal(lb.h, 3);
    assert_int_equal(im.data[(2 * 6 + 5) * 3], 0);
    assert_int_equal(lb.data[2 * 6 + 5], SEG_IGNORE);
    assert_int_equal(lb.data[0], 1);
    seg_image_free(&im);
    seg_image_free(&lb);
    /* photometric: grayscale equalises channels; invalid settings are refused */
    assert_int_equal(seg_image_alloc(&im, 3, 3, 3), 0);
    for (int i = 0; i < 27; i++)
        im.data[i] = (uint8_t)(i * 9);
    seg_image_grayscale(&im);
    assert_int_equal(im.data[3], im.data[4]);
    assert_int_equal(seg_image_gaussian_blur(&im, 3, 1.0f), 0);
    seg_image_free(&im);
    seg_augment_defaults(&a);
    a.crop_w = 5;
    assert_int_equal(seg_augment_check(&a), SEG_STATUS_INVALID);
    seg_augment_defaults(&a);
    seg_augment_sdca_photometric(&a);
    a.blur_kernel = 4;
    assert_int_equal(seg_augment_check(&a), SEG_STATUS_INVALID);
}

/* SDCA's self-training geometry at 1/16 scale: the file's size (128x64 for 2048x1024)
 * times a factor uniform in [0.5, 1.5), then a 64x32 crop (1024x512), padded 0 / 255 where
 * the scaled image is smaller (the 40x20 case). The draws are replayed here in the order
 * the augmentation documents (factor, crop x, crop y); labels hold their column (then row)
 * so each output label names the source pixel PIL's nearest rule maps it to. */
static void test_augment_scale_range(void **state)
{
    (void)state;
    const int sizes[2][4] = {{128, 64, 64, 32}, {40, 20, 48, 24}}; /* W, H, crop W, crop H */
    for (int c = 0; c < 2; c++) {
        int W = sizes[c][0], H = sizes[c][1], cw = sizes[c][2], ch = sizes[c][3];
        struct seg_augment a;
        seg_augment_defaults(&a);
        a.scale_min = 0.5f;
        a.scale_max = 1.5f;
        a.crop_w = cw;
        a.crop_h = ch;
        assert_int_equal(seg_augment_check(&a), SEG_STATUS_OK);
        int min_nw = 1 << 30, max_nw = 0, padded = 0;
        for (int k = 0; k < 300; k++) {
            struct seg_data_rng r;
            seg_data_rng_init(&r, 7, 0, (uint64_t)k);
            double f = 0.5 + (1.5 - 0.5) * seg_data_rng_uniform(&r);
            int nw = (int)lround(W * f), nh = (int)lround(H * f);
            int x0 = seg_data_rng_int(&r, (nw > cw ? nw : cw) - cw + 1);
            int y0 = seg_data_rng_int(&r, (nh > ch ? nh : ch) - ch + 1);
            min_nw = nw < min_nw ? nw : min_nw;
            max_nw = nw > max_nw ? nw : max_nw;
            padded += nw < cw || nh < ch;
            for (int axis = 0; axis < 2; axis++) {
                struct seg_image im, lb;
                assert_int_equal(seg_image_alloc(&im, W, H, 3), 0);
                assert_int_equal(seg_image_alloc(&lb, W, H, 1), 0);
                memset(im.data, 50, (size_t)W * H * 3);
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                        lb.data[y * W + x] = (uint8_t)(axis ? y : x);
                seg_data_rng_init(&r, 7, 0, (uint64_t)k);
                assert_int_equal(seg_augment_apply(&a, &r, &im, &lb), 0);
                assert_int_equal(im.w, cw);
                assert_int_equal(im.h, ch);
                assert_int_equal(lb.w, cw);
                assert_int_equal(lb.h, ch);
                for (int y = 0; y < ch; y++)
                    for (int x = 0; x < cw; x++) {
                        bool inside = x0 + x < nw && y0 + y < nh;
                        double v = axis ? (y0 + y + 0.5) * H / nh : (x0 + x + 0.5) * W / nw;
                        int want = inside ? (int)floor(v) : SEG_IGNORE, got = lb.data[y * cw + x];
                        if (inside && got == want - 1 && fabs(v - want) < 1e-9)
                            got = want; /* v exactly on a boundary: either rounding of W / nw */
                        assert_int_equal(got, want);
                        assert_int_equal(im.data[(y * cw + x) * 3], inside ? 50 : 0);
                    }
                seg_image_free(&im);
                seg_image_free(&lb);
            }
        }
        /* relative to the file's size: 0.5 W .. 1.5 W, both ends reached within 5 % */
        assert_true(min_nw >= (int)lround(0.5 * W) && min_nw <= (int)lround(0.55 * W));
        assert_true(max_nw <= (int)lround(1.5 * W) && max_nw >= (int)lround(1.45 * W));
        assert_true(c == 0 ? padded == 0 : padded > 0);
    }
    /* a range and a list of scales exclude each other */
    struct seg_augment a;
    seg_augment_defaults(&a);
    a.scale_min = 0.5f;
    a.scale_max = 1.5f;
    a.nscale_choices = 1;
    a.scale_choices[0] = 1.25f;
    assert_int_equal(seg_augment_check(&a), SEG_STATUS_INVALID);
}

/* ---- loader ---- */

static void collect(struct seg_dataset *ds, const struct seg_loader_opts *base, int workers, int nbatches,
                    float **images, int32_t **labels, int **indices)
{
    struct seg_loader_opts o = *base;
    o.ds = ds;
    o.workers = workers;
    struct seg_loader *l;
    assert_int_equal(seg_loader_create(&o, &l), SEG_STATUS_OK);
    size_t isz = (size_t)o.batch * 3 * o.aug.crop_h * o.aug.crop_w, lsz = (size_t)o.batch * o.aug.crop_h * o.aug.crop_w;
    *images = calloc(isz * nbatches, sizeof **images);
    *labels = calloc(lsz * nbatches, sizeof **labels);
    *indices = calloc((size_t)o.batch * nbatches, sizeof **indices);
    for (int i = 0; i < nbatches; i++) {
        struct seg_data_batch *b;
        assert_int_equal(seg_loader_next(l, &b), SEG_STATUS_OK);
        assert_non_null(b);
        assert_int_equal(b->n, o.batch);
        assert_int_equal(b->position, (int64_t)i * o.batch);
        memcpy(*images + isz * i, b->images, isz * sizeof **images);
        memcpy(*labels + lsz * i, b->labels, lsz * sizeof **labels);
        memcpy(*indices + (size_t)o.batch * i, b->indices, (size_t)o.batch * sizeof **indices);
        seg_loader_release(l, b);
    }
    seg_loader_destroy(l);
}

static void test_loader_determinism(void **state)
{
    (void)state;
    write_gta5(P("det"), 7, 24, 12);
    struct seg_dataset *ds = open_ds(SEG_DATASET_GTA5, P("det"), NULL, NULL, NULL, 19, true);
    struct seg_loader_opts o;
    seg_loader_opts_defaults(&o);
    o.batch = 3;
    o.prefetch = 2;
    o.seed = 42;
    o.sampling = SEG_SAMPLING_SHUFFLE;
    o.norm = SEG_NORM_DEEPLAB;
    o.aug.resize_w = 20;
    o.aug.resize_h = 10;
    o.aug.scale_min = 0.8f;
    o.aug.scale_max = 1.5f;
    o.aug.crop_w = 16;
    o.aug.crop_h = 8;
    o.aug.flip = true;
    seg_augment_sdca_photometric(&o.aug);
    const int nb = 9; /* crosses epochs (7 images, 27 samples) */
    float *i0, *i1, *i3;
    int32_t *l0, *l1, *l3;
    int *x0, *x1, *x3;
    collect(ds, &o, 0, nb, &i0, &l0, &x0);
    collect(ds, &o, 1, nb, &i1, &l1, &x1);
    collect(ds, &o, 3, nb, &i3, &l3, &x3);
    size_t isz = (size_t)nb * 3 * 3 * 16 * 8, lsz = (size_t)nb * 3 * 16 * 8;
    assert_memory_equal(i0, i1, isz * sizeof *i0);
    assert_memory_equal(i0, i3, isz * sizeof *i0);
    assert_memory_equal(l0, l1, lsz * sizeof *l0);
    assert_memory_equal(l0, l3, lsz * sizeof *l0);
    assert_memory_equal(x0, x3, (size_t)nb * 3 * sizeof *x0);
    /* each epoch is a permutation */
    for (int e = 0; e < 3; e++) {
        int seen = 0;
        for (int i = 0; i < 7; i++)
            seen |= 1 << x0[e * 7 + i];
        assert_int_equal(seen, 0x7f);
    }
    /* labels stay on the image: every label is a mapped GTA5 id or padding */
    for (size_t i = 0; i < lsz; i++)
        assert_true(l0[i] == SEG_IGNORE || (l0[i] >= 0 && l0[i] < 19));
    /* another seed, other batches */
    o.seed = 43;
    float *i4;
    int32_t *l4;
    int *x4;
    collect(ds, &o, 2, nb, &i4, &l4, &x4);
    assert_true(memcmp(i0, i4, isz * sizeof *i0) != 0);
    free(i0), free(i1), free(i3), free(i4);
    free(l0), free(l1), free(l3), free(l4);
    free(x0), free(x1), free(x3), free(x4);

    /* class-balanced sampling: deterministic too, and only draws images holding a class */
    uint32_t *masks;
    assert_int_equal(seg_dataset_class_presence(ds, P("det/presence.txt"), 2, &masks), SEG_STATUS_OK);
    assert_int_equal(masks[0], (1u << 0) | (1u << 1) | (1u << 2) | (1u << 13) | (1u << 11) | (1u << 10) |
                                   (1u << 8) | (1u << 5) | (1u << 18));
    uint32_t *cached;
    assert_int_equal(seg_dataset_class_presence(ds, P("det/presence.txt"), 1, &cached), SEG_STATUS_OK);
    assert_memory_equal(masks, cached, 7 * sizeof *masks);
    free(cached);
    o.seed = 42;
    o.sampling = SEG_SAMPLING_CLASS_BALANCED;
    o.presence = masks;
    o.epoch_size = 10;
    collect(ds, &o, 0, nb, &i0, &l0, &x0);
    collect(ds, &o, 2, nb, &i1, &l1, &x1);
    assert_memory_equal(i0, i1, isz * sizeof *i0);
    assert_memory_equal(x0, x1, (size_t)nb * 3 * sizeof *x0);
    free(i0), free(i1), free(l0), free(l1), free(x0), free(x1);
    free(masks);


    /* one epoch, sequential, at the file size, no labels: partial last batch, then the end */
    seg_dataset_close(ds);
    ds = open_ds(SEG_DATASET_GTA5, P("det"), NULL, NULL, NULL, 19, false);
    seg_loader_opts_defaults(&o);
    o.ds = ds;
    o.batch = 4;
    o.repeat = false;
    o.sampling = SEG_SAMPLING_SEQUENTIAL;
    struct seg_loader *l;
    assert_int_equal(seg_loader_create(&o, &l), SEG_STATUS_OK);
    assert_int_equal(seg_loader_batches(l), 2);
    struct seg_data_batch *b;
    assert_int_equal(seg_loader_next(l, &b), SEG_STATUS_OK);
    assert_int_equal(b->n, 4);
    assert_null(b->labels);
    assert_int_equal(b->w, 24);
    struct seg_image back;
    assert_int_equal(seg_data_batch_image(b, 2, SEG_NORM_NONE, &back), SEG_STATUS_OK);
    uint8_t *want = make_rgb(24, 12, 2);
    assert_memory_equal(back.data, want, 24 * 12 * 3);
    free(want);
    seg_image_free(&back);
    seg_loader_release(l, b);
    assert_int_equal(seg_loader_next(l, &b), SEG_STATUS_OK);
    assert_int_equal(b->n, 3);
    assert_int_equal(b->indices[2], 6);
    seg_loader_release(l, b);
    assert_int_equal(seg_loader_next(l, &b), SEG_STATUS_OK);
    assert_null(b);
    seg_loader_destroy(l);
    seg_dataset_close(ds);
}

/* Four GTA5 images of 24 x 12, road (id 7, train 0) everywhere but for a block of car (id
 * 26, train 13) or person (id 24, train 11) of the size given. */
static void write_gta5_rare(const char *dir)
{
    static const struct { uint8_t id; int w, h; } block[4] = {{7, 0, 0}, {26, 10, 4}, {24, 10, 4}, {26, 10, 10}};
    uint8_t pal[256 * 3], ids[24 * 12];
    seg_labels_cityscapes_id_palette(pal);
    char sub[600], path[700];
    snprintf(sub, sizeof sub, "%s/images", dir);
    mkdirs(sub);
    snprintf(sub, sizeof sub, "%s/labels", dir);
    mkdirs(sub);
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 24 * 12; i++)
            ids[i] = i / 24 < block[k].h && i % 24 < block[k].w ? block[k].id : 7;
        uint8_t *rgb = make_rgb(24, 12, k);
        snprintf(path, sizeof path, "%s/images/%05d.png", dir, k);
        assert_int_equal(seg_png_write(path, rgb, 24, 12, 3, 8, NULL, 0), SEG_STATUS_OK);
        snprintf(path, sizeof path, "%s/labels/%05d.png", dir, k);
        assert_int_equal(seg_png_write(path, ids, 24, 12, 1, 8, pal, 256), SEG_STATUS_OK);
        free(rgb);
    }
}

/* DAFormer's rare-class sampling: pixel counts (hand-computed), the file frequencies that
 * softmax((1 - f_c) / T) and a uniform choice among each class's files give, and the crop
 * retry that keeps the class in view. */
static void test_rare_class_sampling(void **state)
{
    (void)state;
    write_gta5_rare(P("rcs"));
    struct seg_dataset *ds = open_ds(SEG_DATASET_GTA5, P("rcs"), NULL, NULL, NULL, 19, true);
    uint32_t *pix, *cached;
    assert_int_equal(seg_dataset_class_pixels(ds, P("rcs/pixels.txt"), 2, &pix), SEG_STATUS_OK);
    static const uint32_t road[4] = {288, 248, 248, 188}, car[4] = {0, 40, 0, 100}, person[4] = {0, 0, 40, 0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pix[i * 19 + 0], road[i]);
        assert_int_equal(pix[i * 19 + 13], car[i]);
        assert_int_equal(pix[i * 19 + 11], person[i]);
    }
    assert_int_equal(seg_dataset_class_pixels(ds, P("rcs/pixels.txt"), 1, &cached), SEG_STATUS_OK);
    assert_memory_equal(pix, cached, 4 * 19 * sizeof *pix);
    free(cached);
    /* min 30 pixels: road in all four files, car in 1 and 3, person in 2. T = 0.05, f = 972,
     * 140, 40 of 1152 */
    double wr = exp((1 - 972.0 / 1152) / 0.05), wc = exp((1 - 140.0 / 1152) / 0.05), wp = exp((1 - 40.0 / 1152) / 0.05);
    double z = wr + wc + wp, want[4] = {wr / z / 4, wr / z / 4 + wc / z / 2, wr / z / 4 + wp / z, wr / z / 4 + wc / z / 2};
    struct seg_loader_opts o;
    seg_loader_opts_defaults(&o);
    o.batch = 3;
    o.prefetch = 2;
    o.seed = 7;
    o.norm = SEG_NORM_NONE;
    o.aug.crop_w = 16;
    o.aug.crop_h = 8;
    o.sampling = SEG_SAMPLING_RARE_CLASS;
    o.class_pixels = pix;
    o.rcs_temperature = 0.05;
    o.rcs_min_pixels = 30;
    o.rcs_min_crop_ratio = 0.5f;
    o.epoch_size = 300;
    const int nb = 400;
    float *im;
    int32_t *lb;
    int *idx;
    collect(ds, &o, 2, nb, &im, &lb, &idx);
    int seen[4] = {0}, person_short = 0, person_draws = 0;
    for (int i = 0; i < nb * 3; i++) {
        seen[idx[i]]++;
        int np = 0;
        for (int p = 0; p < 16 * 8; p++)
            np += lb[(size_t)i * 16 * 8 + p] == 11;
        person_short += idx[i] == 2 && np <= 15; /* 30 x 0.5 */
        person_draws += idx[i] == 2;
    }
    for (int i = 0; i < 4; i++) {
        double got = seen[i] / (double)(nb * 3), sd = sqrt(want[i] * (1 - want[i]) / (nb * 3));
        if (fabs(got - want[i]) > 5 * sd + 1e-9)
            fail_msg("rare-class sampling: file %d drawn %.4f of the time, want %.4f", i, got, want[i]);
    }
    /* a random 16 x 8 crop of file 2 holds > 15 of its 10 x 4 person pixels (top left) for 15
     * of the 45 offsets: one crop comes short 2/3 of the time, ten in a row 1.7% */
    double short_share = person_short / (double)person_draws;
    if (!(short_share < 0.05))
        fail_msg("rare-class sampling: %.3f of the person crops hold <= 15 person pixels, want about 0.017", short_share);
    float *im2;
    int32_t *lb2;
    int *idx2;
    collect(ds, &o, 0, 40, &im2, &lb2, &idx2); /* the same stream on the calling thread */
    assert_memory_equal(idx, idx2, 120 * sizeof *idx);
    assert_memory_equal(lb, lb2, 120 * 16 * 8 * sizeof *lb);
    free(im2), free(lb2), free(idx2);
    /* without the retry, one crop each */
    o.rcs_min_crop_ratio = 0;
    collect(ds, &o, 2, nb, &im2, &lb2, &idx2);
    person_short = person_draws = 0;
    for (int i = 0; i < nb * 3; i++) {
        int np = 0;
        for (int p = 0; p < 16 * 8; p++)
            np += lb2[(size_t)i * 16 * 8 + p] == 11;
        person_short += idx2[i] == 2 && np <= 15;
        person_draws += idx2[i] == 2;
    }
    short_share = person_short / (double)person_draws;
    if (!(short_share > 0.55 && short_share < 0.78))
        fail_msg("rare-class sampling without the retry: %.3f of the person crops short, want about 2/3", short_share);
    free(im), free(lb), free(idx), free(im2), free(lb2), free(idx2);
    free(pix);
    seg_dataset_close(ds);
}

static void test_normalize(void **state)
{
    (void)state;
    float x[3 * 2] = {10, 20, 30, 40, 50, 60}; /* R R G G B B */
    float y[6];
    memcpy(y, x, sizeof x);
    seg_data_normalize(y, 1, 1, 2, SEG_NORM_DEEPLAB);
    assert_float_equal(y[0], 50 - 104.00698793f, 1e-4); /* B first */
    assert_float_equal(y[2], 30 - 116.66876762f, 1e-4);
    assert_float_equal(y[5], 20 - 122.67891434f, 1e-4);
    seg_data_denormalize(y, 1, 1, 2, SEG_NORM_DEEPLAB);
    for (int i = 0; i < 6; i++)
        assert_float_equal(y[i], x[i], 1e-3);
    memcpy(y, x, sizeof x);
    seg_data_normalize(y, 1, 1, 2, SEG_NORM_IMAGENET);
    assert_float_equal(y[0], (10 / 255.0f - 0.485f) / 0.229f, 1e-5);
    seg_data_denormalize(y, 1, 1, 2, SEG_NORM_IMAGENET);
    for (int i = 0; i < 6; i++)
        assert_float_equal(y[i], x[i], 1e-3);
}

/* ---- metrics ---- */

static void test_metrics(void **state)
{
    (void)state;
    /* 3 classes: labels / predictions chosen so that
     *   class 0: TP 2, FN 1 (pred 1), FP 1 (label 2) -> 2/4
     *   class 1: TP 1, FP 1, FN 0                    -> 1/2
     *   class 2: TP 0, FN 1                          -> 0/1
     * and one ignored pixel with an out-of-range prediction (not counted) */
    int32_t lab[] = {0, 0, 0, 1, 2, 255};
    int32_t pred[] = {0, 0, 1, 1, 0, 7};
    struct seg_confusion c;
    assert_int_equal(seg_confusion_init(&c, 3), 0);
    assert_int_equal(seg_confusion_add(&c, pred, lab, 6), 0);
    double iou[3];
    seg_confusion_iou(&c, iou);
    assert_float_equal(iou[0], 0.5, 1e-12);
    assert_float_equal(iou[1], 0.5, 1e-12);
    assert_float_equal(iou[2], 0.0, 1e-12);
    int32_t bad_lab[] = {3}, bad_pred[] = {0};
    expect_error(seg_confusion_add(&c, bad_pred, bad_lab, 1), SEG_STATUS_INVALID, "label 3");
    bad_lab[0] = 0;
    bad_pred[0] = -1;
    expect_error(seg_confusion_add(&c, bad_pred, bad_lab, 1), SEG_STATUS_INVALID, "prediction -1");
    struct seg_metrics_report r;
    seg_metrics_compute(&c, &r);
    assert_int_equal(r.pixels, 5);
    assert_float_equal(r.pixel_acc, 3.0 / 5.0, 1e-12);
    assert_int_equal(r.nviews, 1);
    assert_float_equal(r.view_miou[0], 1.0 / 3.0, 1e-12);
    seg_confusion_free(&c);

    /* 19 classes: IoU of class t is t/20 for t = 0..17 (exactly), class 18 absent (NaN) */
    assert_int_equal(seg_confusion_init(&c, 19), 0);
    for (int t = 0; t < 18; t++) {
        c.m[t * 19 + t] = (uint64_t)t;            /* TP */
        c.m[t * 19 + 18] = (uint64_t)(20 - t);    /* FN, predicted as 18 */
    }
    seg_metrics_compute(&c, &r);
    assert_int_equal(r.nviews, 3);
    assert_string_equal(r.view_name[0], "mIoU");
    assert_string_equal(r.view_name[1], "mIoU16");
    assert_string_equal(r.view_name[2], "mIoU13");
    assert_float_equal(r.iou[18], 0.0, 1e-12); /* predicted, never labelled: 0, not NaN */
    /* mIoU over 19: (0 + 1 + ... + 17) / 20 / 19 */
    assert_float_equal(r.view_miou[0], 153.0 / 20.0 / 19.0, 1e-12);
    /* 16: trainIds 0-8, 10, 11, 12, 13, 15, 17, 18 */
    double s16 = (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 10 + 11 + 12 + 13 + 15 + 17) / 20.0;
    assert_float_equal(r.view_miou[1], s16 / 16.0, 1e-12);
    double s13 = (0 + 1 + 2 + 6 + 7 + 8 + 10 + 11 + 12 + 13 + 15 + 17) / 20.0;
    assert_float_equal(r.view_miou[2], s13 / 13.0, 1e-12);
    assert_int_equal(seg_metrics_save_json(&r, P("m.json")), 0);
    assert_int_equal(seg_metrics_save_csv(&r, P("m.csv")), 0);
    uint8_t *txt;
    size_t n;
    assert_int_equal(seg_file_read(P("m.json"), 0, &txt, &n), 0);
    txt = realloc(txt, n + 1);
    txt[n] = 0;
    assert_non_null(strstr((char *)txt, "\"mIoU13\": "));
    assert_non_null(strstr((char *)txt, "\"traffic light\": 30.0000"));
    free(txt);
    assert_int_equal(seg_file_read(P("m.csv"), 0, &txt, &n), 0);
    txt = realloc(txt, n + 1);
    txt[n] = 0;
    assert_non_null(strstr((char *)txt, "bicycle,0.0000\n"));
    assert_non_null(strstr((char *)txt, "sky,50.0000\n"));
    free(txt);
    seg_confusion_free(&c);

    /* the 16-class space: mIoU13 drops wall, fence and pole (indices 3, 4, 5) */
    assert_int_equal(seg_confusion_init(&c, 16), 0);
    for (int t = 0; t < 16; t++)
        c.m[t * 16 + t] = 1;
    c.m[3 * 16 + 0] = 1; /* a wall pixel predicted as road: wall 1/2, road 1/2 */
    seg_metrics_compute(&c, &r);
    assert_float_equal(r.view_miou[0], 15.0 / 16.0, 1e-12);
    assert_float_equal(r.view_miou[1], 12.5 / 13.0, 1e-12);
    seg_confusion_free(&c);
}

static void test_colorize(void **state)
{
    (void)state;
    int32_t lab[6] = {0, 13, 255, 10, 5, 18};
    struct seg_image c;
    assert_int_equal(seg_colorize(lab, 3, 2, 19, &c), 0);
    uint8_t road[3] = {128, 64, 128}, car[3] = {0, 0, 142}, black[3] = {0, 0, 0};
    assert_memory_equal(c.data, road, 3);
    assert_memory_equal(c.data + 3, car, 3);
    assert_memory_equal(c.data + 6, black, 3);
    /* in the 16-class space index 12 is car */
    int32_t l16[1] = {12};
    struct seg_image c16;
    assert_int_equal(seg_colorize(l16, 1, 1, 16, &c16), 0);
    assert_memory_equal(c16.data, car, 3);
    seg_image_free(&c16);
    struct seg_image im, ov;
    assert_int_equal(seg_image_alloc(&im, 3, 2, 3), 0);
    memset(im.data, 200, 18);
    assert_int_equal(seg_overlay(&im, &c, 0.5f, &ov), 0);
    assert_int_equal(ov.data[0], 164); /* (200 + 128) / 2 */
    seg_image_free(&ov);
    int32_t pred[12 * 4];
    for (int i = 0; i < 48; i++)
        pred[i] = i % 19;
    assert_int_equal(seg_grid_write(P("grid.png"), &im, lab, 3, 2, pred, 12, 4, 19), 0);
    struct seg_image g;
    assert_int_equal(seg_image_load(P("grid.png"), &g), 0);
    assert_int_equal(g.w, 36);
    assert_int_equal(g.h, 4);
    assert_memory_equal(g.data + 3 * 12, road, 3);  /* gt panel, top-left label 0 */
    assert_memory_equal(g.data + 3 * 24, road, 3);  /* prediction panel, class 0 */
    seg_image_free(&g);
    seg_image_free(&im);
    seg_image_free(&c);
}

/* ---- synthetic benchmark ---- */

static void test_synth(void **state)
{
    (void)state;
    int w = 64, h = 32;
    uint8_t *a = malloc((size_t)w * h * 4), *b = malloc((size_t)w * h * 4);
    assert_int_equal(seg_synth_render(5, SEG_SYNTH_TARGET, 1, 3, w, h, a, a + 3 * w * h), 0);
    assert_int_equal(seg_synth_render(5, SEG_SYNTH_TARGET, 1, 3, w, h, b, b + 3 * w * h), 0);
    assert_memory_equal(a, b, (size_t)w * h * 4);
    assert_int_equal(seg_synth_render(6, SEG_SYNTH_TARGET, 1, 3, w, h, b, b + 3 * w * h), 0);
    assert_true(memcmp(a, b, (size_t)w * h * 4) != 0);
    free(a);
    free(b);

    struct seg_synth_opts o;
    seg_synth_defaults(&o);
    o.w = w;
    o.h = h;
    o.n_source = 6;
    o.n_target = 5;
    o.n_val = 3;
    o.n_dev = 2;
    o.seed = 9;
    o.out = P("synthA");
    assert_int_equal(seg_synth_generate(&o), 0);
    o.out = P("synthB");
    assert_int_equal(seg_synth_generate(&o), 0);
    static const char *const files[] = {
        "source/images/00005.png", "source/labels/00000.png", "source/train.txt", "target/val.txt",
        "target/leftImg8bit/train/synthtown/synthtown_000004_000019_leftImg8bit.png",
        "target/gtFine/val/synthville/synthville_000002_000019_gtFine_labelIds.png",
        "target/dev.txt", "target/leftImg8bit/dev/synthburg/synthburg_000001_000019_leftImg8bit.png",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        uint8_t *fa, *fb;
        size_t na, nb;
        assert_int_equal(seg_file_read(P("synthA/%s", files[i]), 0, &fa, &na), 0);
        assert_int_equal(seg_file_read(P("synthB/%s", files[i]), 0, &fb, &nb), 0);
        assert_int_equal(na, nb);
        assert_memory_equal(fa, fb, na);
        free(fa);
        free(fb);
    }
    /* the real loaders read them, through the lists and by scanning */
    uint32_t present = 0;
    struct seg_dataset *src = open_ds(SEG_DATASET_GTA5, P("synthA/source"), NULL, NULL, NULL, 19, true);
    assert_int_equal(src->n, 6);
    for (int i = 0; i < src->n; i++) {
        struct seg_image im, lb;
        assert_int_equal(seg_dataset_load(src, i, &im, &lb), SEG_STATUS_OK);
        assert_int_equal(im.w, w);
        for (int p = 0; p < w * h; p++)
            if (lb.data[p] < 19)
                present |= 1u << lb.data[p];
        seg_image_free(&im);
        seg_image_free(&lb);
    }
    seg_dataset_close(src);
    src = open_ds(SEG_DATASET_GTA5, P("synthA/source"), NULL, NULL, P("synthA/source/train.txt"), 19, true);
    assert_int_equal(src->n, 6);
    seg_dataset_close(src);
    const char *splits[3] = {"train", "val", "dev"};
    for (int s = 0; s < 3; s++) {
        struct seg_dataset *t = open_ds(SEG_DATASET_CITYSCAPES, P("synthA/target"), splits[s], NULL, NULL, 19, true);
        assert_int_equal(t->n, s == 0 ? 5 : s == 1 ? 3 : 2);
        for (int i = 0; i < t->n; i++) {
            struct seg_image im, lb;
            assert_int_equal(seg_dataset_load(t, i, &im, &lb), SEG_STATUS_OK);
            for (int p = 0; p < w * h; p++)
                if (lb.data[p] < 19)
                    present |= 1u << lb.data[p];
            seg_image_free(&im);
            seg_image_free(&lb);
        }
        seg_dataset_close(t);
    }
    struct seg_dataset *t = open_ds(SEG_DATASET_CITYSCAPES, P("synthA/target"), "val", NULL,
                                    P("synthA/target/val.txt"), 19, true);
    assert_int_equal(t->n, 3);
    seg_dataset_close(t);
    { /* dev holds other scenes than val: nothing tuned on dev has seen a val image */
        uint8_t *fa, *fb;
        size_t na, nb;
        assert_int_equal(seg_file_read(P("synthA/target/leftImg8bit/val/synthville/synthville_000000_000019_leftImg8bit.png"),
                                       0, &fa, &na), 0);
        assert_int_equal(seg_file_read(P("synthA/target/leftImg8bit/dev/synthburg/synthburg_000000_000019_leftImg8bit.png"),
                                       0, &fb, &nb), 0);
        assert_true(na != nb || memcmp(fa, fb, na) != 0);
        free(fa);
        free(fb);
    }
    int nclasses = 0;
    for (int c = 0; c < 19; c++)
        nclasses += (present >> c) & 1;
    if (nclasses < 8) {
        print_error("synth scenes hold %d classes (mask %x), want >= 8\n", nclasses, present);
        fail();
    }
    /* road, sidewalk, building, sky, vegetation, car, person, pole */
    static const int must[] = {0, 1, 2, 10, 8, 13, 11, 5};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        assert_true(present & (1u << must[i]));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/segda-test-data-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_roundtrip),   cmocka_unit_test(test_image_errors),
        cmocka_unit_test(test_gta5),            cmocka_unit_test(test_synthia),
        cmocka_unit_test(test_cityscapes),      cmocka_unit_test(test_crosscity),
        cmocka_unit_test(test_bad_inputs),      cmocka_unit_test(test_augment),
        cmocka_unit_test(test_augment_scale_range),
        cmocka_unit_test(test_loader_determinism), cmocka_unit_test(test_rare_class_sampling),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_metrics),         cmocka_unit_test(test_colorize),
        cmocka_unit_test(test_synth),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed)
        nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "fixtures kept in %s\n", root);
    return failed;
}
