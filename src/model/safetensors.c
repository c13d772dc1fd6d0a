/* safetensors.c: a strict reader (a small JSON parser for the header) and an atomic writer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/safetensors.h"

size_t seg_st_dtype_size(enum seg_st_dtype d)
{
    switch (d) {
    case SEG_ST_F32: return 4;
    case SEG_ST_I32: return 4;
    case SEG_ST_I64: return 8;
    case SEG_ST_U8: return 1;
    }
    return 0;
}

static const char *dtype_str(enum seg_st_dtype d)
{
    switch (d) {
    case SEG_ST_F32: return "F32";
    case SEG_ST_I32: return "I32";
    case SEG_ST_I64: return "I64";
    case SEG_ST_U8: return "U8";
    }
    return "?";
}

/* ---- a minimal JSON reader over [p, end) ------------------------------------------------- */

struct jp {
    const char *p, *end, *what;
    enum seg_status st;
};

static bool jfail(struct jp *j, const char *msg)
{
    if (!j->st)
        j->st = seg_error(SEG_STATUS_FORMAT, "%s: bad safetensors header: %s", j->what, msg);
    return false;
}

static void jws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static bool jchar(struct jp *j, char c)
{
    jws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

/* A string into a malloc'ed buffer (escapes \" \\ \/ and \uXXXX below 0x80 kept simple). */
static char *jstring(struct jp *j)
{
    jws(j);
    if (j->p >= j->end || *j->p != '"') {
        jfail(j, "expected a string");
        return NULL;
    }
    j->p++;
    size_t cap = 32, n = 0;
    char *s = malloc(cap);
    while (s && j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if ((unsigned char)c < 0x20) {
            free(s);
            jfail(j, "control character in a string");
            return NULL;
        }
        if (c == '\\') {
            if (j->p >= j->end)
                break;
            char e = *j->p++;
            switch (e) {
            case '"': case '\\': case '/': c = e; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                if (j->end - j->p < 4) {
                    free(s);
                    jfail(j, "short \\u escape");
                    return NULL;
                }
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *j->p++;
                    v = v * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0'
                                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
                }
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            default:
                free(s);
                jfail(j, "bad escape");
                return NULL;
            }
        }
        if (n + 2 > cap) {
            cap *= 2;
            char *g = realloc(s, cap);
            if (!g) {
                free(s);
                s = NULL;
                break;
            }
            s = g;
        }
        s[n++] = c;
    }
    if (!s) {
        jfail(j, "out of memory");
        return NULL;
    }
    if (j->p >= j->end) {
        free(s);
        jfail(j, "unterminated string");
        return NULL;
    }
    j->p++;
    s[n] = '\0';
    return s;
}

static bool jint(struct jp *j, int64_t *v)
{
    jws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return jfail(j, "expected a non-negative integer");
    int64_t x = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (x > (INT64_MAX - 9) / 10)
            return jfail(j, "integer too large");
        x = x * 10 + (*j->p++ - '0');
    }
    *v = x;
    return true;
}

/* Skips any JSON value (used for unknown keys). Depth-limited. */
static bool jskip(struct jp *j, int depth)
{
    if (depth > 16)
        return jfail(j, "nesting too deep");
    jws(j);
    if (j->p >= j->end)
        return jfail(j, "unexpected end");
    char c = *j->p;
    if (c == '"') {
        char *s = jstring(j);
        free(s);
        return s != NULL;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (jchar(j, close))
            return true;
        do {
            if (c == '{') {
                char *k = jstring(j);
                free(k);
                if (!k || !jchar(j, ':'))
                    return jfail(j, "expected ':'");
            }
            if (!jskip(j, depth + 1))
                return false;
        } while (jchar(j, ','));
        return jchar(j, close) || jfail(j, "unterminated object or array");
    }
    while (j->p < j->end && strchr("-+.0123456789eEtruefalsn", *j->p))
        j->p++;
    return true;
}

static bool parse_tensor(struct jp *j, struct seg_st_tensor *t, int64_t off[2])
{
    bool have_dtype = false, have_shape = false, have_off = false;
    if (!jchar(j, '{'))
        return jfail(j, "tensor entry is not an object");
    if (jchar(j, '}'))
        return jfail(j, "empty tensor entry");
    do {
        char *k = jstring(j);
        if (!k || !jchar(j, ':')) {
            free(k);
            return jfail(j, "expected a key");
        }
        if (!strcmp(k, "dtype")) {
            char *d = jstring(j);
            if (!d) {
                free(k);
                return false;
            }
            if (!strcmp(d, "F32")) t->dtype = SEG_ST_F32;
            else if (!strcmp(d, "I32")) t->dtype = SEG_ST_I32;
            else if (!strcmp(d, "I64")) t->dtype = SEG_ST_I64;
            else if (!strcmp(d, "U8")) t->dtype = SEG_ST_U8;
            else {
                seg_error(SEG_STATUS_FORMAT, "%s: tensor '%s' has dtype %s (segda reads F32, I32, I64, U8)",
                          j->what, t->name, d);
                j->st = SEG_STATUS_FORMAT;
                free(d);
                free(k);
                return false;
            }
            free(d);
            have_dtype = true;
        } else if (!strcmp(k, "shape")) {
            if (!jchar(j, '[')) {
                free(k);
                return jfail(j, "shape is not an array");
            }
            t->ndim = 0;
            if (!jchar(j, ']')) {
                do {
                    if (t->ndim >= SEG_ST_MAX_DIMS) {
                        free(k);
                        return jfail(j, "too many dimensions");
                    }
                    if (!jint(j, &t->shape[t->ndim++])) {
                        free(k);
                        return false;
                    }
                } while (jchar(j, ','));
                if (!jchar(j, ']')) {
                    free(k);
                    return jfail(j, "unterminated shape");
                }
            }
            have_shape = true;
        } else if (!strcmp(k, "data_offsets")) {
            if (!jchar(j, '[') || !jint(j, &off[0]) || !jchar(j, ',') || !jint(j, &off[1]) ||
                !jchar(j, ']')) {
                free(k);
                return jfail(j, "data_offsets must be [begin, end]");
            }
            have_off = true;
        } else if (!jskip(j, 1)) {
            free(k);
            return false;
        }
        free(k);
    } while (jchar(j, ','));
    if (!jchar(j, '}'))
        return jfail(j, "unterminated tensor entry");
    if (!have_dtype || !have_shape || !have_off)
        return jfail(j, "tensor entry lacks dtype, shape or data_offsets");
    return true;
}

static int cmp_range(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

void seg_st_free(struct seg_st_file *f)
{
    for (int i = 0; i < f->ntensors; i++)
        free(f->tensors[i].name);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->tensors);
    free(f->meta);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

enum seg_status seg_st_parse(unsigned char *buf, size_t size, const char *what,
                             struct seg_st_file *out)
{
    memset(out, 0, sizeof *out);
    out->buf = buf;
    out->size = size;
    if (size < 8) {
        seg_st_free(out);
        return seg_error(SEG_STATUS_FORMAT, "%s: not a safetensors file (%zu bytes)", what, size);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen < 2 || hlen > size - 8 || hlen > (100u << 20)) {
        seg_st_free(out);
        return seg_error(SEG_STATUS_FORMAT, "%s: header length %llu does not fit a %zu-byte file",
                         what, (unsigned long long)hlen, size);
    }
    const unsigned char *data = buf + 8 + hlen;
    size_t dsize = size - 8 - (size_t)hlen;
    struct jp j = {(const char *)buf + 8, (const char *)buf + 8 + hlen, what, SEG_STATUS_OK};
    int cap = 0;
    int64_t (*ranges)[2] = NULL;
    if (!jchar(&j, '{')) {
        jfail(&j, "not a JSON object");
        goto fail;
    }
    if (!jchar(&j, '}')) {
        do {
            char *key = jstring(&j);
            if (!key || !jchar(&j, ':')) {
                free(key);
                jfail(&j, "expected a key");
                goto fail;
            }
            if (!strcmp(key, "__metadata__")) {
                free(key);
                if (!jchar(&j, '{')) {
                    jfail(&j, "__metadata__ is not an object");
                    goto fail;
                }
                if (jchar(&j, '}'))
                    continue;
                do {
                    char *k = jstring(&j), *v = NULL;
                    if (!k || !jchar(&j, ':') || !(v = jstring(&j))) {
                        free(k);
                        jfail(&j, "metadata values must be strings");
                        goto fail;
                    }
                    struct seg_st_meta *m = realloc(out->meta, (size_t)(out->nmeta + 1) * sizeof *m);
                    if (!m) {
                        free(k);
                        free(v);
                        jfail(&j, "out of memory");
                        goto fail;
                    }
                    out->meta = m;
                    out->meta[out->nmeta].key = k;
                    out->meta[out->nmeta++].value = v;
                } while (jchar(&j, ','));
                if (!jchar(&j, '}')) {
                    jfail(&j, "unterminated __metadata__");
                    goto fail;
                }
                continue;
            }
            if (out->ntensors == cap) {
                cap = cap ? cap * 2 : 64;
                struct seg_st_tensor *t = realloc(out->tensors, (size_t)cap * sizeof *t);
                int64_t(*r)[2] = realloc(ranges, (size_t)cap * sizeof *r);
                if (t)
                    out->tensors = t;
                if (r)
                    ranges = r;
                if (!t || !r) {
                    free(key);
                    jfail(&j, "out of memory");
                    goto fail;
                }
            }
            struct seg_st_tensor *t = &out->tensors[out->ntensors];
            memset(t, 0, sizeof *t);
            t->name = key;
            out->ntensors++;
            int64_t off[2];
            if (!parse_tensor(&j, t, off))
                goto fail;
            int64_t numel = 1;
            for (int d = 0; d < t->ndim; d++) {
                if (t->shape[d] > 0 && numel > INT64_MAX / 8 / t->shape[d]) {
                    jfail(&j, "shape too large");
                    goto fail;
                }
                numel *= t->shape[d];
            }
            if (off[0] > off[1] || (uint64_t)off[1] > dsize ||
                (uint64_t)(off[1] - off[0]) != (uint64_t)numel * seg_st_dtype_size(t->dtype)) {
                seg_error(SEG_STATUS_FORMAT,
                          "%s: tensor '%s': data_offsets [%lld, %lld] do not fit its shape or the %zu data bytes",
                          what, t->name, (long long)off[0], (long long)off[1], dsize);
                j.st = SEG_STATUS_FORMAT;
                goto fail;
            }
            t->data = data + off[0];
            t->nbytes = (size_t)(off[1] - off[0]);
            ranges[out->ntensors - 1][0] = off[0];
            ranges[out->ntensors - 1][1] = off[1];
        } while (jchar(&j, ','));
        if (!jchar(&j, '}')) {
            jfail(&j, "unterminated object");
            goto fail;
        }
    }
    jws(&j);
    if (j.p != j.end) {
        jfail(&j, "trailing bytes after the header object");
        goto fail;
    }
    if (out->ntensors > 1)
        qsort(ranges, (size_t)out->ntensors, sizeof *ranges, cmp_range);
    for (int i = 1; i < out->ntensors; i++)
        if (ranges[i][0] < ranges[i - 1][1]) {
            seg_error(SEG_STATUS_FORMAT, "%s: tensors overlap in the data section", what);
            j.st = SEG_STATUS_FORMAT;
            goto fail;
        }
    for (int a = 0; a < out->ntensors; a++)
        for (int b = a + 1; b < out->ntensors && out->ntensors < 4096; b++)
            if (!strcmp(out->tensors[a].name, out->tensors[b].name)) {
                seg_error(SEG_STATUS_FORMAT, "%s: tensor '%s' appears twice", what, out->tensors[a].name);
                j.st = SEG_STATUS_FORMAT;
                goto fail;
            }
    free(ranges);
    return SEG_STATUS_OK;
fail:
    free(ranges);
    seg_st_free(out);
    return j.st ? j.st : SEG_STATUS_FORMAT;
}

enum seg_status seg_st_read(const char *path, struct seg_st_file *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return seg_error(SEG_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return seg_error(SEG_STATUS_IO, "%s: cannot seek", path);
    }
    long n = ftell(f);
    rewind(f);
    if (n < 0) {
        fclose(f);
        return seg_error(SEG_STATUS_IO, "%s: cannot tell its size", path);
    }
    unsigned char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: %ld bytes do not fit in memory", path, n);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(buf);
        return seg_error(SEG_STATUS_IO, "%s: short read (%zu of %ld bytes)", path, got, n);
    }
    return seg_st_parse(buf, (size_t)n, path, out);
}

const struct seg_st_tensor *seg_st_find(const struct seg_st_file *f, const char *name)
{
    for (int i = 0; i < f->ntensors; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

const char *seg_st_meta_get(const struct seg_st_file *f, const char *key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta[i].key, key))
            return f->meta[i].value;
    return NULL;
}

/* ---- writer -------------------------------------------------------------------------------- */

struct sbuf {
    char  *s;
    size_t n, cap;
    bool   oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 4096) + n;
        char *g = realloc(b->s, cap);
        if (!g) {
            b->oom = true;
            return;
        }
        b->s = g;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        char e[8];
        if (*s == '"' || *s == '\\') {
            e[0] = '\\';
            e[1] = *s;
            sb_put(b, e, 2);
        } else if ((unsigned char)*s < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", (unsigned char)*s);
            sb_put(b, e, 6);
        } else {
            sb_put(b, s, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static void sb_fmt(struct sbuf *b, const char *fmt, long long v)
{
    char t[32];
    int n = snprintf(t, sizeof t, fmt, v);
    sb_put(b, t, (size_t)n);
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        c += w;
        n -= (size_t)w;
    }
    return true;
}

enum seg_status seg_st_write(const char *path, const struct seg_st_tensor *tensors, int n,
                             const struct seg_st_meta *meta, int nmeta)
{
    struct sbuf h = {0};
    sb_put(&h, "{", 1);
    if (nmeta) {
        sb_str(&h, "__metadata__");
        sb_put(&h, ":{", 2);
        for (int i = 0; i < nmeta; i++) {
            if (i)
                sb_put(&h, ",", 1);
            sb_str(&h, meta[i].key);
            sb_put(&h, ":", 1);
            sb_str(&h, meta[i].value);
        }
        sb_put(&h, "}", 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const struct seg_st_tensor *t = &tensors[i];
        if (i || nmeta)
            sb_put(&h, ",", 1);
        sb_str(&h, t->name);
        sb_put(&h, ":{\"dtype\":\"", 11);
        sb_put(&h, dtype_str(t->dtype), strlen(dtype_str(t->dtype)));
        sb_put(&h, "\",\"shape\":[", 11);
        for (int d = 0; d < t->ndim; d++)
            sb_fmt(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        sb_put(&h, "],\"data_offsets\":[", 18);
        sb_fmt(&h, "%lld", (long long)off);
        sb_fmt(&h, ",%lld]}", (long long)(off + t->nbytes));
        off += t->nbytes;
    }
    sb_put(&h, "}", 1);
    while (!h.oom && h.n % 8) /* align the data section to 8 bytes, as the format suggests */
        sb_put(&h, " ", 1);
    if (h.oom) {
        free(h.s);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of memory for the header", path);
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(h.s);
        return seg_error(SEG_STATUS_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    bool ok = write_all(fd, len, 8) && write_all(fd, h.s, h.n);
    for (int i = 0; ok && i < n; i++)
        ok = write_all(fd, tensors[i].data, tensors[i].nbytes);
    free(h.s);
    ok = ok && fsync(fd) == 0;
    int err = errno;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            err = errno;
        unlink(tmp);
        return seg_error(SEG_STATUS_IO, "%s: write failed: %s", path, strerror(err));
    }
    return SEG_STATUS_OK;
}
