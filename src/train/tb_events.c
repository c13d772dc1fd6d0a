/* tb_events.c: TensorBoard event files (TFRecord framing, Event/Summary protobuf encoding
 * by hand; see tb_events.h for the messages and field numbers). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "train/tb_events.h"

/* CRC-32C, reflected polynomial 0x82f63b78, four bits at a time (16-entry table). */
static const uint32_t crc32c_nibble[16] = {
    0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1, 0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
    0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9, 0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75,
};

uint32_t seg_crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        c = (c >> 4) ^ crc32c_nibble[c & 15];
        c = (c >> 4) ^ crc32c_nibble[c & 15];
    }
    return c ^ 0xffffffffu;
}

uint32_t seg_crc32c_masked(const uint8_t *p, size_t n)
{
    uint32_t c = seg_crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ---- protobuf wire format ---- */

struct pbuf {
    uint8_t *p;
    size_t   n, cap;
    bool     oom;
};

static void pb_bytes(struct pbuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void pb_varint(struct pbuf *b, uint64_t v)
{
    uint8_t tmp[10];
    int k = 0;
    do {
        tmp[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[k] |= 0x80;
        k++;
    } while (v);
    pb_bytes(b, tmp, (size_t)k);
}

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

static void pb_key(struct pbuf *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void pb_fixed(struct pbuf *b, uint64_t v, int bytes)
{
    uint8_t tmp[8];
    for (int i = 0; i < bytes; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    pb_bytes(b, tmp, (size_t)bytes);
}

static void pb_len_field(struct pbuf *b, int field, const void *data, size_t n)
{
    pb_key(b, field, WIRE_LEN);
    pb_varint(b, n);
    pb_bytes(b, data, n);
}

/* A nested message: its bytes, then freed. */
static void pb_message(struct pbuf *b, int field, struct pbuf *inner)
{
    if (inner->oom)
        b->oom = true;
    else
        pb_len_field(b, field, inner->p, inner->n);
    free(inner->p);
    memset(inner, 0, sizeof *inner);
}

/* ---- the writer ---- */

struct seg_tb_writer {
    FILE *f;
    char  path[4400];
};

static double wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Event header fields: wall_time = 1 (double), step = 2 (int64). */
static void event_header(struct pbuf *ev, int64_t step)
{
    double t = wall_time();
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    pb_key(ev, 1, WIRE_FIXED64);
    pb_fixed(ev, bits, 8);
    if (step) { /* proto3: a zero is the default and stays off the wire */
        pb_key(ev, 2, WIRE_VARINT);
        pb_varint(ev, (uint64_t)step);
    }
}

/* One TFRecord around ev (freed), written and flushed. */
static enum seg_status write_record(struct seg_tb_writer *w, struct pbuf *ev)
{
    if (ev->oom) {
        free(ev->p);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", w->path);
    }
    uint8_t head[12], tail[4];
    uint64_t len = ev->n;
    for (int i = 0; i < 8; i++)
        head[i] = (uint8_t)(len >> (8 * i));
    uint32_t c = seg_crc32c_masked(head, 8), d = seg_crc32c_masked(ev->p, ev->n);
    for (int i = 0; i < 4; i++) {
        head[8 + i] = (uint8_t)(c >> (8 * i));
        tail[i] = (uint8_t)(d >> (8 * i));
    }
    bool ok = fwrite(head, 1, 12, w->f) == 12 && fwrite(ev->p, 1, ev->n, w->f) == ev->n &&
              fwrite(tail, 1, 4, w->f) == 4 && fflush(w->f) == 0;
    free(ev->p);
    memset(ev, 0, sizeof *ev);
    return ok ? SEG_STATUS_OK : seg_error(SEG_STATUS_IO, "%s: %s", w->path, strerror(errno));
}

enum seg_status seg_tb_open(const char *dir, struct seg_tb_writer **out)
{
    *out = NULL;
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++) /* a file name, whatever the host is called */
        if (*p == '/' || *p == ' ')
            *p = '_';
    struct seg_tb_writer *w = calloc(1, sizeof *w);
    if (!w)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "tensorboard: out of host memory");
    snprintf(w->path, sizeof w->path, "%.4000s/events.out.tfevents.%lld.%s", dir, (long long)time(NULL), host);
    /* append: a run restarted within the same second keeps the first one's records */
    w->f = fopen(w->path, "ab");
    if (!w->f) {
        enum seg_status st = seg_error(SEG_STATUS_IO, "%s: %s", w->path, strerror(errno));
        free(w);
        return st;
    }
    struct pbuf ev = {0};
    event_header(&ev, 0);
    static const char version[] = "brain.Event:2";
    pb_len_field(&ev, 3, version, sizeof version - 1);
    enum seg_status st = write_record(w, &ev);
    if (st) {
        seg_tb_close(w);
        return st;
    }
    *out = w;
    return SEG_STATUS_OK;
}

const char *seg_tb_path(const struct seg_tb_writer *w) { return w ? w->path : ""; }

enum seg_status seg_tb_scalars(struct seg_tb_writer *w, int64_t step, int n, const char *const *tags,
                               const float *values)
{
    if (!w || n <= 0)
        return SEG_STATUS_OK;
    struct pbuf ev = {0}, sum = {0}, val = {0};
    event_header(&ev, step);
    for (int i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof bits);
        pb_len_field(&val, 1, tags[i], strlen(tags[i]));
        pb_key(&val, 2, WIRE_FIXED32);
        pb_fixed(&val, bits, 4);
        pb_message(&sum, 1, &val);
    }
    pb_message(&ev, 5, &sum);
    return write_record(w, &ev);
}

enum seg_status seg_tb_image(struct seg_tb_writer *w, int64_t step, const char *tag, int width, int height,
                             int channels, const uint8_t *png, size_t size)
{
    if (!w)
        return SEG_STATUS_OK;
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3 && channels != 4))
        return seg_error(SEG_STATUS_INVALID, "tensorboard: image %s: %dx%d with %d channels", tag, width, height,
                         channels);
    struct pbuf ev = {0}, sum = {0}, val = {0}, img = {0};
    event_header(&ev, step);
    pb_key(&img, 1, WIRE_VARINT);
    pb_varint(&img, (uint64_t)height);
    pb_key(&img, 2, WIRE_VARINT);
    pb_varint(&img, (uint64_t)width);
    pb_key(&img, 3, WIRE_VARINT);
    pb_varint(&img, (uint64_t)channels);
    pb_len_field(&img, 4, png, size);
    pb_len_field(&val, 1, tag, strlen(tag));
    pb_message(&val, 4, &img);
    pb_message(&sum, 1, &val);
    pb_message(&ev, 5, &sum);
    return write_record(w, &ev);
}

enum seg_status seg_tb_session_start(struct seg_tb_writer *w, int64_t step)
{
    if (!w)
        return SEG_STATUS_OK;
    struct pbuf ev = {0}, log = {0};
    event_header(&ev, step);
    pb_key(&log, 1, WIRE_VARINT);
    pb_varint(&log, 1); /* SessionLog.START */
    pb_message(&ev, 6, &log);
    return write_record(w, &ev);
}

void seg_tb_close(struct seg_tb_writer *w)
{
    if (!w)
        return;
    if (w->f)
        fclose(w->f);
    free(w);
}
