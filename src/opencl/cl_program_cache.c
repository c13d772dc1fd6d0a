/* cl_program_cache.c: the tuning table, program builds (memory and on-disk binary cache),
 * kernel lookup, launches and the scratch buffer of the OpenCL backend. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opencl/cl_internal.h"
#include "data/data.h" /* seg_file_write_atomic */
#include "opencl/cl_sources.h"

/* Bump when the cache key or the file layout changes. */
#define SEG_CL_CACHE_FORMAT "segda-cl-binary-v1"

size_t seg_cl_pow2_ceil(size_t v)
{
    size_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

static size_t pow2_floor(size_t v)
{
    size_t p = 1;
    while (p * 2 <= v) p <<= 1;
    return p;
}

/* ---- tuning ----------------------------------------------------------------------------- */

void seg_cl_tuning_init(struct seg_cl_ctx *c)
{
    struct seg_cl_tuning *t = &c->tuning;
    size_t wg = pow2_floor(c->max_wg ? c->max_wg : 64);
    if (wg > 256) wg = 256;
    t->wg = (int)wg;
    /* Reductions keep a float and an int per work-item in local memory. */
    size_t red = wg;
    while (red > 16 && (cl_ulong)red * 8 > c->local_mem / 2) red >>= 1;
    t->red_wg = (int)red;
    t->scan_wg = (int)red;
    /* Bitonic sort in local memory: a key and an index per element, at most 16 KiB. */
    size_t sl = 2048;
    while (sl > 64 && ((cl_ulong)sl * 8 > c->local_mem / 2 || sl / 2 > wg * 4)) sl >>= 1;
    t->sort_local = (int)sl;
    t->cumsum_cols_min_inner = 16;
    cl_uint cu = 1;
    clGetDeviceInfo(c->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    t->reduce_split_groups = (int)(cu < 1 ? 4 : cu * 4);
    t->reduce_split_min_items = 16;

    cl_char ver[64] = {0};
    bool cl12 = true;
    if (clGetDeviceInfo(c->device, CL_DEVICE_OPENCL_C_VERSION, sizeof ver - 1, ver, NULL) ==
        CL_SUCCESS) {
        int maj = 0, min = 0;
        if (sscanf((const char *)ver, "OpenCL C %d.%d", &maj, &min) == 2)
            cl12 = maj > 1 || (maj == 1 && min >= 2);
    }
    /* Correctly rounded float division and sqrt where the device offers them (OpenCL
     * otherwise allows 2.5 / 3 ulp): results are compared with the CPU reference. */
    cl_device_fp_config fp = 0;
    bool exact_div = cl12 &&
                     clGetDeviceInfo(c->device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL) ==
                         CL_SUCCESS &&
                     (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT);
    snprintf(c->build_options, sizeof c->build_options,
             "%s%s -DSEG_WG=%d -DSEG_RED_WG=%d -DSEG_SCAN_WG=%d -DSEG_SORT_LOCAL=%d",
             cl12 ? "-cl-std=CL1.2" : "", exact_div ? " -cl-fp32-correctly-rounded-divide-sqrt" : "",
             t->wg, t->red_wg, t->scan_wg, t->sort_local);
}

/* ---- on-disk binary cache ---------------------------------------------------------------- */

/* $SEGDA_CACHE_DIR/opencl (created as needed), else $XDG_CACHE_HOME/segda/opencl, else
 * $HOME/.cache/segda/opencl (created below an existing $XDG_CACHE_HOME or $HOME only).
 * Any failure leaves the disk cache off. */
void seg_cl_cache_init(struct seg_cl_ctx *c)
{
    char dir[1024];
    c->cache_dir[0] = '\0';
    if (!seg_cache_dir("opencl", true, dir, sizeof dir - 64) || access(dir, W_OK) != 0) return;
    memcpy(c->cache_dir, dir, strlen(dir) + 1);
}

/* Two 64-bit FNV-1a streams with different offsets: a 128-bit key. */
struct hash128 {
    uint64_t a, b;
};

static void hash_bytes(struct hash128 *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h->a = (h->a ^ p[i]) * 0x100000001b3ULL;
        h->b = (h->b ^ p[i]) * 0x100000001b3ULL;
    }
    /* A separator so ("ab","c") and ("a","bc") differ. */
    h->a = (h->a ^ 0xff) * 0x100000001b3ULL;
    h->b = (h->b ^ 0xfe) * 0x100000001b3ULL;
}

static void cache_path(const struct seg_cl_ctx *c, const char *name, const char *source,
                       const char *options, char *out, size_t size)
{
    struct hash128 h = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    hash_bytes(&h, SEG_CL_CACHE_FORMAT, strlen(SEG_CL_CACHE_FORMAT));
    hash_bytes(&h, source, strlen(source));
    hash_bytes(&h, options, strlen(options));
    hash_bytes(&h, c->device_name, strlen(c->device_name));
    hash_bytes(&h, c->driver_version, strlen(c->driver_version));
    hash_bytes(&h, c->platform_version, strlen(c->platform_version));
    snprintf(out, size, "%s/%s-%016llx%016llx.bin", c->cache_dir, name, (unsigned long long)h.a,
             (unsigned long long)h.b);
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)n);
            if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            }
            *size = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

/* Loads a cached binary; NULL on any failure (then the source is built). */
static cl_program cache_load(struct seg_cl_ctx *c, const char *path, const char *options)
{
    size_t size = 0;
    unsigned char *bin = read_file(path, &size);
    if (!bin) return NULL;
    cl_int err = CL_SUCCESS, bin_status = CL_SUCCESS;
    const unsigned char *bins[1] = {bin};
    cl_program p = clCreateProgramWithBinary(c->context, 1, &c->device, &size, bins, &bin_status,
                                             &err);
    free(bin);
    if (err != CL_SUCCESS || bin_status != CL_SUCCESS) {
        if (p) clReleaseProgram(p);
        return NULL;
    }
    if (clBuildProgram(p, 1, &c->device, options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(p);
        return NULL;
    }
    return p;
}

/* Writes the program's binary to path atomically; turns the cache off on any error. */
static void cache_store(struct seg_cl_ctx *c, cl_program p, const char *path)
{
    size_t size = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
        size == 0) {
        c->cache_dir[0] = '\0';
        return;
    }
    unsigned char *bin = malloc(size);
    unsigned char *bins[1] = {bin};
    if (!bin || clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS) {
        free(bin);
        c->cache_dir[0] = '\0';
        return;
    }
    if (seg_file_write_atomic(path, bin, size) != SEG_STATUS_OK) {
        seg_error_clear(); /* the disk cache is an optimisation: off, not an error */
        c->cache_dir[0] = '\0';
    }
    free(bin);
}

/* ---- programs ------------------------------------------------------------------------------ */

static const struct seg_cl_source *find_source(const char *name)
{
    for (int i = 0; i < seg_cl_source_count; i++)
        if (strcmp(seg_cl_sources[i].name, name) == 0) return &seg_cl_sources[i];
    return NULL;
}

static enum seg_status build_from_source(struct seg_cl_ctx *c, const struct seg_cl_source *src,
                                         const char *options, cl_program *out)
{
    cl_int err = CL_SUCCESS;
    const char *text = src->source;
    size_t len = src->size;
    cl_program p = clCreateProgramWithSource(c->context, 1, &text, &len, &err);
    SEG_CL_CHECK(err, "clCreateProgramWithSource", src->name);
    err = clBuildProgram(p, 1, &c->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[4096] = "";
        size_t n = 0;
        clGetProgramBuildInfo(p, c->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, &n);
        log[sizeof log - 1] = '\0';
        clReleaseProgram(p);
        return seg_error(SEG_STATUS_BACKEND,
                         "opencl: clBuildProgram failed: %s (%d) for cl/%s.cl with options "
                         "'%s':\n%s",
                         seg_cl_error_name(err), (int)err, src->name, options, log);
    }
    *out = p;
    return SEG_STATUS_OK;
}

static enum seg_status program_get(struct seg_cl_ctx *c, const char *name, cl_program *out)
{
    const char *options = c->build_options;
    for (int i = 0; i < c->nprograms; i++) {
        if (strcmp(c->programs[i].name, name) == 0 && strcmp(c->programs[i].options, options) == 0) {
            *out = c->programs[i].program;
            return SEG_STATUS_OK;
        }
    }
    const struct seg_cl_source *src = find_source(name);
    if (!src) return seg_error(SEG_STATUS_BACKEND, "opencl: no embedded source cl/%s.cl", name);
    if (strlen(name) >= sizeof c->programs[0].name)
        return seg_error(SEG_STATUS_BACKEND, "opencl: program name %s too long", name);

    if (c->nprograms == c->cap_programs) {
        int cap = c->cap_programs ? c->cap_programs * 2 : 16;
        struct seg_cl_program_entry *p = realloc(c->programs, (size_t)cap * sizeof *p);
        if (!p) return seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: out of host memory");
        c->programs = p;
        c->cap_programs = cap;
    }
    char *opts = strdup(options);
    if (!opts) return seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: out of host memory");

    char path[1200] = "";
    cl_program prog = NULL;
    if (c->cache_dir[0]) {
        cache_path(c, name, src->source, options, path, sizeof path);
        prog = cache_load(c, path, options);
    }
    if (!prog) {
        enum seg_status st = build_from_source(c, src, options, &prog);
        if (st != SEG_STATUS_OK) {
            free(opts);
            return st;
        }
        if (c->cache_dir[0]) cache_store(c, prog, path);
    }
    struct seg_cl_program_entry *e = &c->programs[c->nprograms++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->options = opts;
    e->program = prog;
    *out = prog;
    return SEG_STATUS_OK;
}

enum seg_status seg_cl_kernel_get(struct seg_cl_ctx *c, const char *prog, const char *name,
                                  struct seg_cl_kernel_entry **out)
{
    for (int i = 0; i < c->nkernels; i++) {
        struct seg_cl_kernel_entry *k = &c->kernels[i];
        if (strcmp(k->name, name) == 0 && strcmp(k->prog, prog) == 0) {
            *out = k;
            return SEG_STATUS_OK;
        }
    }
    if (strlen(name) >= sizeof c->kernels[0].name || strlen(prog) >= sizeof c->kernels[0].prog)
        return seg_error(SEG_STATUS_BACKEND, "opencl: kernel name %s/%s too long", prog, name);
    cl_program p;
    SEG_CL_TRY(program_get(c, prog, &p));
    if (c->nkernels == c->cap_kernels) {
        int cap = c->cap_kernels ? c->cap_kernels * 2 : 64;
        struct seg_cl_kernel_entry *k = realloc(c->kernels, (size_t)cap * sizeof *k);
        if (!k) return seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: out of host memory");
        c->kernels = k;
        c->cap_kernels = cap;
    }
    cl_int err = CL_SUCCESS;
    cl_kernel k = clCreateKernel(p, name, &err);
    if (err != CL_SUCCESS)
        return seg_error(SEG_STATUS_BACKEND, "opencl: clCreateKernel failed: %s (%d) for %s in cl/%s.cl",
                         seg_cl_error_name(err), (int)err, name, prog);
    size_t max_wg = c->max_wg;
    if (clGetKernelWorkGroupInfo(k, c->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg, &max_wg,
                                 NULL) != CL_SUCCESS)
        max_wg = c->max_wg;
    struct seg_cl_kernel_entry *e = &c->kernels[c->nkernels++];
    memset(e, 0, sizeof *e);
    snprintf(e->prog, sizeof e->prog, "%s", prog);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->kernel = k;
    e->max_wg = max_wg;
    *out = e;
    return SEG_STATUS_OK;
}

void seg_cl_programs_release(struct seg_cl_ctx *c)
{
    for (int i = 0; i < c->nkernels; i++) clReleaseKernel(c->kernels[i].kernel);
    for (int i = 0; i < c->nprograms; i++) {
        clReleaseProgram(c->programs[i].program);
        free(c->programs[i].options);
    }
    free(c->kernels);
    free(c->programs);
    c->kernels = NULL;
    c->programs = NULL;
    c->nkernels = c->nprograms = 0;
    c->cap_kernels = c->cap_programs = 0;
}

/* ---- launches -------------------------------------------------------------------------------- */

enum seg_status seg_cl_run(struct seg_backend *be, const char *op, const char *prog,
                           const char *name, cl_uint dims, const size_t *gws, const size_t *lws,
                           int nargs, const struct seg_cl_arg *args)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    for (cl_uint d = 0; d < dims; d++)
        if (gws[d] == 0) return SEG_STATUS_OK;
    struct seg_cl_kernel_entry *k;
    SEG_CL_TRY(seg_cl_kernel_get(c, prog, name, &k));

    size_t local[3] = {1, 1, 1}, global[3] = {1, 1, 1};
    if (lws) {
        for (cl_uint d = 0; d < dims; d++) local[d] = lws[d];
    } else {
        size_t wg = (size_t)c->tuning.wg;
        if (wg > k->max_wg) wg = pow2_floor(k->max_wg);
        local[0] = wg;
    }
    size_t total = 1;
    for (cl_uint d = 0; d < dims; d++) {
        total *= local[d];
        global[d] = (gws[d] + local[d] - 1) / local[d] * local[d];
    }
    if (total > k->max_wg)
        return seg_error(SEG_STATUS_BACKEND,
                         "opencl: work-group of %zu items exceeds the %zu that kernel %s allows "
                         "(in op %s)",
                         total, k->max_wg, name, op);

    for (int i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(k->kernel, (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS)
            return seg_error(SEG_STATUS_BACKEND,
                             "opencl: clSetKernelArg failed: %s (%d) for argument %d of %s in op %s",
                             seg_cl_error_name(err), (int)err, i, name, op);
    }
    cl_int err = clEnqueueNDRangeKernel(c->queue, k->kernel, dims, NULL, global, local, 0, NULL,
                                        NULL);
    if (err != CL_SUCCESS) {
        char where[160];
        snprintf(where, sizeof where, "op %s (kernel %s)", op, name);
        return seg_cl_fail(err, "clEnqueueNDRangeKernel", where);
    }
    be->counts.dispatches++;
    return SEG_STATUS_OK;
}

size_t seg_cl_wg_limit(struct seg_backend *be, const char *prog, const char *name, size_t want)
{
    struct seg_cl_kernel_entry *k;
    /* On a lookup failure keep `want`: the launch reports the error. */
    if (seg_cl_kernel_get(seg_cl_ctx_of(be), prog, name, &k) != SEG_STATUS_OK) return want;
    return want <= k->max_wg ? want : pow2_floor(k->max_wg);
}

enum seg_status seg_cl_scratch(struct seg_backend *be, size_t nbytes, const char *op, cl_mem *out)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    if (nbytes < 16) nbytes = 16;
    if (!c->scratch || c->scratch_size < nbytes) {
        size_t size = nbytes + nbytes / 4;
        if (size > c->max_alloc) size = nbytes;
        if (size > c->max_alloc)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY,
                             "opencl: op %s needs %zu bytes of scratch, more than "
                             "CL_DEVICE_MAX_MEM_ALLOC_SIZE (%zu)",
                             op, nbytes, c->max_alloc);
        /* Released objects live until the commands queued on them finish. */
        if (c->scratch) clReleaseMemObject(c->scratch);
        c->scratch = NULL;
        c->scratch_size = 0;
        cl_int err = CL_SUCCESS;
        cl_mem m = clCreateBuffer(c->context, CL_MEM_READ_WRITE, size, NULL, &err);
        char where[96];
        snprintf(where, sizeof where, "scratch for op %s", op);
        SEG_CL_CHECK(err, "clCreateBuffer", where);
        c->scratch = m;
        c->scratch_size = size;
    }
    *out = c->scratch;
    return SEG_STATUS_OK;
}

void seg_cl_row_layout(int wg, int64_t n, int64_t inner, size_t *lx, size_t *ly)
{
    size_t w = (size_t)wg;
    size_t in2 = seg_cl_pow2_ceil(inner > 0 ? (size_t)inner : 1);
    size_t n2 = seg_cl_pow2_ceil(n > 0 ? (size_t)n : 1);
    size_t x = in2 < w ? in2 : w;
    size_t xmin = x < 32 ? x : 32;
    size_t y = n2 < w / xmin ? n2 : w / xmin;
    if (y < 1) y = 1;
    x = in2 < w / y ? in2 : w / y;
    *lx = x;
    *ly = y;
}
