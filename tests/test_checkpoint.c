/* test_checkpoint.c: safetensors round trips and the reader's rejection of malformed files
 * (each with an error naming the file and the problem, never an out-of-bounds read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/model.h"
#include "model/safetensors.h"

/* A file image: 8-byte length, the header text, then `data` bytes of data. */
static unsigned char *image(const char *header, size_t data, size_t *size)
{
    size_t h = strlen(header);
    *size = 8 + h + data;
    unsigned char *b = calloc(1, *size);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    return b;
}

static enum seg_status parse(const char *header, size_t data)
{
    size_t size;
    unsigned char *b = image(header, data, &size);
    struct seg_st_file f;
    enum seg_status st = seg_st_parse(b, size, "x.safetensors", &f);
    if (!st)
        seg_st_free(&f);
    return st;
}

static void test_valid(void **state)
{
    size_t size;
    unsigned char *b = image("{\"__metadata__\":{\"arch\":\"deeplabv2_tiny\"},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                             "\"b\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[24,28]}}",
                             28, &size);
    struct seg_st_file f;
    assert_int_equal(seg_st_parse(b, size, "x", &f), SEG_STATUS_OK);
    assert_int_equal(f.ntensors, 2);
    assert_string_equal(seg_st_meta_get(&f, "arch"), "deeplabv2_tiny");
    const struct seg_st_tensor *a = seg_st_find(&f, "a");
    assert_non_null(a);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(a->nbytes, 24);
    seg_st_free(&f);
}

static void test_malformed(void **state)
{
    const struct {
        const char *header;
        size_t      data;
        const char *why;
    } bad[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "past the end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, "wrong size"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, "overlap"},
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2, "dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "no offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "unterminated"},
        {"[1,2]", 0, "not an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999,99999999999,99999999999],"
         "\"data_offsets\":[0,4]}}", 4, "huge shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "reversed"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "metadata not a string"},
        {"{} trailing", 0, "trailing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum seg_status st = parse(bad[i].header, bad[i].data);
        if (st != SEG_STATUS_FORMAT)
            fail_msg("case '%s' gave %d", bad[i].why, st);
        assert_non_null(strstr(seg_last_error(), "x.safetensors"));
    }
    /* Truncated length prefix and a header longer than the file. */
    unsigned char small[4] = {1, 2, 3, 4};
    struct seg_st_file f;
    unsigned char *b = malloc(4);
    memcpy(b, small, 4);
    assert_int_equal(seg_st_parse(b, 4, "x", &f), SEG_STATUS_FORMAT);
    size_t size;
    b = image("{}", 0, &size);
    b[0] = 200;
    assert_int_equal(seg_st_parse(b, size, "x", &f), SEG_STATUS_FORMAT);
}

static void test_model_round_trip(void **state)
{
    struct seg_backend *be = NULL;
    assert_int_equal(seg_backend_create("cpu", &be), 0);
    struct seg_model_config cfg = {SEG_ARCH_DEEPLABV2_TINY, 7, true, true, SEG_BN_POLICY_FROZEN_AFFINE, 5, 0};
    struct seg_model *a = NULL, *b = NULL;
    assert_int_equal(seg_model_create(be, &cfg, &a), 0);
    cfg.seed = 6;
    assert_int_equal(seg_model_create(be, &cfg, &b), 0);
    char path[] = "/tmp/segda-ckpt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *meta[] = {"method", "source_only"};
    assert_int_equal(seg_model_save(a, path, meta, 1), 0);
    struct seg_model_config got;
    assert_int_equal(seg_model_config_from_file(path, &got), 0);
    assert_int_equal(got.arch, SEG_ARCH_DEEPLABV2_TINY);
    assert_int_equal(got.num_classes, 7);
    assert_int_equal(seg_model_load(b, path, true), 0);
    for (int i = 0; i < a->nparams; i++) {
        size_t n = seg_tensor_nbytes(a->params[i].var->value);
        float *x = malloc(n), *y = malloc(n);
        seg_tensor_read(a->params[i].var->value, x, n);
        seg_tensor_read(b->params[i].var->value, y, n);
        assert_memory_equal(x, y, n);
        free(x);
        free(y);
    }
    /* A model of another size must be refused with the tensor's name. */
    struct seg_model *c = NULL;
    cfg.num_classes = 5;
    assert_int_equal(seg_model_create(be, &cfg, &c), 0);
    assert_int_equal(seg_model_load(c, path, true), SEG_STATUS_FORMAT);
    assert_non_null(strstr(seg_last_error(), "layer"));
    /* A truncated file must be refused, not read past its end. */
    assert_int_equal(truncate(path, 1000), 0);
    assert_int_equal(seg_model_load(b, path, true), SEG_STATUS_FORMAT);
    close(fd);
    unlink(path);
    seg_model_destroy(a);
    seg_model_destroy(b);
    seg_model_destroy(c);
    seg_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_model_round_trip),
    };
    return cmocka_run_group_tests_name("checkpoint-cpu", tests, NULL, NULL);
}
