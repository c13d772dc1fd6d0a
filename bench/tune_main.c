/* tune_main.c: `segda tune`: searches GEMM parameters per device (CLBlast's Xgemm kernel on
 * OpenCL, the tile of our GEMM shader on Vulkan) on the GEMMs DeepLab-v2 runs and 1024^3,
 * and stores the best in the per-device tuning cache that backend creation loads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: segda tune [--device D]... [--quick] [--budget SECONDS]\n\n"
            "Tunes the GEMM kernels of each OpenCL and Vulkan device (default: all of them) for\n"
            "1024^3 and the GEMMs of DeepLab-v2 ResNet-101 at 321x321 (forward; with the backward\n"
            "ones unless --quick): CLBlast's Xgemm parameters (CLBlastOverrideParameters) on OpenCL,\n"
            "the GEMM shader's tile (specialization constants) on Vulkan. Every candidate's result\n"
            "is checked against the untuned one. The best, when it beats the defaults, is stored per\n"
            "device and driver in $SEGDA_CACHE_DIR, else $XDG_CACHE_HOME/segda, else ~/.cache/segda\n"
            "(opencl/ and vulkan/ tuned-*.txt, written atomically) and used by every later run;\n"
            "`segda bench` says 'tuned' on the device line. Delete the file to go back to defaults, or\n"
            "set SEGDA_NO_TUNED=1 to ignore it for one run.\n\n"
            "options:\n"
            "  --device D   tune only D (repeatable): opencl[:P.D], vulkan[:N]\n"
            "  --quick      a smaller search on fewer shapes (a few minutes on a CPU device)\n"
            "  --budget S   end within about S seconds in all (default 540: a full tune of PoCL and\n"
            "               lavapipe on a 2-core machine ends within 10 minutes; 0: no limit), shared\n"
            "               evenly by the devices. A progress line every 10 s gives the time left. The\n"
            "               search stops early enough to check its best candidate on every shape, and\n"
            "               stores it when it beats the defaults as a full search would. The untuned pass\n"
            "               over every shape always runs (a budget shorter than it is exceeded).\n");
}

static void log_line(void *user, const char *line)
{
    (void)user;
    printf("  %s\n", line);
    fflush(stdout);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1024^3 first, then the model's GEMMs; --quick keeps three forward ones: the most FLOPs,
 * the widest (the stem) and the narrowest (ASPP, 19 output channels). */
static int tune_shapes(bool quick, struct seg_tune_shape *out, int max)
{
    struct seg_tune_shape all[200];
    int n = bench_deeplab_gemm_shapes(!quick, all, 200), count = 0;
    out[count++] = (struct seg_tune_shape){1024, 1024, 1024, false, false};
    if (!quick) {
        /* in a spread order (stride 7 through the list: every layer early on), so that a pass cut
         * short by --budget still covers the model */
        int stride = n % 7 ? 7 : n % 11 ? 11 : 13;
        for (int i = 0; i < n && count < max; i++)
            out[count++] = all[(int)(((long)i * stride) % n)];
        return count;
    }
    int big = 0, wide = 0, narrow = 0;
    for (int i = 1; i < n; i++) {
        double f = (double)all[i].m * all[i].n * all[i].k, fb = (double)all[big].m * all[big].n * all[big].k;
        if (f > fb) big = i;
        if (all[i].n > all[wide].n) wide = i;
        if (all[i].m < all[narrow].m) narrow = i;
    }
    int pick[3] = {big, wide, narrow};
    for (int i = 0; i < 3 && count < max; i++) {
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup |= pick[j] == pick[i];
        if (!dup)
            out[count++] = all[pick[i]];
    }
    return count;
}

int seg_cmd_tune(int argc, char **argv)
{
    const char *devices[16];
    int ndev = 0;
    bool quick = false;
    double budget = 540.0, start = seg_tune_now();
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--device") && i + 1 < argc && ndev < 16) {
            devices[ndev++] = argv[++i];
        } else if (!strcmp(argv[i], "--quick")) {
            quick = true;
        } else if (!strcmp(argv[i], "--budget") && i + 1 < argc) {
            char *end;
            budget = strtod(argv[++i], &end);
            if (*end || end == argv[i] || !(budget >= 0)) {
                fprintf(stderr, "segda tune: --budget '%s' is not a number of seconds\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "segda tune: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    /* Search from the library defaults: backends created below ignore the tuning cache. */
    setenv("SEGDA_NO_TUNED", "1", 1);
    struct seg_device_info devs[32];
    char specs[16][32];
    if (!ndev) {
        int n = 0;
        seg_devices_list(devs, 32, &n, NULL, 0);
        for (int i = 0; i < n && i < 32 && ndev < 16; i++) {
            if (!strcmp(devs[i].backend, "cpu"))
                continue; /* OpenBLAS tunes itself */
            snprintf(specs[ndev], sizeof specs[0], "%s", devs[i].spec);
            devices[ndev] = specs[ndev];
            ndev++;
        }
        if (!ndev) {
            fprintf(stderr, "segda tune: no OpenCL or Vulkan device found (nothing to tune)\n");
            return 1;
        }
    }
    struct seg_tune_shape shapes[200];
    struct seg_tune_opts o = {quick, shapes, tune_shapes(quick, shapes, 200), log_line, NULL, 0.0};
    printf("segda tune: %d GEMM shapes (M x N x K; ^TA, ^TB: transposed operand)%s:", o.nshapes,
           quick ? " (--quick)" : "");
    for (int i = 0; i < o.nshapes && i < 8; i++)
        printf(" %dx%dx%d%s%s", shapes[i].m, shapes[i].n, shapes[i].k, shapes[i].trans_a ? "^TA" : "",
               shapes[i].trans_b ? "^TB" : "");
    printf("%s\n", o.nshapes > 8 ? " ..." : "");
    if (budget > 0)
        printf("segda tune: budget %.0f s for %d device%s\n", budget, ndev, ndev == 1 ? "" : "s");
    fflush(stdout);
    int failures = 0;
    for (int d = 0; d < ndev; d++) {
        struct seg_backend *be = NULL;
        if (seg_backend_create(devices[d], &be)) {
            fprintf(stderr, "segda tune: device %s: %s\n", devices[d], seg_last_error());
            failures++;
            continue;
        }
        const struct seg_device_info *info = seg_backend_device(be);
        /* this device's share of what is left (the earlier ones may have ended early) */
        double now = seg_tune_now();
        o.deadline = budget > 0 ? now + (start + budget - now) / (ndev - d) : 0.0;
        if (budget > 0)
            printf("# %s: %s (%s), about %.0f s\n", info->spec, info->name, info->driver,
                   o.deadline > now ? o.deadline - now : 0.0);
        else
            printf("# %s: %s (%s)\n", info->spec, info->name, info->driver);
        double t0 = now_s();
        enum seg_status st = seg_backend_tune(be, &o);
        if (st == SEG_STATUS_UNSUPPORTED) {
            printf("  nothing to tune: %s\n", seg_last_error());
        } else if (st) {
            fprintf(stderr, "segda tune: %s: %s\n", devices[d], seg_last_error());
            failures++;
        } else {
            const char *t = seg_backend_tuned(be);
            printf("  done in %.0f s: %s\n", now_s() - t0, t[0] ? t : "defaults kept (nothing faster found)");
        }
        seg_backend_destroy(be);
    }
    return failures ? 1 : 0;
}
