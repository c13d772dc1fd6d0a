/* cmd_infer.c: `segda infer`: one image through a model at its own size, raw classifier
 * output (before any upsampling) saved as .npy N x C x h x w. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "data/data.h"
#include "model/model.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: segda infer --weights W.safetensors --input IMG --save-logits OUT.npy\n"
               "                   [--device D] [--preprocess deeplab|imagenet] [--aux]\n\n"
               "Runs the model stored in W (its architecture comes from the file's metadata) on one\n"
               "image at the image's own size, with batch-norm running statistics, and saves the raw\n"
               "classifier output before any upsampling as a float32 NumPy array 1 x C x h x w.\n"
               "  --preprocess deeplab   RGB->BGR, 0-255, minus (104.00698793, 116.66876762, 122.67891434) [default]\n"
               "  --preprocess imagenet  RGB/255, minus (0.485, 0.456, 0.406), over (0.229, 0.224, 0.225)\n"
               "  --aux                  save the auxiliary classifier's output instead of the main one\n"
               "  --device D             cpu, opencl[:P.D], vulkan[:N] or auto [default auto]\n");
}

int seg_exit_code(enum seg_status st)
{
    switch (st) {
    case SEG_STATUS_OK: return SEG_EXIT_OK;
    case SEG_STATUS_NO_DEVICE: return SEG_EXIT_NO_DEVICE;
    case SEG_STATUS_FORMAT:
    case SEG_STATUS_IO: return SEG_EXIT_BAD_INPUT;
    case SEG_STATUS_INVALID: return SEG_EXIT_USAGE;
    default: return SEG_EXIT_FAIL;
    }
}

int seg_cmd_infer(int argc, char **argv)
{
    const char *weights = NULL, *input = NULL, *out = NULL, *device = "auto";
    enum seg_norm pre = SEG_NORM_DEEPLAB;
    bool aux = false;
    const char *prep = "deeplab";
    const struct seg_arg args[] = {
        {"--weights", SEG_ARG_STR, &weights}, {"--input", SEG_ARG_STR, &input},
        {"--save-logits", SEG_ARG_STR, &out}, {"--device", SEG_ARG_STR, &device},
        {"--aux", SEG_ARG_FLAG, &aux},         {"--preprocess", SEG_ARG_STR, &prep},
    };
    int rc = seg_args_parse("infer", argc, argv, args, (int)(sizeof args / sizeof args[0]), usage);
    if (rc >= 0)
        return rc;
    if (!strcmp(prep, "imagenet"))
        pre = SEG_NORM_IMAGENET;
    else if (strcmp(prep, "deeplab")) {
        fprintf(stderr, "segda infer: --preprocess '%s': deeplab or imagenet\n", prep);
        return SEG_EXIT_USAGE;
    }
    if (!weights || !input || !out) {
        fprintf(stderr, "segda infer: --weights, --input and --save-logits are required\n");
        usage(stderr);
        return SEG_EXIT_USAGE;
    }
    struct seg_backend *be = NULL;
    struct seg_model *m = NULL;
    struct seg_ag *ag = NULL;
    float *img = NULL, *logits = NULL;
    struct seg_image im = {0};
    int w = 0, h = 0;
    enum seg_status st = seg_image_load(input, &im);
    if (!st) { /* interleaved 8-bit RGB to planar floats */
        w = im.w;
        h = im.h;
        img = malloc((size_t)3 * w * h * sizeof *img);
        if (!img)
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", input);
        for (size_t p = 0; img && p < (size_t)w * h; p++)
            for (int k = 0; k < 3; k++)
                img[(size_t)k * w * h + p] = im.data[p * 3 + k];
    }
    if (!st) st = seg_app_open_model(weights, device, &be, &m);
    if (!st) st = seg_ag_create(be, &ag);
    struct seg_var *x = NULL;
    struct seg_model_out o;
    if (!st) {
        seg_ag_set_grad_enabled(ag, false);
        seg_data_normalize(img, 1, h, w, pre);
        int64_t xs[4] = {1, 3, h, w};
        struct seg_tensor *t = NULL;
        st = seg_tensor_new(be, SEG_DTYPE_F32, 4, xs, &t);
        if (!st) st = seg_tensor_write(t, img, (size_t)3 * w * h * sizeof(float));
        if (!st) st = seg_ag_const(ag, t, &x);
        else seg_tensor_free(t);
    }
    if (!st) st = seg_model_forward(ag, m, x, false, &o);
    const struct seg_tensor *y = NULL;
    if (!st) {
        y = aux ? (o.aux ? o.aux->value : NULL) : o.main->value;
        if (!y)
            st = seg_error(SEG_STATUS_INVALID, "%s: the model has no auxiliary classifier", weights);
    }
    if (!st) {
        logits = malloc(seg_tensor_nbytes(y));
        st = logits ? seg_tensor_read(y, logits, seg_tensor_nbytes(y))
                    : seg_error(SEG_STATUS_OUT_OF_MEMORY, "out of host memory");
    }
    if (!st) st = seg_npy_write_f32(out, logits, y->ndim, y->shape);
    if (!st)
        printf("%s: %s on %s (%dx%d) -> %lldx%lldx%lldx%lld logits in %s\n", input,
               seg_arch_name(m->cfg.arch), seg_backend_device(be)->spec, w, h, (long long)y->shape[0],
               (long long)y->shape[1], (long long)y->shape[2], (long long)y->shape[3], out);
    else
        fprintf(stderr, "segda infer: %s\n", seg_last_error());
    free(img);
    free(logits);
    seg_image_free(&im);
    seg_ag_destroy(ag);
    seg_model_destroy(m);
    seg_backend_destroy(be);
    return seg_exit_code(st);
}
