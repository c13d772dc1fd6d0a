/* files.c: whole-file reads, atomic writes, folders and paths, the data RNG. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_internal.h"

/* ---- rng ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void seg_data_rng_init(struct seg_data_rng *r, uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t s = mix64(seed ^ 0x9e3779b97f4a7c15ull);
    s = mix64(s ^ (a * 0xd1b54a32d192ed03ull + 1));
    s = mix64(s ^ (b * 0xabc98388fb8fac03ull + 2));
    r->s = s;
}

uint64_t seg_data_rng_next(struct seg_data_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ull;
    return mix64(r->s);
}

double seg_data_rng_uniform(struct seg_data_rng *r)
{
    return (double)(seg_data_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

int seg_data_rng_int(struct seg_data_rng *r, int n)
{
    if (n <= 1)
        return 0;
    return (int)(((seg_data_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

double seg_data_rng_range(struct seg_data_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * seg_data_rng_uniform(r);
}

double seg_data_rng_normal(struct seg_data_rng *r)
{
    double u1 = seg_data_rng_uniform(r), u2 = seg_data_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- files ---- */

enum seg_status seg_file_read(const char *path, size_t max, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    if (!max)
        max = (size_t)1 << 30;
    FILE *f = fopen(path, "rb");
    if (!f)
        return seg_error(SEG_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return seg_error(SEG_STATUS_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        fclose(f);
        return seg_error(SEG_STATUS_FORMAT, "%s: file of %lld bytes is larger than the %zu allowed",
                         path, (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory (%zu bytes)", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != n) {
        free(buf);
        return seg_error(SEG_STATUS_IO, "%s: read error (%zu of %zu bytes)", path, got, n);
    }
    *data = buf;
    *size = n;
    return SEG_STATUS_OK;
}

enum seg_status seg_file_write_atomic(const char *path, const void *data, size_t size)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", path);
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        enum seg_status st = seg_error(SEG_STATUS_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    const uint8_t *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            enum seg_status st = seg_error(SEG_STATUS_IO, "%s: write failed: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return st;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        enum seg_status st = seg_error(SEG_STATUS_IO, "%s: fsync/close failed: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        enum seg_status st = seg_error(SEG_STATUS_IO, "%s: rename from %s failed: %s", path, tmp,
                                       strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return SEG_STATUS_OK;
}

enum seg_status seg_dir_create(const char *path)
{
    if (!path[0])
        return seg_error(SEG_STATUS_INVALID, "cannot create a folder with an empty name");
    char *p = seg_strdup(path);
    if (!p)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                enum seg_status st = seg_error(SEG_STATUS_IO, "%s: cannot create folder: %s", p,
                                               strerror(errno));
                free(p);
                return st;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    if (!seg_path_is_dir(path))
        return seg_error(SEG_STATUS_IO, "%s: exists and is not a folder", path);
    return SEG_STATUS_OK;
}

/* ---- strings and paths ---- */

char *seg_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *seg_path_join(const char *a, const char *b)
{
    if (b[0] == '/') /* absolute paths (list entries) stand alone */
        return seg_strdup(b);
    size_t na = strlen(a), nb = strlen(b);
    char *r = malloc(na + nb + 2);
    if (!r)
        return NULL;
    memcpy(r, a, na);
    size_t k = na;
    if (na && nb && a[na - 1] != '/')
        r[k++] = '/';
    memcpy(r + k, b, nb + 1);
    return r;
}

char *seg_path_join3(const char *a, const char *b, const char *c)
{
    char *ab = seg_path_join(a, b);
    if (!ab)
        return NULL;
    char *r = seg_path_join(ab, c);
    free(ab);
    return r;
}

bool seg_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool seg_path_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool seg_str_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

enum seg_status seg_strv_push_owned(struct seg_strv *s, char *str)
{
    if (!str)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "data: out of host memory");
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) {
            free(str);
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "data: out of host memory");
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    return SEG_STATUS_OK;
}

enum seg_status seg_strv_push(struct seg_strv *s, const char *str)
{
    return seg_strv_push_owned(s, seg_strdup(str));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void seg_strv_sort(struct seg_strv *s)
{
    if (s->n > 1)
        qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_str);
}

void seg_strv_free(struct seg_strv *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

enum seg_status seg_dir_list(const char *dir, bool dirs_only, bool files_only,
                             struct seg_strv *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return seg_error(SEG_STATUS_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    enum seg_status st = SEG_STATUS_OK;
    while (st == SEG_STATUS_OK && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (dirs_only || files_only) {
            char *full = seg_path_join(dir, e->d_name);
            if (!full) {
                st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", dir);
                break;
            }
            bool keep = dirs_only ? seg_path_is_dir(full) : seg_path_is_file(full);
            free(full);
            if (!keep)
                continue;
        }
        st = seg_strv_push(out, e->d_name);
    }
    closedir(d);
    seg_strv_sort(out);
    return st;
}

void seg_data_warn(const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "segda: warning: %s\n", msg);
}
