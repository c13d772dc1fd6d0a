/* registry.c: the only place that knows which backends were compiled in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"

bool seg_backend_compiled(const char *backend)
{
    if (!strcmp(backend, "cpu"))
        return true;
#ifdef SEGDA_HAVE_OPENCL
    if (!strcmp(backend, "opencl"))
        return true;
#endif
#ifdef SEGDA_HAVE_VULKAN
    if (!strcmp(backend, "vulkan"))
        return true;
#endif
    return false;
}

typedef enum seg_status (*seg_enum_fn)(struct seg_device_info *out, int max, int *count);

static void list_one(const char *name, seg_enum_fn fn, struct seg_device_info *out, int max,
                     int *count, char *notes, size_t notes_size)
{
    int n = 0;
    int room = out ? max - *count : 0;
    if (room < 0)
        room = 0;
    enum seg_status st = fn(out ? out + *count : NULL, room, &n);
    if (st) {
        if (notes) {
            size_t used = strlen(notes);
            snprintf(notes + used, notes_size - used, "%s: %s\n", name, seg_last_error());
        }
        return;
    }
    *count += n;
}

enum seg_status seg_devices_list(struct seg_device_info *out, int max, int *count, char *notes,
                                 size_t notes_size)
{
    *count = 0;
    if (notes && notes_size)
        notes[0] = '\0';
#ifdef SEGDA_HAVE_OPENCL
    list_one("opencl", seg_cl_devices, out, max, count, notes, notes_size);
#endif
#ifdef SEGDA_HAVE_VULKAN
    list_one("vulkan", seg_vk_devices, out, max, count, notes, notes_size);
#endif
    list_one("cpu", seg_cpu_devices, out, max, count, notes, notes_size);
    return SEG_STATUS_OK;
}

static enum seg_status finish_create(enum seg_status st, struct seg_backend **out)
{
    if (st)
        return st;
    st = seg_pool_create(&(*out)->pool);
    if (st) {
        (*out)->iface->destroy(*out);
        *out = NULL;
        return st;
    }
    /* SEGDA_MAX_BUFFER_MB lowers the largest buffer temporaries may take. */
    (*out)->max_buffer = (*out)->info.max_buffer_bytes;
    const char *mb = getenv("SEGDA_MAX_BUFFER_MB");
    if (mb && *mb) {
        char *end;
        double v = strtod(mb, &end);
        if (end == mb || *end || !(v > 0.0) || v > 1e9) {
            seg_backend_destroy(*out);
            *out = NULL;
            return seg_error(SEG_STATUS_INVALID, "SEGDA_MAX_BUFFER_MB=%s: expected a size in MiB above 0", mb);
        }
        uint64_t lim = (uint64_t)(v * 1048576.0);
        if (lim < 1024) /* a floor that keeps a band of one output row possible */
            lim = 1024;
        if (!(*out)->max_buffer || lim < (*out)->max_buffer)
            (*out)->max_buffer = lim;
    }
    /* SEGDA_CONV_ALGO=auto|im2col|direct overrides the backend's choice (for A/B runs). */
    const char *algo = getenv("SEGDA_CONV_ALGO");
    if (algo && *algo) {
        enum seg_conv_algo a = SEG_CONV_ALGO_AUTO;
        if (!strcmp(algo, "im2col"))
            a = SEG_CONV_ALGO_IM2COL;
        else if (!strcmp(algo, "direct"))
            a = SEG_CONV_ALGO_DIRECT;
        else if (strcmp(algo, "auto")) {
            seg_backend_destroy(*out);
            *out = NULL;
            return seg_error(SEG_STATUS_INVALID, "SEGDA_CONV_ALGO=%s: expected auto, im2col or direct", algo);
        }
        seg_backend_set_conv_algo(*out, a);
    }
    return st;
}

static inline bool parse_index(const char *s, int *a, int *b)
{
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || x < 0)
        return false;
    *a = (int)x;
    if (b) {
        if (*end != '.')
            return false;
        const char *t = end + 1;
        x = strtol(t, &end, 10);
        if (end == t || x < 0)
            return false;
        *b = (int)x;
    }
    return *end == '\0';
}

/* Appends "; " (unless buf is empty) and a formatted part, truncating at size. */
static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used && used + 2 < size) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    if (used + 1 < size)
        vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/* "auto": the first non-CPU device, OpenCL before Vulkan, else the cpu backend; the reason
 * (what was skipped or failed) is kept in be->choice so that commands can say it. */
static enum seg_status create_auto(struct seg_backend **out)
{
    struct seg_device_info devs[32];
    int n = 0;
    char notes[1024], why[400] = "";
    seg_devices_list(devs, 32, &n, notes, sizeof notes);
    for (int i = 0; i < n && i < 32; i++) {
        if (!strcmp(devs[i].backend, "cpu"))
            continue;
        if (devs[i].is_cpu) {
            append(why, sizeof why, "%s (%s) is a software device", devs[i].spec, devs[i].name);
            continue;
        }
        if (seg_backend_create(devs[i].spec, out) == SEG_STATUS_OK) {
            snprintf((*out)->choice, sizeof (*out)->choice, "%s (%s): the first GPU found (OpenCL before Vulkan)",
                     devs[i].spec, devs[i].name);
            return SEG_STATUS_OK;
        }
        append(why, sizeof why, "%s (%s) failed: %s", devs[i].spec, devs[i].name, seg_last_error());
    }
    /* Backends that could not enumerate say why in notes, a line each ("opencl: ...\n"). */
    for (const char *line = notes; *line;) {
        size_t len = strcspn(line, "\n");
        append(why, sizeof why, "%.*s", (int)len, line);
        line += len + (line[len] == '\n');
    }
    enum seg_status st = finish_create(seg_cpu_backend_create(out), out);
    if (!st)
        snprintf((*out)->choice, sizeof (*out)->choice, "cpu: no GPU found%s%s%s", why[0] ? " (" : "", why,
                 why[0] ? ")" : "");
    return st;
}

enum seg_status seg_backend_create(const char *spec, struct seg_backend **out)
{
    *out = NULL;
    if (!spec || !strcmp(spec, "cpu"))
        return finish_create(seg_cpu_backend_create(out), out);
    if (!strcmp(spec, "auto"))
        return create_auto(out);
    if (!strncmp(spec, "opencl", 6)) {
#ifdef SEGDA_HAVE_OPENCL
        int p = 0, d = 0;
        if (spec[6] && (spec[6] != ':' || !parse_index(spec + 7, &p, &d)))
            return seg_error(SEG_STATUS_INVALID, "device '%s': expected opencl or opencl:P.D", spec);
        return finish_create(seg_cl_backend_create(p, d, out), out);
#else
        return seg_error(SEG_STATUS_UNSUPPORTED, "device '%s': segda was built without OpenCL (SEGDA_OPENCL=OFF)", spec);
#endif
    }
    if (!strncmp(spec, "vulkan", 6)) {
#ifdef SEGDA_HAVE_VULKAN
        int d = 0;
        if (spec[6] && (spec[6] != ':' || !parse_index(spec + 7, &d, NULL)))
            return seg_error(SEG_STATUS_INVALID, "device '%s': expected vulkan or vulkan:N", spec);
        return finish_create(seg_vk_backend_create(d, out), out);
#else
        return seg_error(SEG_STATUS_UNSUPPORTED, "device '%s': segda was built without Vulkan (SEGDA_VULKAN=OFF)", spec);
#endif
    }
    return seg_error(SEG_STATUS_INVALID,
                     "device '%s': expected cpu, opencl[:P.D], vulkan[:N] or auto", spec);
}

void seg_backend_destroy(struct seg_backend *be)
{
    if (!be)
        return;
    if (be->iface->sync)
        be->iface->sync(be);
    seg_pool_destroy(be);
    seg_conv_choices_free(be->conv_choices);
    be->conv_choices = NULL;
    be->iface->destroy(be);
}

const struct seg_device_info *seg_backend_device(const struct seg_backend *be) { return &be->info; }
const char *seg_backend_choice(const struct seg_backend *be) { return be->choice; }
const char *seg_backend_name(const struct seg_backend *be) { return be->iface->name; }
enum seg_status seg_backend_sync(struct seg_backend *be) { return be->iface->sync(be); }
bool seg_backend_has_op(const struct seg_backend *be, enum seg_op op)
{
    return op < SEG_OP_COUNT && be->iface->kernels[op] != NULL;
}
uint64_t seg_backend_max_buffer(const struct seg_backend *be) { return be->max_buffer; }
size_t seg_backend_mem_in_use(const struct seg_backend *be) { return be->mem_in_use; }
size_t seg_backend_mem_peak(const struct seg_backend *be) { return be->mem_peak; }

const struct seg_exec_counts *seg_backend_counts(const struct seg_backend *be) { return &be->counts; }
void seg_backend_mem_peak_reset(struct seg_backend *be) { be->mem_peak = be->mem_in_use; }
