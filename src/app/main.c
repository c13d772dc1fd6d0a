/* main.c: the segda command (devices for now). */
#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "app/run_log.h"
#include "bench/bench.h"
#include "data/data.h"
#include "segda.h"

static void human_bytes(uint64_t b, char *out, size_t n)
{
    if (b >= (1ull << 30))
        snprintf(out, n, "%.1f GiB", (double)b / (1ull << 30));
    else
        snprintf(out, n, "%.0f MiB", (double)b / (1ull << 20));
}

int seg_cmd_devices(int argc, char **argv)
{
    if (argc > 0) {
        printf("usage: segda devices\n\nLists every OpenCL platform and device, every Vulkan device and the cpu\n"
               "backend: the name --device takes, memory, the largest buffer (MAXBUF), compute units,\n"
               "fp16, subgroup size, matrix hardware segda can use (SEGDA_VK_GEMM=coopmat), driver.\n");
        return strcmp(argv[0], "--help") && strcmp(argv[0], "-h") ? 2 : 0;
    }
    struct seg_device_info devs[64];
    int n = 0;
    char notes[2048];
    seg_devices_list(devs, 64, &n, notes, sizeof notes);
    printf("%-12s %-44s %-10s %-10s %4s %-5s %-8s %-18s %s\n", "DEVICE", "NAME", "MEMORY", "MAXBUF", "CU", "FP16",
           "SUBGROUP", "MATRIX", "DRIVER");
    for (int i = 0; i < n && i < 64; i++) {
        char mem[32];
        human_bytes(devs[i].memory_bytes, mem, sizeof mem);
        char maxbuf[32] = "-";
        if (devs[i].max_buffer_bytes)
            human_bytes(devs[i].max_buffer_bytes, maxbuf, sizeof maxbuf);
        char sg[16] = "-";
        if (devs[i].subgroup_size)
            snprintf(sg, sizeof sg, "%u", devs[i].subgroup_size);
        printf("%-12s %-44.44s %-10s %-10s %4u %-5s %-8s %-18s %s\n", devs[i].spec, devs[i].name, mem, maxbuf,
               devs[i].compute_units, devs[i].fp16 ? "yes" : "no", sg, devs[i].matrix[0] ? devs[i].matrix : "-",
               devs[i].driver);
    }
    if (notes[0])
        fprintf(stderr, "%s", notes);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"devices", seg_cmd_devices, "list OpenCL, Vulkan and cpu devices"},
    {"demo", seg_cmd_demo, "the synthetic benchmark end to end: train, adapt, compare"},
    {"train", seg_cmd_train, "train a method from an INI configuration (resumable)"},
    {"eval", seg_cmd_eval, "mIoU of a checkpoint on the target validation set"},
    {"predict", seg_cmd_predict, "colorized predictions and overlays for images"},
    {"pseudo-label", seg_cmd_pseudo_label, "class-wise thresholded pseudo labels of the target set"},
    {"synth", seg_cmd_synth, "generate the synthetic domain-shift benchmark"},
    {"infer", seg_cmd_infer, "run a model on one image, save the raw logits (.npy)"},
    {"bench", seg_cmd_bench, "kernel and training throughput; compare GPUs"},
    {"tune", seg_cmd_tune, "tune the GEMM kernels of each OpenCL / Vulkan device (cached per device)"},
};
#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: segda <command> [options]\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nrun 'segda <command> --help' for a command's options; segda --version: version and commit.\n"
               "exit codes: 0 ok, 1 failure, 2 usage, 3 no device, 4 bad input file, 5 training diverged,\n"
               "130 interrupted (state saved).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("segda %s\n", seg_version_string());
        return 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "segda: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
