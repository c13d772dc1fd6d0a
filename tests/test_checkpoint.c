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
    struct seg_model_config cfg = {SEG_ARCH_DEEPLABV2_TINY, 7, true, true, SEG_BN_POLICY_FROZEN_AFFINE, 5, 0, false, false, {0}};
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

/* The main logits of m on a fixed input (eval mode), on the host; source: the shared stem. */
static float *logits(struct seg_backend *be, struct seg_model *m, bool source, size_t *n)
{
    struct seg_ag *ag = NULL;
    struct seg_tensor *x = NULL;
    struct seg_var *xv;
    struct seg_model_out o;
    int64_t shape[4] = {1, 3, 41, 33};
    float img[3 * 41 * 33];
    for (size_t i = 0; i < sizeof img / sizeof img[0]; i++)
        img[i] = (float)((i * 7919) % 255) / 64.0f - 2.0f;
    assert_int_equal(seg_ag_create(be, &ag), 0);
    assert_int_equal(seg_tensor_new(be, SEG_DTYPE_F32, 4, shape, &x), 0);
    assert_int_equal(seg_tensor_write(x, img, sizeof img), 0);
    assert_int_equal(seg_ag_const(ag, x, &xv), 0);
    seg_ag_set_grad_enabled(ag, false);
    assert_int_equal(source ? seg_model_forward_source(ag, m, xv, false, &o) : seg_model_forward(ag, m, xv, false, &o), 0);
    *n = seg_tensor_nbytes(o.main->value);
    float *y = malloc(*n);
    assert_int_equal(seg_tensor_read(o.main->value, y, *n), 0);
    seg_ag_destroy(ag);
    return y;
}

static void assert_same_tensor(struct seg_model *a, const char *na, struct seg_model *b, const char *nb)
{
    struct seg_param *pa = seg_model_find(a, na), *pb = seg_model_find(b, nb);
    assert_non_null(pa);
    assert_non_null(pb);
    size_t n = seg_tensor_nbytes(pa->var->value);
    assert_int_equal(n, seg_tensor_nbytes(pb->var->value));
    float *x = malloc(n), *y = malloc(n);
    seg_tensor_read(pa->var->value, x, n);
    seg_tensor_read(pb->var->value, y, n);
    assert_memory_equal(x, y, n);
    free(x);
    free(y);
}

/* BiDA's released-code target stem: loaded from a checkpoint without one it copies the
 * shared stem (so both paths agree), it is what inference runs, and the source path never
 * touches it. */
static void test_target_stem(void **state)
{
    struct seg_backend *be = NULL;
    assert_int_equal(seg_backend_create("cpu", &be), 0);
    struct seg_model_config cfg = {SEG_ARCH_DEEPLABV2_TINY, 5, true, true, SEG_BN_POLICY_FROZEN_AFFINE, 5, 0, false, false, {0}};
    struct seg_model *plain = NULL, *two = NULL, *back = NULL;
    assert_int_equal(seg_model_create(be, &cfg, &plain), 0);
    cfg.target_stem = true;
    cfg.seed = 6;
    assert_int_equal(seg_model_create(be, &cfg, &two), 0);
    int stem = 0, target = 0;
    for (int i = 0; i < plain->nparams; i++) {
        const char *nm = plain->params[i].name;
        stem += !strncmp(nm, "conv1.", 6) || !strncmp(nm, "bn1.", 4) || !strncmp(nm, "layer1.", 7);
    }
    for (int i = 0; i < two->nparams; i++)
        target += !strncmp(two->params[i].name, "target.", 7);
    assert_true(stem > 0);
    assert_int_equal(target, stem);
    assert_int_equal(two->nparams, plain->nparams + stem);
    char path[] = "/tmp/segda-stem-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(seg_model_save(plain, path, NULL, 0), 0);
    assert_int_equal(seg_model_load(two, path, true), 0);
    assert_same_tensor(plain, "conv1.weight", two, "target.conv1.weight");
    assert_same_tensor(plain, "bn1.running_var", two, "target.bn1.running_var");
    assert_same_tensor(plain, "layer1.0.downsample.0.weight", two, "target.layer1.0.downsample.0.weight");
    size_t n0, n1, n2;
    float *ref = logits(be, plain, false, &n0), *tgt = logits(be, two, false, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(ref, tgt, n0);
    free(tgt);
    /* a different target stem changes the target path only */
    struct seg_param *w = seg_model_find(two, "target.layer1.0.conv2.weight");
    assert_int_equal(seg_fill(w->var->value, 0.01f), 0);
    tgt = logits(be, two, false, &n1);
    float *src = logits(be, two, true, &n2);
    assert_memory_equal(ref, src, n0);
    assert_memory_not_equal(ref, tgt, n0);
    /* the checkpoint says it has a target stem, and a model built from it reads it back */
    assert_int_equal(seg_model_save(two, path, NULL, 0), 0);
    struct seg_model_config got;
    assert_int_equal(seg_model_config_from_file(path, &got), 0);
    assert_true(got.target_stem);
    assert_int_equal(seg_model_create(be, &got, &back), 0);
    assert_int_equal(seg_model_load(back, path, true), 0);
    float *again = logits(be, back, false, &n2);
    assert_memory_equal(tgt, again, n0);
    /* only ResNets have one */
    struct seg_model *vgg = NULL;
    cfg.arch = SEG_ARCH_DEEPLABV2_VGG16;
    assert_int_equal(seg_model_create(be, &cfg, &vgg), SEG_STATUS_INVALID);
    free(ref);
    free(tgt);
    free(src);
    free(again);
    close(fd);
    unlink(path);
    seg_model_destroy(plain);
    seg_model_destroy(two);
    seg_model_destroy(back);
    seg_backend_destroy(be);
}

/* model.aspp_rates: a subset of the rates is recorded and read back, builds only its branches
 * (conv2d_list.0/.1) and loads from a file with all four; the default is not recorded; bad
 * lists are refused. */
static void test_aspp_rates(void **state)
{
    (void)state;
    struct seg_backend *be = NULL;
    assert_int_equal(seg_backend_create("cpu", &be), 0);
    struct seg_model_config cfg = {SEG_ARCH_DEEPLABV2_TINY, 3, true, true, SEG_BN_POLICY_FROZEN_AFFINE, 5, 0, false, false, {0}};
    struct seg_model *all = NULL, *two = NULL;
    assert_int_equal(seg_model_create(be, &cfg, &all), 0);
    assert_int_equal(seg_aspp_rates_parse("6,12", cfg.aspp_rates), 0);
    assert_int_equal(seg_model_create(be, &cfg, &two), 0);
    assert_int_equal(all->nparams - two->nparams, 2 * 2 * 2); /* 2 heads x 2 branches x weight, bias */
    assert_null(seg_model_find(two, "layer6.conv2d_list.2.weight"));
    assert_non_null(seg_model_find(two, "layer6.conv2d_list.1.weight"));
    char pa[] = "/tmp/segda-aspp-XXXXXX", pb[] = "/tmp/segda-aspp-XXXXXX";
    int fa = mkstemp(pa), fb = mkstemp(pb);
    assert_true(fa >= 0 && fb >= 0);
    assert_int_equal(seg_model_save(all, pa, NULL, 0), 0);
    assert_int_equal(seg_model_save(two, pb, NULL, 0), 0);
    struct seg_model_config got;
    assert_int_equal(seg_model_config_from_file(pa, &got), 0);
    assert_int_equal(got.aspp_rates[0], 0); /* not recorded: the default */
    assert_int_equal(seg_model_config_from_file(pb, &got), 0);
    assert_int_equal(got.aspp_rates[0], 6);
    assert_int_equal(got.aspp_rates[1], 12);
    assert_int_equal(got.aspp_rates[2], 0);
    assert_int_equal(seg_model_load(two, pa, true), 0); /* the released weights hold all four */
    int r[SEG_ASPP_MAX];
    assert_int_equal(seg_aspp_rates_parse("6,6", r), SEG_STATUS_INVALID);
    assert_non_null(strstr(seg_last_error(), "6,6"));
    assert_int_equal(seg_aspp_rates_parse("6,12,18,24,30", r), SEG_STATUS_INVALID);
    assert_int_equal(seg_aspp_rates_parse("6,", r), SEG_STATUS_INVALID);
    assert_int_equal(seg_aspp_rates_parse("", r), SEG_STATUS_INVALID);
    assert_int_equal(seg_aspp_rates_parse("0", r), SEG_STATUS_INVALID);
    assert_int_equal(seg_aspp_rates_parse("12", r), 0);
    assert_int_equal(r[0], 12);
    close(fa);
    close(fb);
    unlink(pa);
    unlink(pb);
    seg_model_destroy(all);
    seg_model_destroy(two);
    seg_backend_destroy(be);
}

/* The torchvision-layout ResNet-101 and a batch norm without epsilon are recorded in the
 * checkpoint (inference rebuilds the model from it), and no epsilon with batch statistics
 * is refused. */
static void test_tv_arch_recorded(void **state)
{
    (void)state;
    struct seg_backend *be = NULL;
    assert_int_equal(seg_backend_create("cpu", &be), 0);
    struct seg_model_config cfg = {SEG_ARCH_DEEPLABV2_RESNET101_TV, 3, false, true, SEG_BN_POLICY_FROZEN_AFFINE,
                                   5, 4, false, true, {0}};
    struct seg_model *m = NULL;
    assert_int_equal(seg_model_create(be, &cfg, &m), SEG_STATUS_INVALID);
    assert_non_null(strstr(seg_last_error(), "frozen"));
    cfg.bn = SEG_BN_POLICY_FROZEN;
    assert_int_equal(seg_model_create(be, &cfg, &m), 0);
    char path[] = "/tmp/segda-ckpt-tv-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(seg_model_save(m, path, NULL, 0), 0);
    struct seg_model_config got;
    assert_int_equal(seg_model_config_from_file(path, &got), 0);
    assert_int_equal(got.arch, SEG_ARCH_DEEPLABV2_RESNET101_TV);
    assert_string_equal(seg_arch_name(got.arch), "deeplabv2_resnet101_tv");
    assert_int_equal(seg_arch_from_name("deeplabv2_resnet101_tv"), SEG_ARCH_DEEPLABV2_RESNET101_TV);
    assert_int_equal(got.width, 4);
    assert_true(got.bn_eps_zero);
    assert_false(got.multi_level);
    close(fd);
    unlink(path);
    seg_model_destroy(m);
    seg_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_model_round_trip),
        cmocka_unit_test(test_aspp_rates),
        cmocka_unit_test(test_target_stem),
        cmocka_unit_test(test_tv_arch_recorded),
    };
    return cmocka_run_group_tests_name("checkpoint-cpu", tests, NULL, NULL);
}
