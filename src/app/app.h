/* app.h: pieces shared by the segda subcommands. */
#ifndef SEGDA_APP_H
#define SEGDA_APP_H

#include <stdio.h>

#include "segda.h"

/* Command entry points: argv[0] is the first option (the command name is stripped). */
int seg_cmd_devices(int argc, char **argv);
/* BiDA's pseudo-label report (bida_report.c): whether weights is a BiDA checkpoint, and the
 * density / accuracy table of its static, dynamic, calibrated and hybrid labels. */
struct seg_config;
struct seg_model;
struct seg_ag;
bool seg_bida_report_applies(const char *weights);
enum seg_status seg_bida_report(const char *weights, const struct seg_config *cfg, struct seg_model *m,
                                struct seg_ag *ag, int max_batches);
int seg_cmd_infer(int argc, char **argv);
int seg_cmd_train(int argc, char **argv);
int seg_cmd_eval(int argc, char **argv);
int seg_cmd_predict(int argc, char **argv);
int seg_cmd_demo(int argc, char **argv);
int seg_cmd_pseudo_label(int argc, char **argv);

struct seg_config;
/* Runs a training configuration to its end; returns an exit code. best_miou (optional)
 * receives the best target mIoU evaluated (-1 if none). */
struct seg_dist;
/* One training run; dist: the data-parallel job this process is a rank of (NULL: alone).
 * Rank 0 alone prints, logs and writes files. */
int seg_train_run(const struct seg_config *cfg, const char *resume, bool quiet, double *best_miou,
                  struct seg_dist *dist);

enum seg_status seg_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

/* Options of a command: a table, parsed by seg_args_parse. */
enum seg_arg_kind { SEG_ARG_STR, SEG_ARG_FLAG, SEG_ARG_LONG, SEG_ARG_DOUBLE, SEG_ARG_LIST };
#define SEG_ARG_LIST_MAX 64
struct seg_arg_list {
    const char *v[SEG_ARG_LIST_MAX];
    int         n;
};
struct seg_arg {
    const char       *name; /* "--weights" */
    enum seg_arg_kind kind;
    void             *dst;  /* const char **, bool *, long *, double * or struct seg_arg_list * */
};
/* Returns -1 to go on, or the exit code to return (0 after --help, 2 on a bad option). */
int seg_args_parse(const char *cmd, int argc, char **argv, const struct seg_arg *args, int nargs,
                   void (*usage)(FILE *));

struct seg_backend;
struct seg_model;
/* The model stored in weights (architecture from its metadata, BN on running statistics)
 * on a new backend for device. */
/* The device of this data-parallel rank: from a comma-separated list, the local rank's
 * entry; a kind without an index (opencl, vulkan, auto), the local rank's device of that
 * kind on this machine; anything else as given. */
enum seg_status seg_app_rank_device(const char *spec, struct seg_dist *dist, char *out, size_t n);
/* seg_backend_create, and one line on stderr saying which device "auto" chose and why. */
enum seg_status seg_app_backend_create(const char *spec, struct seg_backend **be);
enum seg_status seg_app_open_model(const char *weights, const char *device, struct seg_backend **be,
                                   struct seg_model **m);

/* check.c: the files, folders and first samples a command reads, before it starts. Each
 * problem is one line on stderr naming the key and the path. */
struct seg_check {
    const char *cmd;                      /* "train", for the messages */
    bool        init;                     /* model.init and the method's weight files */
    bool        source, target, val;      /* the training sets and the validation set */
    bool        target_pass;              /* the target's training images in one pass (pseudo-label) */
};
/* The roles a training run of cfg reads. */
void seg_check_for_training(const struct seg_config *cfg, struct seg_check *o);
/* Returns 0, or the exit code of the problems found (2 a value, 4 a file or its data). */
int seg_check_run(const struct seg_config *cfg, const struct seg_check *o);
/* `segda train --check` (full) or `--check-config` (values and models only): the exit code. */
int seg_train_check(struct seg_config *cfg, const char *name, bool full);
/* Removes NAME.tmp.PID files of dir whose process is gone (a run killed while saving),
 * naming each. */
void seg_clean_stale_temporaries(const char *cmd, const char *dir);

/* Exit codes of every command. */
enum { SEG_EXIT_OK = 0, SEG_EXIT_FAIL = 1, SEG_EXIT_USAGE = 2, SEG_EXIT_NO_DEVICE = 3,
       SEG_EXIT_BAD_INPUT = 4, SEG_EXIT_DIVERGED = 5, SEG_EXIT_INTERRUPTED = 130 };
int seg_exit_code(enum seg_status st);

#endif
