/* run_log.h: what a training run records beside metrics.jsonl: OUT/run.json (what ran,
 * where, when) and TensorBoard event files (train.tensorboard). Rank 0 alone calls these. */
#ifndef SEGDA_RUN_LOG_H
#define SEGDA_RUN_LOG_H

#include <stdio.h>

#include "data/data.h"
#include "train/trainer.h"

struct seg_tb_writer;

struct seg_run_log {
    bool                  active;
    struct seg_tb_writer *tb;         /* NULL: train.tensorboard off, or turned off by an error */
    char                  path[4200]; /* OUT/run.json */
    char                 *fields;     /* the start record's fields, written again at the end */
};

/* "0.1.0 (git 1a2b3c4d5e6f)", or "0.1.0 (git unknown)" outside a checkout. */
const char *seg_version_string(void);

/* At the start, after OUT/config.ini is saved and the trainer is built: writes run.json
 * (atomically, "status": "running") and opens the event file. */
enum seg_status seg_run_log_start(struct seg_run_log *l, const struct seg_trainer *t, const struct seg_backend *be,
                                  int nranks);
/* A metrics line's scalars: every loss term, the learning rate(s), it/s, peak memory. A
 * failure turns the event file off (the run goes on) and is returned. */
enum seg_status seg_run_log_step(struct seg_run_log *l, const struct seg_trainer *t, double it_s,
                                 const struct seg_losses *losses);
/* An evaluation's scalars (each view's mIoU, pixel accuracy, per-class IoU) and the
 * input | ground truth | prediction grid of the first val image as a PNG image summary. */
enum seg_status seg_run_log_eval(struct seg_run_log *l, const struct seg_trainer *t,
                                 const struct seg_metrics_report *rep);
/* At the end: run.json again with the end time, exit code and status; closes the events. */
enum seg_status seg_run_log_end(struct seg_run_log *l, int exit_code, int64_t iter);

/* `, "iou": {"road": 0.9123, ...}` for metrics.jsonl's evaluation line (null: class absent). */
void seg_run_log_jsonl_iou(FILE *f, const struct seg_metrics_report *rep);

/* tools/plot_demo.py (the source tree's) on json: prefix.png and prefix.svg. Python 3 with
 * matplotlib may be missing: then a note on stderr says so, and the result is OK. */
enum seg_status seg_run_plot_demo(const char *json, const char *prefix);

#endif
