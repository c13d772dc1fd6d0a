/* dist.h: data-parallel training over MPI, one process ("rank") per device.
 *
 * A struct seg_dist is the communicator of one training job: the program creates it once
 * (seg_dist_init, before anything else reads argv) and passes it down; nothing here is
 * global. Built without MPI (SEGDA_MPI off), or started without a launcher, it is a job of
 * one rank and every collective returns at once.
 *
 * Reductions give the same bits on every rank by construction: each element is summed by
 * one owner (a reduce-scatter, or a reduce to rank 0) and then copied out (an all-gather or
 * a broadcast), so ranks holding the same weights keep holding the same weights. */
#ifndef SEGDA_DIST_H
#define SEGDA_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

struct seg_dist;

/* Joins the MPI job when the process was started by a launcher (mpirun/mpiexec, srun), else
 * makes a one-rank job. */
enum seg_status seg_dist_init(int *argc, char ***argv, struct seg_dist **out);
/* Leaves the job (MPI_Finalize) and frees d. */
void seg_dist_finalize(struct seg_dist *d);
/* Ends every rank of the job now with exit code `code` (a failed rank must not leave the
 * others waiting in a collective). Returns only for a one-rank job. */
void seg_dist_abort(struct seg_dist *d, int code);
/* NULL counts as a one-rank job. */
int seg_dist_rank(const struct seg_dist *d);
int seg_dist_size(const struct seg_dist *d);
/* The rank among the ranks of this machine (which of its devices to take). */
int seg_dist_local_rank(const struct seg_dist *d);
/* "MPI (Open MPI 4.1.4), 2 ranks" or "one process". */
const char *seg_dist_describe(const struct seg_dist *d, char *buf, size_t n);
/* The collective for autograd (synchronized BN) and the optimizers (gradient averaging);
 * valid while d lives. */
const struct seg_collective *seg_dist_collective(struct seg_dist *d);

/* In place, the elementwise sum over ranks, identical on every rank. */
enum seg_status seg_dist_sum_f64(struct seg_dist *d, double *x, int n);
enum seg_status seg_dist_sum_i64(struct seg_dist *d, int64_t *x, int n);
/* F32 device tensor, through host memory. */
enum seg_status seg_dist_sum_tensor(struct seg_dist *d, struct seg_tensor *t);
/* true on every rank if ok is true on every rank. */
enum seg_status seg_dist_all(struct seg_dist *d, bool *ok);
/* Rank root's bytes / tensor on every rank. */
enum seg_status seg_dist_bcast(struct seg_dist *d, void *buf, size_t nbytes, int root);
enum seg_status seg_dist_bcast_tensor(struct seg_dist *d, struct seg_tensor *t, int root);
/* Every parameter and buffer of m set to rank 0's (the start of training: every rank then
 * holds the same weights whatever its initialization). */
enum seg_status seg_dist_bcast_model(struct seg_dist *d, struct seg_model *m);
/* Concatenates every rank's x[0..n) in rank order into *out (malloc'd, *nout floats) on
 * every rank. */
enum seg_status seg_dist_allgatherv_f32(struct seg_dist *d, const float *x, size_t n, float **out, size_t *nout);
/* Every gradient of m's trainable parameters replaced by its mean over the ranks. The
 * gradients travel in buckets of about SEG_DIST_BUCKET_BYTES: while bucket k is reduced
 * (non-blocking MPI), bucket k + 1 is read from the device and bucket k - 1 written back.
 * A parameter with a gradient on some ranks only gets zeros where it has none (the union). */
#define SEG_DIST_BUCKET_BYTES (16u << 20)
enum seg_status seg_dist_average_grads(struct seg_dist *d, struct seg_model *m);
/* Another bucket size (tests: many buckets on a tiny model). */
void seg_dist_set_bucket_bytes(struct seg_dist *d, size_t bytes);
/* Seconds spent in seg_dist_average_grads since the last call (bench). */
double seg_dist_take_comm_seconds(struct seg_dist *d);
/* Waits for every rank, sleeping rather than spinning (an idle rank leaves its core to the
 * busy ones). */
enum seg_status seg_dist_barrier(struct seg_dist *d);

#endif
