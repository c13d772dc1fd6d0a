/* status.c: status names and the per-thread last-error message. */
#include <stdarg.h>
#include <stdio.h>

#include "backend/backend.h"

/* errno-style: one message per thread, so concurrent backends do not clobber each other. */
static _Thread_local char seg_error_msg[1024];

const char *seg_status_name(enum seg_status s)
{
    switch (s) {
    case SEG_STATUS_OK: return "ok";
    case SEG_STATUS_INVALID: return "invalid argument";
    case SEG_STATUS_OUT_OF_MEMORY: return "out of memory";
    case SEG_STATUS_BACKEND: return "backend error";
    case SEG_STATUS_UNSUPPORTED: return "unsupported";
    case SEG_STATUS_IO: return "i/o error";
    case SEG_STATUS_NO_DEVICE: return "no device";
    case SEG_STATUS_FORMAT: return "malformed data";
    }
    return "unknown status";
}

const char *seg_last_error(void) { return seg_error_msg; }

void seg_error_clear(void) { seg_error_msg[0] = '\0'; }

enum seg_status seg_error(enum seg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(seg_error_msg, sizeof seg_error_msg, fmt, ap);
    va_end(ap);
    return s;
}

size_t seg_dtype_size(enum seg_dtype t) { return t == SEG_DTYPE_U8 ? 1 : 4; }

const char *seg_dtype_name(enum seg_dtype t)
{
    switch (t) {
    case SEG_DTYPE_F32: return "f32";
    case SEG_DTYPE_I32: return "i32";
    case SEG_DTYPE_U8: return "u8";
    }
    return "?";
}

static const char *const seg_op_names[SEG_OP_COUNT] = {
#define SEG_OP(name, ndst, nsrc, diff) [SEG_OP_##name] = #name,
#include "core/ops.def"
#undef SEG_OP
};
static const unsigned char seg_op_ndsts[SEG_OP_COUNT] = {
#define SEG_OP(name, ndst, nsrc, diff) [SEG_OP_##name] = ndst,
#include "core/ops.def"
#undef SEG_OP
};
static const unsigned char seg_op_nsrcs[SEG_OP_COUNT] = {
#define SEG_OP(name, ndst, nsrc, diff) [SEG_OP_##name] = nsrc,
#include "core/ops.def"
#undef SEG_OP
};
static const bool seg_op_diffs[SEG_OP_COUNT] = {
#define SEG_OP(name, ndst, nsrc, diff) [SEG_OP_##name] = diff,
#include "core/ops.def"
#undef SEG_OP
};

const char *seg_op_name(enum seg_op op) { return op < SEG_OP_COUNT ? seg_op_names[op] : "?"; }
int seg_op_ndst(enum seg_op op) { return op < SEG_OP_COUNT ? seg_op_ndsts[op] : 0; }
int seg_op_nsrc(enum seg_op op) { return op < SEG_OP_COUNT ? seg_op_nsrcs[op] : 0; }
bool seg_op_differentiable(enum seg_op op) { return op < SEG_OP_COUNT && seg_op_diffs[op]; }
