/* args.c: the option parser every command shares, and model loading for inference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "model/model.h"

int seg_args_parse(const char *cmd, int argc, char **argv, const struct seg_arg *args, int nargs,
                   void (*usage)(FILE *))
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return SEG_EXIT_OK;
        }
        const struct seg_arg *a = NULL;
        for (int k = 0; k < nargs && !a; k++)
            if (!strcmp(argv[i], args[k].name))
                a = &args[k];
        if (!a) {
            fprintf(stderr, "segda %s: unknown option '%s'\n", cmd, argv[i]);
            usage(stderr);
            return SEG_EXIT_USAGE;
        }
        if (a->kind == SEG_ARG_FLAG) {
            *(bool *)a->dst = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "segda %s: %s needs a value\n", cmd, a->name);
            return SEG_EXIT_USAGE;
        }
        const char *v = argv[++i];
        char *end = NULL;
        switch (a->kind) {
        case SEG_ARG_STR: *(const char **)a->dst = v; break;
        case SEG_ARG_LONG: *(long *)a->dst = strtol(v, &end, 10); break;
        case SEG_ARG_DOUBLE: *(double *)a->dst = strtod(v, &end); break;
        case SEG_ARG_LIST: {
            struct seg_arg_list *l = a->dst;
            if (l->n == SEG_ARG_LIST_MAX) {
                fprintf(stderr, "segda %s: at most %d %s options\n", cmd, SEG_ARG_LIST_MAX, a->name);
                return SEG_EXIT_USAGE;
            }
            l->v[l->n++] = v;
            break;
        }
        case SEG_ARG_FLAG: break;
        }
        if (end && (*end || end == v)) {
            fprintf(stderr, "segda %s: %s '%s' is not a number\n", cmd, a->name, v);
            return SEG_EXIT_USAGE;
        }
    }
    return -1;
}

enum seg_status seg_app_open_model(const char *weights, const char *device, struct seg_backend **be,
                                   struct seg_model **m)
{
    struct seg_model_config mc;
    *be = NULL;
    *m = NULL;
    enum seg_status st = seg_model_config_from_file(weights, &mc);
    if (st)
        return st;
    mc.bn = SEG_BN_POLICY_FROZEN; /* inference: running statistics */
    st = seg_backend_create(device, be);
    if (!st) st = seg_model_create(*be, &mc, m);
    if (!st) st = seg_model_load(*m, weights, true);
    if (st) {
        seg_model_destroy(*m);
        seg_backend_destroy(*be);
        *m = NULL;
        *be = NULL;
    }
    return st;
}
