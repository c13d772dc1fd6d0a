/* cmd_synth.c: `segda synth`: writes the synthetic domain-shift benchmark (source in the
 * GTA5 layout, target in the Cityscapes layout) so the real loaders read it unchanged. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: segda synth --out DIR [--seed S] [--size WxH] [--count N] [--val-count M]\n"
            "                   [--dev-count M]\n\n"
            "Generates street scenes with a strong appearance shift between two domains:\n"
            "  DIR/source  GTA5 layout: images/NNNNN.png, labels/NNNNN.png (labelIds), train.txt\n"
            "  DIR/target  Cityscapes layout: leftImg8bit/{train,val,dev}/<city>/..._leftImg8bit.png,\n"
            "              gtFine/{train,val,dev}/<city>/..._gtFine_labelIds.png, train.txt,\n"
            "              val.txt, dev.txt\n"
            "val is the split results are reported on; dev (data.val_split = dev) is a held-out\n"
            "split of other scenes for choosing settings, so that nothing is tuned on val.\n"
            "Use them as data.source = gta5 (root DIR/source) and data.target = cityscapes\n"
            "(root DIR/target). The same seed gives the same bytes.\n\n"
            "  --out DIR        output folder (created)\n"
            "  --seed S         random seed [1]\n"
            "  --size WxH       image size [128x64]\n"
            "  --count N        source images and target train images [200]\n"
            "  --val-count M    target val images [N/4, at least 1]\n"
            "  --dev-count M    target dev images [as many as val]\n");
}

static bool parse_u64(const char *s, unsigned long long *v)
{
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return !errno && end != s && !*end && s[0] != '-';
}

static bool parse_int(const char *s, int lo, int hi, int *v)
{
    unsigned long long u;
    if (!parse_u64(s, &u) || u < (unsigned long long)lo || u > (unsigned long long)hi)
        return false;
    *v = (int)u;
    return true;
}

/* "WxH", 16..8192 each */
static bool parse_size(const char *s, int *w, int *h)
{
    int end = 0;
    return sscanf(s, "%dx%d%n", w, h, &end) == 2 && !s[end] && *w >= 16 && *h >= 16 && *w <= 8192 &&
           *h <= 8192;
}

struct progress {
    const char *last;
    bool        tty;   /* redraw one line; else a line per quarter */
};

static void on_progress(void *ctx, const char *what, int done, int total)
{
    struct progress *p = ctx;
    if (!p->tty) {
        if (done == total || done % ((total + 3) / 4) == 0)
            printf("synth: %-12s %5d / %d\n", what, done, total);
        return;
    }
    if (p->last != what) {
        if (p->last)
            fputc('\n', stdout);
        p->last = what;
    }
    if (done == total || done % 25 == 0) {
        printf("\rsynth: %-12s %5d / %d", what, done, total);
        fflush(stdout);
    }
}

int seg_cmd_synth(int argc, char **argv)
{
    struct seg_synth_opts o;
    seg_synth_defaults(&o);
    int val = -1, dev = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "segda synth: %s needs a value (or is unknown)\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        unsigned long long u;
        bool ok = true;
        if (!strcmp(a, "--out"))
            o.out = v;
        else if (!strcmp(a, "--seed"))
            ok = parse_u64(v, &u) && ((o.seed = u), true);
        else if (!strcmp(a, "--size"))
            ok = parse_size(v, &o.w, &o.h);
        else if (!strcmp(a, "--count"))
            ok = parse_int(v, 1, 1000000, &o.n_source) && ((o.n_target = o.n_source), true);
        else if (!strcmp(a, "--val-count"))
            ok = parse_int(v, 0, 1000000, &val);
        else if (!strcmp(a, "--dev-count"))
            ok = parse_int(v, 0, 1000000, &dev);
        else {
            fprintf(stderr, "segda synth: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "segda synth: bad value '%s' for %s\n", v, a);
            return 2;
        }
    }
    if (!o.out) {
        fprintf(stderr, "segda synth: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    o.n_val = val >= 0 ? val : (o.n_target / 4 > 0 ? o.n_target / 4 : 1);
    o.n_dev = dev >= 0 ? dev : o.n_val;
    struct progress p = {.tty = isatty(fileno(stdout))};
    o.progress = on_progress;
    o.progress_ctx = &p;
    printf("synth: %dx%d, seed %llu -> %s\n", o.w, o.h, (unsigned long long)o.seed, o.out);
    enum seg_status st = seg_synth_generate(&o);
    if (p.last)
        fputc('\n', stdout);
    if (st != SEG_STATUS_OK) {
        fprintf(stderr, "segda synth: %s\n", seg_last_error());
        return st == SEG_STATUS_INVALID ? 2 : st == SEG_STATUS_IO || st == SEG_STATUS_FORMAT ? 4 : 1;
    }
    printf("synth: wrote %d source, %d target train, %d target val, %d target dev images to %s\n",
           o.n_source, o.n_target, o.n_val, o.n_dev, o.out);
    return 0;
}
