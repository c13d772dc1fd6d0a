/* npy.c: writes float32 NumPy .npy arrays (version 1.0), atomically. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"

enum seg_status seg_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
    char dims[128] = "";
    size_t used = 0;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%lld,%s", (long long)shape[d],
                                 d + 1 < ndim || ndim > 1 ? " " : "");
        n *= shape[d];
    }
    char header[256];
    int len = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    /* Pad with spaces so magic (6) + version (2) + length (2) + header ends on 64 bytes, then '\n'. */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    memset(header + len, ' ', (size_t)pad);
    header[len + pad] = '\n';
    len += pad + 1;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return seg_error(SEG_STATUS_IO, "%s: cannot write: %s", tmp, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 255),
                             (unsigned char)(len >> 8)};
    bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, (size_t)len, f) == (size_t)len &&
              fwrite(data, sizeof *data, (size_t)n, f) == (size_t)n;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return seg_error(SEG_STATUS_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return SEG_STATUS_OK;
}
