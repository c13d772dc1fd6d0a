/* args.c: the option parser every command shares, model loading for inference, and the
 * device of a data-parallel rank. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "dist/dist.h"
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

enum seg_status seg_app_backend_create(const char *spec, struct seg_backend **be)
{
    enum seg_status st = seg_backend_create(spec, be);
    if (!st && seg_backend_choice(*be)[0]) /* "auto" chose: say which and why (a cpu fallback is slow) */
        fprintf(stderr, "segda: device auto -> %s\n", seg_backend_choice(*be));
    return st;
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
    st = seg_app_backend_create(device, be);
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

/* The device of this rank: from a comma-separated list, the local rank's entry; a kind
 * without an index (opencl, vulkan, auto), the local rank's device of that kind. */
enum seg_status seg_app_rank_device(const char *spec, struct seg_dist *dist, char *out, size_t n)
{
    int lr = seg_dist_local_rank(dist);
    snprintf(out, n, "%s", spec);
    if (seg_dist_size(dist) < 2)
        return SEG_STATUS_OK;
    if (strchr(spec, ',')) {
        int count = 1;
        for (const char *p = spec; *p; p++)
            count += *p == ',';
        const char *p = spec;
        for (int i = 0; i < lr % count; i++)
            p = strchr(p, ',') + 1;
        snprintf(out, n, "%.*s", (int)strcspn(p, ","), p);
        return SEG_STATUS_OK;
    }
    if (!strcmp(spec, "cpu") || strchr(spec, ':'))
        return SEG_STATUS_OK;
    struct seg_device_info devs[64];
    int nd = 0, match[64], nm = 0;
    char notes[1024];
    seg_devices_list(devs, 64, &nd, notes, sizeof notes);
    for (int i = 0; i < nd && i < 64; i++)
        if (!devs[i].is_cpu && (!strcmp(spec, "auto") || !strncmp(devs[i].spec, spec, strlen(spec))))
            match[nm++] = i;
    if (!strcmp(spec, "auto") && nm) { /* one kind for every rank: the first device's */
        const char *colon = strchr(devs[match[0]].spec, ':');
        size_t kl = colon ? (size_t)(colon - devs[match[0]].spec) : strlen(devs[match[0]].spec);
        int k = 0;
        for (int i = 0; i < nm; i++)
            if (!strncmp(devs[match[i]].spec, devs[match[0]].spec, kl))
                match[k++] = match[i];
        nm = k;
    }
    if (nm)
        snprintf(out, n, "%s", devs[match[lr % nm]].spec);
    return SEG_STATUS_OK;
}
