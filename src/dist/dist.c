/* dist.c: the data-parallel communicator (see dist.h): MPI when built with SEGDA_MPI and
 * started by a launcher, else a one-rank job whose collectives return at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SEGDA_HAVE_MPI
#include <mpi.h>
#endif

#include "dist/dist.h"

struct seg_dist {
    int                   rank, size, local_rank;
    bool                  mpi;          /* this process called MPI_Init */
#ifdef SEGDA_HAVE_MPI
    MPI_Comm              comm;
#endif
    struct seg_collective coll;
    float                *stage;        /* host staging of seg_dist_sum_tensor */
    size_t                stage_cap;
    float                *bucket[3], *chunk[3]; /* gradient buckets in flight */
    size_t                bucket_cap;   /* floats each */
    size_t                bucket_bytes; /* target size of a bucket */
    double                comm_s;
};

static enum seg_status coll_sum(void *ctx, struct seg_tensor *t) { return seg_dist_sum_tensor(ctx, t); }
static enum seg_status coll_average(void *ctx, struct seg_model *m) { return seg_dist_average_grads(ctx, m); }

#ifdef SEGDA_HAVE_MPI
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static enum seg_status check_f32(const struct seg_tensor *t)
{
    if (t->dtype != SEG_DTYPE_F32)
        return seg_error(SEG_STATUS_INVALID, "dist: only F32 tensors are reduced");
    if (seg_tensor_numel(t) > INT32_MAX / 2)
        return seg_error(SEG_STATUS_INVALID, "dist: tensor of %lld elements is too large",
                         (long long)seg_tensor_numel(t));
    return SEG_STATUS_OK;
}

static enum seg_status mpi_err(int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return SEG_STATUS_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return seg_error(SEG_STATUS_BACKEND, "MPI %s: %s", what, msg);
}
#define MPI_TRY(call, what)                                 \
    do {                                                    \
        enum seg_status mpi_st_ = mpi_err((call), (what));  \
        if (mpi_st_)                                        \
            return mpi_st_;                                 \
    } while (0)

/* In place: rank 0 sums every rank's x in rank order and broadcasts the result, so every
 * rank holds the same bits (an allreduce may order the sum differently on each rank). */
static enum seg_status sum_at_root_then_bcast(struct seg_dist *d, void *x, int n, MPI_Datatype type)
{
    MPI_TRY(MPI_Reduce(d->rank ? x : MPI_IN_PLACE, x, n, type, MPI_SUM, 0, d->comm), "reduce");
    MPI_TRY(MPI_Bcast(x, n, type, 0, d->comm), "broadcast");
    return SEG_STATUS_OK;
}

static bool under_launcher(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return true;
    return false;
}
#endif

enum seg_status seg_dist_init(int *argc, char ***argv, struct seg_dist **out)
{
    struct seg_dist *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "dist: out of host memory");
    d->size = 1;
#ifdef SEGDA_HAVE_MPI
    if (under_launcher()) {
        int provided, inited = 0;
        MPI_Initialized(&inited);
        if (!inited && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            free(d);
            return seg_error(SEG_STATUS_BACKEND, "MPI_Init failed");
        }
        d->mpi = !inited;
        MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
        MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(d->comm, &d->rank);
        MPI_Comm_size(d->comm, &d->size);
        MPI_Comm node; /* the ranks of this machine: which of its GPUs is this rank's */
        if (MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
            MPI_Comm_rank(node, &d->local_rank);
            MPI_Comm_free(&node);
        }
    }
#endif
    d->coll = (struct seg_collective){d, d->size, coll_sum, coll_average};
    d->bucket_bytes = SEG_DIST_BUCKET_BYTES;
    *out = d;
    return SEG_STATUS_OK;
}

void seg_dist_finalize(struct seg_dist *d)
{
    if (!d)
        return;
#ifdef SEGDA_HAVE_MPI
    if (d->size > 1 || d->mpi) {
        MPI_Comm_free(&d->comm);
        if (d->mpi)
            MPI_Finalize();
    }
#endif
    free(d->stage);
    for (int i = 0; i < 3; i++) {
        free(d->bucket[i]);
        free(d->chunk[i]);
    }
    free(d);
}

void seg_dist_abort(struct seg_dist *d, int code)
{
#ifdef SEGDA_HAVE_MPI
    if (d && d->size > 1)
        MPI_Abort(d->comm, code);
#endif
}

int seg_dist_rank(const struct seg_dist *d) { return d ? d->rank : 0; }
int seg_dist_size(const struct seg_dist *d) { return d ? d->size : 1; }
int seg_dist_local_rank(const struct seg_dist *d) { return d ? d->local_rank : 0; }
const struct seg_collective *seg_dist_collective(struct seg_dist *d) { return d ? &d->coll : NULL; }

const char *seg_dist_describe(const struct seg_dist *d, char *buf, size_t n)
{
    if (!d || d->size == 1) {
        snprintf(buf, n, "one process");
        return buf;
    }
#ifdef SEGDA_HAVE_MPI
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = '\0';
    snprintf(buf, n, "MPI (%s), %d ranks", lib, d->size);
#endif
    return buf;
}

enum seg_status seg_dist_barrier(struct seg_dist *d)
{
#ifdef SEGDA_HAVE_MPI
    if (d && d->size > 1) { /* polled with sleeps: a blocking MPI wait spins on a core */
        MPI_Request req;
        int done = 0;
        MPI_TRY(MPI_Ibarrier(d->comm, &req), "barrier");
        while (!done) {
            MPI_TRY(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "barrier");
            if (!done)
                nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
    }
#endif
    return SEG_STATUS_OK;
}

enum seg_status seg_dist_sum_f64(struct seg_dist *d, double *x, int n)
{
#ifdef SEGDA_HAVE_MPI
    if (d && d->size > 1 && n > 0)
        return sum_at_root_then_bcast(d, x, n, MPI_DOUBLE);
#endif
    return SEG_STATUS_OK;
}

enum seg_status seg_dist_sum_i64(struct seg_dist *d, int64_t *x, int n)
{
#ifdef SEGDA_HAVE_MPI
    if (d && d->size > 1 && n > 0)
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_INT64_T, MPI_SUM, d->comm), "allreduce");
#endif
    return SEG_STATUS_OK;
}

enum seg_status seg_dist_all(struct seg_dist *d, bool *ok)
{
#ifdef SEGDA_HAVE_MPI
    if (d && d->size > 1) {
        int v = *ok ? 1 : 0;
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LAND, d->comm), "allreduce");
        *ok = v != 0;
    }
#endif
    return SEG_STATUS_OK;
}

enum seg_status seg_dist_bcast(struct seg_dist *d, void *buf, size_t nbytes, int root)
{
#ifdef SEGDA_HAVE_MPI
    if (d && d->size > 1 && nbytes) {
        if (nbytes > (size_t)1 << 30)
            return seg_error(SEG_STATUS_INVALID, "dist: broadcast of %zu bytes (more than 1 GiB)", nbytes);
        MPI_TRY(MPI_Bcast(buf, (int)nbytes, MPI_BYTE, root, d->comm), "broadcast");
    }
#endif
    return SEG_STATUS_OK;
}

enum seg_status seg_dist_allgatherv_f32(struct seg_dist *d, const float *x, size_t n, float **out, size_t *nout)
{
    int r = seg_dist_size(d);
    int64_t *counts = calloc((size_t)r, sizeof *counts);
    if (!counts)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "dist: out of host memory");
    counts[seg_dist_rank(d)] = (int64_t)n;
    enum seg_status st = seg_dist_sum_i64(d, counts, r);
    size_t total = 0;
    for (int i = 0; !st && i < r; i++) {
        if (counts[i] > INT32_MAX)
            st = seg_error(SEG_STATUS_INVALID, "dist: rank %d contributes %lld values (more than 2^31)", i,
                           (long long)counts[i]);
        total += (size_t)counts[i];
    }
    *out = NULL;
    *nout = 0;
    float *all = st ? NULL : malloc((total ? total : 1) * sizeof *all);
    if (!st && !all)
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "dist: out of host memory (%zu values)", total);
#ifdef SEGDA_HAVE_MPI
    if (!st && r > 1) {
        int *cnt = malloc((size_t)r * sizeof *cnt), *displ = malloc((size_t)r * sizeof *displ);
        size_t off = 0;
        for (int i = 0; cnt && displ && i < r; i++) {
            cnt[i] = (int)counts[i];
            displ[i] = (int)off;
            off += (size_t)counts[i];
        }
        if (!cnt || !displ || off > INT32_MAX)
            st = seg_error(SEG_STATUS_INVALID, "dist: all-gather of %zu values does not fit", off);
        else
            st = mpi_err(MPI_Allgatherv(x, (int)n, MPI_FLOAT, all, cnt, displ, MPI_FLOAT, d->comm), "all-gather");
        free(cnt);
        free(displ);
    } else
#endif
    if (!st)
        memcpy(all, x, n * sizeof *x);
    free(counts);
    if (st) {
        free(all);
        return st;
    }
    *out = all;
    *nout = total;
    return SEG_STATUS_OK;
}

static enum seg_status stage_reserve(struct seg_dist *d, size_t n)
{
    if (n <= d->stage_cap)
        return SEG_STATUS_OK;
    float *p = realloc(d->stage, n * sizeof *p);
    if (!p)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "dist: out of host memory (%zu floats)", n);
    d->stage = p;
    d->stage_cap = n;
    return SEG_STATUS_OK;
}

enum seg_status seg_dist_sum_tensor(struct seg_dist *d, struct seg_tensor *t)
{
#ifdef SEGDA_HAVE_MPI
    if (d && d->size > 1) {
        SEG_TRY(check_f32(t));
        size_t n = (size_t)seg_tensor_numel(t);
        SEG_TRY(stage_reserve(d, n));
        SEG_TRY(seg_tensor_read(t, d->stage, n * sizeof(float)));
        SEG_TRY(sum_at_root_then_bcast(d, d->stage, (int)n, MPI_FLOAT));
        return seg_tensor_write(t, d->stage, n * sizeof(float));
    }
#endif
    return SEG_STATUS_OK;
}

enum seg_status seg_dist_bcast_tensor(struct seg_dist *d, struct seg_tensor *t, int root)
{
    if (!d || d->size == 1)
        return SEG_STATUS_OK;
    size_t nb = seg_tensor_nbytes(t);
    SEG_TRY(stage_reserve(d, (nb + sizeof(float) - 1) / sizeof(float)));
    if (d->rank == root)
        SEG_TRY(seg_tensor_read(t, d->stage, nb));
    SEG_TRY(seg_dist_bcast(d, d->stage, nb, root));
    return d->rank == root ? SEG_STATUS_OK : seg_tensor_write(t, d->stage, nb);
}

enum seg_status seg_dist_bcast_model(struct seg_dist *d, struct seg_model *m)
{
    for (int i = 0; m && d && d->size > 1 && i < m->nparams; i++)
        SEG_TRY(seg_dist_bcast_tensor(d, m->params[i].var->value, 0));
    return SEG_STATUS_OK;
}

void seg_dist_set_bucket_bytes(struct seg_dist *d, size_t bytes)
{
    if (d)
        d->bucket_bytes = bytes < sizeof(float) ? sizeof(float) : bytes;
}

double seg_dist_take_comm_seconds(struct seg_dist *d)
{
    if (!d)
        return 0.0;
    double s = d->comm_s;
    d->comm_s = 0.0;
    return s;
}

#ifdef SEGDA_HAVE_MPI
/* Consecutive parameters with gradients, [first, last), n floats padded to a multiple of
 * the rank count (the reduce-scatter gives each rank an equal chunk). */
struct bucket {
    int    first, last;
    size_t n, padded;
};

static bool has_grad(const struct seg_param *p)
{
    return !p->is_buffer && p->var->requires_grad && p->var->grad;
}


static enum seg_status buckets_reserve(struct seg_dist *d, size_t n)
{
    if (n <= d->bucket_cap)
        return SEG_STATUS_OK;
    for (int i = 0; i < 3; i++) {
        float *b = realloc(d->bucket[i], n * sizeof *b), *c;
        if (b) d->bucket[i] = b;
        c = realloc(d->chunk[i], (n / (size_t)d->size + 1) * sizeof *c);
        if (c) d->chunk[i] = c;
        if (!b || !c)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "dist: out of host memory (gradient buckets)");
    }
    d->bucket_cap = n;
    return SEG_STATUS_OK;
}

/* Lets the non-blocking collectives in flight advance (MPI progresses them inside calls).
 * The handles themselves, never copies: a completed request is freed and its handle nulled. */
static void progress(MPI_Request *rs, MPI_Request *ag)
{
    for (int i = 0; i < 6; i++) {
        MPI_Request *r = i < 3 ? &rs[i] : &ag[i - 3];
        if (*r != MPI_REQUEST_NULL) {
            int done;
            MPI_Test(r, &done, MPI_STATUS_IGNORE);
        }
    }
}

static enum seg_status bucket_read(struct seg_model *m, const struct bucket *b, float *dst, MPI_Request *rs,
                                   MPI_Request *ag)
{
    size_t off = 0;
    for (int i = b->first; i < b->last; i++) {
        struct seg_param *p = &m->params[i];
        if (!has_grad(p))
            continue;
        SEG_TRY(check_f32(p->var->grad));
        size_t n = (size_t)seg_tensor_numel(p->var->grad);
        SEG_TRY(seg_tensor_read(p->var->grad, dst + off, n * sizeof(float)));
        off += n;
        progress(rs, ag);
    }
    memset(dst + off, 0, (b->padded - off) * sizeof(float));
    return SEG_STATUS_OK;
}

static enum seg_status bucket_write(struct seg_dist *d, struct seg_model *m, const struct bucket *b,
                                    float *src, MPI_Request *rs, MPI_Request *ag)
{
    float inv = 1.0f / (float)d->size;
    for (size_t i = 0; i < b->n; i++)
        src[i] *= inv;
    size_t off = 0;
    for (int i = b->first; i < b->last; i++) {
        struct seg_param *p = &m->params[i];
        if (!has_grad(p))
            continue;
        size_t n = (size_t)seg_tensor_numel(p->var->grad);
        SEG_TRY(seg_tensor_write(p->var->grad, src + off, n * sizeof(float)));
        off += n;
        progress(rs, ag);
    }
    return SEG_STATUS_OK;
}

/* Three stages a bucket: read + start the reduce-scatter (A), wait for it + start the
 * all-gather (B), wait for that + write back (C). Bucket k's A runs while k-1 is in B and
 * k-2 in C, on three host buffers. */
/* A parameter whose gradient some ranks have and others not (a loss term the shard gave no
 * pixel to, so that nothing reached it) gets a zero gradient where it is missing: the mean
 * is then the one-process gradient of the union, and every rank reduces the same buckets. */
static enum seg_status union_of_grads(struct seg_dist *d, struct seg_model *m)
{
    int n = m->nparams;
    int *has = calloc((size_t)(n ? n : 1), sizeof *has);
    if (!has)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "dist: out of host memory");
    for (int i = 0; i < n; i++)
        has[i] = has_grad(&m->params[i]);
    enum seg_status st = mpi_err(MPI_Allreduce(MPI_IN_PLACE, has, n, MPI_INT, MPI_LOR, d->comm), "allreduce");
    for (int i = 0; !st && i < n; i++) {
        struct seg_var *v = m->params[i].var;
        if (!has[i] || v->grad)
            continue;
        st = seg_tensor_new_like(v->value, &v->grad);
        if (!st) st = seg_fill(v->grad, 0.0f);
    }
    free(has);
    return st;
}

static enum seg_status average_grads_mpi(struct seg_dist *d, struct seg_model *m)
{
    SEG_TRY(union_of_grads(d, m));
    struct bucket bk[1024];
    int nb = 0;
    size_t cap = d->bucket_bytes / sizeof(float), biggest = 0;
    for (int i = 0; i < m->nparams;) {
        struct bucket b = {i, i, 0, 0};
        while (b.last < m->nparams && (b.n == 0 || b.n + (size_t)seg_tensor_numel(m->params[b.last].var->value) <= cap)) {
            if (has_grad(&m->params[b.last]))
                b.n += (size_t)seg_tensor_numel(m->params[b.last].var->grad);
            b.last++;
        }
        i = b.last;
        if (!b.n)
            continue;
        if (nb == (int)(sizeof bk / sizeof bk[0]))
            return seg_error(SEG_STATUS_INVALID, "dist: more than %d gradient buckets", nb);
        b.padded = (b.n + (size_t)d->size - 1) / (size_t)d->size * (size_t)d->size;
        biggest = b.padded > biggest ? b.padded : biggest;
        bk[nb++] = b;
    }
    SEG_TRY(buckets_reserve(d, biggest));
    MPI_Request rs[3] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    MPI_Request ag[3] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    enum seg_status st = SEG_STATUS_OK;
    for (int k = 0; k < nb + 2 && !st; k++) {
        if (k < nb) { /* A */
            int s = k % 3;
            st = bucket_read(m, &bk[k], d->bucket[s], rs, ag);
            int chunk = (int)(bk[k].padded / (size_t)d->size);
            if (!st)
                st = mpi_err(MPI_Ireduce_scatter_block(d->bucket[s], d->chunk[s], chunk, MPI_FLOAT, MPI_SUM,
                                                       d->comm, &rs[s]), "reduce-scatter");
        }
        if (!st && k >= 1 && k - 1 < nb) { /* B */
            int s = (k - 1) % 3, chunk = (int)(bk[k - 1].padded / (size_t)d->size);
            st = mpi_err(MPI_Wait(&rs[s], MPI_STATUS_IGNORE), "reduce-scatter");
            if (!st)
                st = mpi_err(MPI_Iallgather(d->chunk[s], chunk, MPI_FLOAT, d->bucket[s], chunk, MPI_FLOAT,
                                            d->comm, &ag[s]), "all-gather");
        }
        if (!st && k >= 2) { /* C */
            int s = (k - 2) % 3;
            st = mpi_err(MPI_Wait(&ag[s], MPI_STATUS_IGNORE), "all-gather");
            if (!st)
                st = bucket_write(d, m, &bk[k - 2], d->bucket[s], rs, ag);
        }
    }
    return st;
}
#endif

enum seg_status seg_dist_average_grads(struct seg_dist *d, struct seg_model *m)
{
    if (!d || d->size == 1)
        return SEG_STATUS_OK;
#ifdef SEGDA_HAVE_MPI
    double t0 = now_s();
    enum seg_status st = average_grads_mpi(d, m);
    d->comm_s += now_s() - t0;
    return st;
#else
    return SEG_STATUS_OK;
#endif
}
