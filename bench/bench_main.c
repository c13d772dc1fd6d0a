/* bench_main.c: `segda bench` (suites on every device, table / JSON / CSV) and
 * `segda bench compare A.json B.json ...` (a side-by-side markdown table). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "bench/bench.h"
#include "dist/dist.h"

static const struct {
    const char *name;
    enum seg_status (*fn)(struct seg_backend *, const struct bench_opts *, struct bench_list *);
    const char *what;
} suites[] = {
    {"peak", bench_suite_peak, "memory bandwidth (copy, add) and FP32 FMA throughput (GFLOP/s)"},
    {"gemm", bench_suite_gemm, "square SGEMM and the GEMMs of DeepLab-v2 ResNet-101's convolutions"},
    {"conv", bench_suite_conv, "every distinct DeepLab-v2 ResNet-101 conv at 321x321 (and 512x1024 with --full): fwd (im2col + GEMM), fwd-direct (implicit GEMM), fwd-chosen (the algorithm training runs, measured at first use and cached), bwd-data, bwd-weight"},
    {"memory", bench_suite_memory, "softmax, bilinear resize, batch norm, add (GB/s)"},
    {"step", bench_suite_step, "one source-only DeepLab-v2 training step (ms, it/s, peak memory)"},
};
#define NSUITES ((int)(sizeof suites / sizeof suites[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: segda bench [SUITE...] [options]\n"
               "       segda bench compare A.json B.json ...\n\n"
               "Measures every device (each OpenCL and Vulkan device and the cpu backend) in the same run,\n"
               "so ratios between them are fair. Suites (default: all):\n");
    for (int i = 0; i < NSUITES; i++)
        fprintf(f, "  %-8s %s\n", suites[i].name, suites[i].what);
    fprintf(f, "\noptions:\n"
               "  --device D     measure only D (repeatable): cpu, opencl[:P.D], vulkan[:N]\n"
               "  --runs N       timed runs per test after one warm-up (default 5)\n"
               "  --budget S     stop adding runs to a test after S seconds (default 2)\n"
               "  --full         full-size shapes (512x1024 convs, 2048^3 GEMM, bigger buffers)\n"
               "  --step-arch A  step suite architecture (default deeplabv2_resnet101)\n"
               "  under mpirun -np N the step suite measures data-parallel scaling: one source-only step\n"
               "                 of N images, rank 0 alone, then N ranks of one image (steps/s, speedup)\n"
               "  --step-size S  step suite input: S (square) or HxW (default 321)\n"
               "  --filter TEXT  only the tests whose op or shape contains TEXT (e.g. m=1024, layer4)\n"
               "  --json FILE    write {\"build\": ..., \"records\": [...]} (compare reads it)\n"
               "  --csv FILE     write the records as CSV\n"
               "Times are wall clock around a queue drain: the median, min and max of the runs.\n"
               "DEVICE: the median time between device timestamps around each run (OpenCL: profiled\n"
               "empty marker kernels, so every kernel of a CLBlast call counts; Vulkan: vkCmdWriteTimestamp;\n"
               "'-' where the backend has none); '*' marks a device time under 75%% of the wall time\n"
               "(host-side overhead). %% of peak: GFLOP/s against the FP32 FMA peak and GB/s against the\n"
               "copy/add bandwidth measured on the same device in the same run (gemm and conv alone\n"
               "measure the FMA peak first). The device line says 'tuned: ...' when the backend loaded\n"
               "parameters from `segda tune` (SEGDA_NO_TUNED=1 ignores them).\n");
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* Writes to path.tmp.PID and renames, so a crash never leaves half a file. */
static int write_json(const char *path, const struct bench_list *l)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "segda bench: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "{\"build\": {\"segda\": \"0.1.0\", \"compiler\": \"%s\", \"date\": \"%s\"},\n \"records\": [\n",
            __VERSION__, __DATE__);
    for (int i = 0; i < l->n; i++) {
        const struct bench_record *r = &l->v[i];
        fprintf(f, "  {\"suite\": ");
        json_str(f, r->suite);
        fprintf(f, ", \"backend\": ");
        json_str(f, r->backend);
        fprintf(f, ", \"device\": ");
        json_str(f, r->device);
        fprintf(f, ", \"driver\": ");
        json_str(f, r->driver);
        fprintf(f, ", \"op\": ");
        json_str(f, r->op);
        fprintf(f, ", \"shape\": ");
        json_str(f, r->shape);
        fprintf(f, ", \"flops\": %.6g, \"bytes\": %.6g, \"ms_median\": %.6g, \"ms_min\": %.6g, "
                   "\"ms_max\": %.6g, \"ms_device\": %.6g, \"gflops\": %.6g, \"gbps\": %.6g, \"peak_pct\": %.4g, "
                   "\"mem_mb\": %.6g, \"tuned\": %s",
                r->flops, r->bytes, r->ms_median, r->ms_min, r->ms_max, r->ms_device, r->gflops, r->gbps,
                r->peak_pct, r->mem_mb, r->tuned ? "true" : "false");
        if (r->has_counts)
            fprintf(f, ", \"syncs\": %.4g, \"dispatches\": %.6g, \"barriers\": %.6g", r->syncs, r->dispatches,
                    r->barriers);
        if (r->algo[0]) {
            fprintf(f, ", \"algo\": ");
            json_str(f, r->algo);
        }
        if (r->algo_how[0]) {
            fprintf(f, ", \"algo_how\": ");
            json_str(f, r->algo_how);
        }
        fprintf(f, "}%s\n", i + 1 < l->n ? "," : "");
    }
    fprintf(f, " ]}\n");
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "segda bench: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int write_csv(const char *path, const struct bench_list *l)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "segda bench: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "suite,backend,device,driver,op,shape,flops,bytes,ms_median,ms_min,ms_max,ms_device,gflops,gbps,"
               "peak_pct,mem_mb,tuned,syncs,dispatches,barriers,algo\n");
    for (int i = 0; i < l->n; i++) {
        const struct bench_record *r = &l->v[i];
        fprintf(f, "%s,%s,\"%s\",\"%s\",\"%s\",\"%s\",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4g,%.6g,%d,",
                r->suite, r->backend, r->device, r->driver, r->op, r->shape, r->flops, r->bytes, r->ms_median,
                r->ms_min, r->ms_max, r->ms_device, r->gflops, r->gbps, r->peak_pct, r->mem_mb, r->tuned);
        if (r->has_counts)
            fprintf(f, "%.4g,%.6g,%.6g,%s\n", r->syncs, r->dispatches, r->barriers, r->algo);
        else
            fprintf(f, ",,,%s\n", r->algo);
    }
    bool ok = fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        fprintf(stderr, "segda bench: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static void print_record(const struct bench_record *r)
{
    char rate[48] = "";
    if (r->gflops > 0)
        snprintf(rate, sizeof rate, "%9.1f GFLOP/s", r->gflops);
    else if (r->gbps > 0)
        snprintf(rate, sizeof rate, "%9.2f GB/s", r->gbps);
    else if (r->ms_median > 0)
        snprintf(rate, sizeof rate, "%9.2f it/s", 1e3 / r->ms_median);
    char extra[224] = "";
    if (r->peak_pct > 0)
        snprintf(extra, sizeof extra, " %5.1f%% of peak", r->peak_pct);
    if (r->mem_mb > 0 && r->has_counts)
        snprintf(extra, sizeof extra, " peak mem %.0f MiB; a step: %.3g syncs, %.0f kernels, %.0f barriers",
                 r->mem_mb, r->syncs, r->dispatches, r->barriers);
    else if (r->mem_mb > 0)
        snprintf(extra, sizeof extra, " peak mem %.0f MiB", r->mem_mb);
    if (r->algo[0] && !strcmp(r->op, "fwd-chosen")) {
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, " [%s: %.80s]", r->algo, r->algo_how);
    }
    char dev[24] = "           -  ";
    if (r->ms_device > 0)
        snprintf(dev, sizeof dev, "%10.3f ms%c", r->ms_device,
                 r->ms_median > 0.5 && r->ms_device < 0.75 * r->ms_median ? '*' : ' ');
    printf("%-7s %-7s %-14s %-46.46s %10.3f ms [%8.3f, %8.3f] %s %s%s\n", r->suite, r->backend, r->op,
           r->shape, r->ms_median, r->ms_min, r->ms_max, dev, rate, extra);
    fflush(stdout);
}

/* ---- compare --------------------------------------------------------------------------- */

struct crec {
    char   key[256], col[320];
    double ms, rate;
    bool   flops;
};

static bool get_str(const char *line, const char *key, char *out, size_t n)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(line, pat);
    if (!p)
        return false;
    p += strlen(pat);
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < n) {
        if (*p == '\\' && p[1])
            p++;
        out[i++] = *p++;
    }
    out[i] = '\0';
    return true;
}

static double get_num(const char *line, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    return p ? atof(p + strlen(pat)) : 0.0;
}

static int cmd_compare(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: segda bench compare A.json B.json ...\n");
        return 2;
    }
    struct crec *recs = NULL;
    int n = 0, cap = 0;
    char cols[16][320];
    int ncols = 0;
    for (int a = 0; a < argc; a++) {
        FILE *f = fopen(argv[a], "r");
        if (!f) {
            fprintf(stderr, "segda bench compare: cannot read %s: %s\n", argv[a], strerror(errno));
            free(recs);
            return 1;
        }
        char line[2048];
        int got = 0;
        while (fgets(line, sizeof line, f)) {
            char suite[32], backend[32], device[128], op[64], shape[128];
            if (!get_str(line, "suite", suite, sizeof suite) || !get_str(line, "backend", backend, sizeof backend) ||
                !get_str(line, "device", device, sizeof device) || !get_str(line, "op", op, sizeof op) ||
                !get_str(line, "shape", shape, sizeof shape))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                recs = realloc(recs, (size_t)cap * sizeof *recs);
            }
            struct crec *r = &recs[n++];
            snprintf(r->key, sizeof r->key, "%s | %s | %s", suite, op, shape);
            /* with several files, each column names its file too: the same device measured
             * twice (before / after a change, tuned / untuned) stays two columns */
            const char *base = strrchr(argv[a], '/') ? strrchr(argv[a], '/') + 1 : argv[a];
            snprintf(r->col, sizeof r->col, "%s %.90s%s%s%.40s%s", backend, device,
                     strstr(line, "\"tuned\": true") ? " (tuned)" : "", argc > 1 ? " [" : "",
                     argc > 1 ? base : "", argc > 1 ? "]" : "");
            r->ms = get_num(line, "ms_median");
            double gf = get_num(line, "gflops"), gb = get_num(line, "gbps");
            r->flops = gf > 0;
            r->rate = gf > 0 ? gf : gb;
            bool seen = false;
            for (int c = 0; c < ncols; c++)
                seen |= !strcmp(cols[c], r->col);
            if (!seen && ncols < 16)
                snprintf(cols[ncols++], sizeof cols[0], "%s", r->col);
            got++;
        }
        fclose(f);
        if (!got) {
            fprintf(stderr, "segda bench compare: %s holds no bench records\n", argv[a]);
            free(recs);
            return 1;
        }
    }
    printf("| suite | op | shape |");
    for (int c = 0; c < ncols; c++)
        printf(" %s |", cols[c]);
    if (ncols > 1)
        printf(" ratio (first / last) |");
    printf("\n|---|---|---|");
    for (int c = 0; c < ncols + (ncols > 1); c++)
        printf("---|");
    printf("\n");
    for (int i = 0; i < n; i++) {
        bool first = true;
        for (int j = 0; j < i; j++)
            first &= strcmp(recs[j].key, recs[i].key) != 0;
        if (!first)
            continue;
        printf("| %s |", recs[i].key);
        double ms_first = 0, ms_last = 0;
        for (int c = 0; c < ncols; c++) {
            const struct crec *hit = NULL;
            for (int j = 0; j < n; j++)
                if (!strcmp(recs[j].key, recs[i].key) && !strcmp(recs[j].col, cols[c]))
                    hit = &recs[j];
            if (!hit) {
                printf(" - |");
                continue;
            }
            if (c == 0)
                ms_first = hit->ms;
            ms_last = hit->ms;
            if (hit->rate > 0)
                printf(" %.3f ms (%.1f %s) |", hit->ms, hit->rate, hit->flops ? "GFLOP/s" : "GB/s");
            else
                printf(" %.3f ms |", hit->ms);
        }
        if (ncols > 1)
            printf(" %.2fx |", ms_last > 0 ? ms_first / ms_last : 0.0);
        printf("\n");
    }
    free(recs);
    return 0;
}

static int bench_run(int argc, char **argv, struct seg_dist *dist);

int seg_cmd_bench(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "compare"))
        return cmd_compare(argc - 1, argv + 1);
    struct seg_dist *dist = NULL;
    if (seg_dist_init(&argc, &argv, &dist)) {
        fprintf(stderr, "segda bench: %s\n", seg_last_error());
        return 1;
    }
    if (seg_dist_rank(dist) > 0 && !freopen("/dev/null", "w", stdout)) /* rank 0 reports */
        fprintf(stderr, "segda bench: rank %d: cannot silence stdout\n", seg_dist_rank(dist));
    int rc = bench_run(argc, argv, dist);
    if (rc == 1 && seg_dist_size(dist) > 1)
        seg_dist_abort(dist, rc);
    seg_dist_finalize(dist);
    return rc;
}

static int bench_run(int argc, char **argv, struct seg_dist *dist)
{
    struct bench_opts o = {5, 2.0, false, 321, 321, "deeplabv2_resnet101", dist};
    const char *devices[16], *json = NULL, *csv = NULL, *filter = NULL;
    int ndev = 0;
    bool want[NSUITES] = {0}, any = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--device") && more && ndev < 16) {
            devices[ndev++] = argv[++i];
        } else if (!strcmp(a, "--runs") && more) {
            o.runs = atoi(argv[++i]);
        } else if (!strcmp(a, "--budget") && more) {
            o.budget_s = atof(argv[++i]);
        } else if (!strcmp(a, "--full")) {
            o.full = true;
        } else if (!strcmp(a, "--step-size") && more) {
            const char *v = argv[++i];
            if (sscanf(v, "%dx%d", &o.step_h, &o.step_w) != 2)
                o.step_h = o.step_w = atoi(v);
        } else if (!strcmp(a, "--step-arch") && more) {
            o.step_arch = argv[++i];
        } else if (!strcmp(a, "--filter") && more) {
            filter = argv[++i];
        } else if (!strcmp(a, "--json") && more) {
            json = argv[++i];
        } else if (!strcmp(a, "--csv") && more) {
            csv = argv[++i];
        } else {
            int k = 0;
            while (k < NSUITES && strcmp(a, suites[k].name))
                k++;
            if (k == NSUITES) {
                fprintf(stderr, "segda bench: unknown suite or option '%s'\n", a);
                usage(stderr);
                return 2;
            }
            want[k] = any = true;
        }
    }
    if (o.runs < 1 || o.step_h < 33 || o.step_w < 33 || o.budget_s <= 0) {
        fprintf(stderr, "segda bench: --runs >= 1, --step-size >= 33 (S or HxW) and --budget > 0\n");
        return 2;
    }
    if (!any)
        for (int k = 0; k < NSUITES; k++)
            want[k] = true;
    if (seg_dist_size(dist) > 1) { /* under mpirun: data-parallel scaling, one device a rank */
        for (int k = 0; k < NSUITES; k++)
            if (want[k] && strcmp(suites[k].name, "step")) {
                if (any && seg_dist_rank(dist) == 0)
                    fprintf(stderr, "segda bench: under mpirun only the step suite (scaling) runs; %s skipped\n",
                            suites[k].name);
                want[k] = false;
            }
        static char mine[256];
        if (seg_app_rank_device(ndev ? devices[0] : "auto", dist, mine, sizeof mine))
            return 2;
        devices[0] = mine;
        ndev = 1;
        for (int k = 0; k < NSUITES; k++)
            want[k] = !strcmp(suites[k].name, "step");
    }
    struct seg_device_info devs[32];
    char specs[32][32];
    if (!ndev) {
        int n = 0;
        seg_devices_list(devs, 32, &n, NULL, 0);
        for (int i = 0; i < n && i < 32; i++) {
            snprintf(specs[i], sizeof specs[i], "%s", devs[i].spec);
            devices[ndev++] = specs[i];
            if (ndev == 16)
                break;
        }
    }
    struct bench_list all = {0};
    int failures = 0;
    printf("%-7s %-7s %-14s %-46s %10s    %-20s %13s\n", "SUITE", "BACKEND", "OP", "SHAPE", "MEDIAN",
           "[MIN, MAX]", "DEVICE");
    for (int d = 0; d < ndev; d++) {
        struct seg_backend *be = NULL;
        if (seg_backend_create(devices[d], &be)) {
            fprintf(stderr, "segda bench: device %s: %s\n", devices[d], seg_last_error());
            failures++;
            continue;
        }
        const struct seg_device_info *info = seg_backend_device(be);
        const char *tuned = seg_backend_tuned(be);
        const char *gemm = seg_backend_gemm_kernel(be);
        printf("# %s: %s (%s) %s%s%s%s\n", info->spec, info->name, info->driver, tuned[0] ? "tuned: " : "untuned",
               tuned, gemm[0] ? "; GEMM: " : "", gemm);
        struct bench_list l = {0};
        l.filter = filter;
        /* GEMM and conv records are rated against the FMA peak: measure it when the peak
         * suite does not run. */
        if (!want[0] && (want[1] || want[2])) {
            enum seg_status st = bench_fma_peak(be, &o, &l);
            for (int i = 0; i < l.n; i++)
                print_record(&l.v[i]);
            if (st)
                fprintf(stderr, "segda bench: fma peak on %s: %s\n", devices[d], seg_last_error());
        }
        for (int k = 0; k < NSUITES; k++) {
            if (!want[k])
                continue;
            int before = l.n;
            enum seg_status st = suites[k].fn(be, &o, &l);
            /* Records get their share of the peaks measured above: GB/s of the bandwidth peak,
             * GFLOP/s (GEMM, conv) of the FMA peak. */
            for (int i = before; i < l.n; i++) {
                if (l.v[i].gflops > 0 && l.peak_gflops > 0)
                    l.v[i].peak_pct = 100.0 * l.v[i].gflops / l.peak_gflops;
                else if (l.v[i].gbps > 0 && l.peak_gbps > 0)
                    l.v[i].peak_pct = 100.0 * l.v[i].gbps / l.peak_gbps;
                print_record(&l.v[i]);
            }
            if (st) {
                fprintf(stderr, "segda bench: %s on %s: %s\n", suites[k].name, devices[d], seg_last_error());
                failures++;
            }
        }
        for (int i = 0; i < l.n; i++) {
            if (all.n == all.cap) {
                all.cap = all.cap ? all.cap * 2 : 256;
                all.v = realloc(all.v, (size_t)all.cap * sizeof *all.v);
            }
            all.v[all.n++] = l.v[i];
        }
        free(l.v);
        seg_backend_destroy(be);
    }
    bool root = seg_dist_rank(dist) == 0;
    if (root && json && write_json(json, &all))
        failures++;
    if (root && csv && write_csv(csv, &all))
        failures++;
    free(all.v);
    return failures ? 1 : 0;
}
