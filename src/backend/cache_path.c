/* cache_path.c: where a backend keeps what it learns about a device (GEMM tuning, the
 * measured convolution algorithms): <cache>/<backend>/<kind>-<hash of device and driver>.txt
 * with <cache> = $SEGDA_CACHE_DIR, else $XDG_CACHE_HOME/segda, else $HOME/.cache/segda.
 * A new driver gets a new file: what was measured under the old one no longer holds. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "backend/backend.h"
#include "data/data.h" /* seg_dir_create */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool seg_cache_dir(const char *backend, bool create, char *out, size_t size)
{
    const char *e;
    int n;
    if ((e = getenv("SEGDA_CACHE_DIR")) && *e)
        n = snprintf(out, size, "%s/%s", e, backend);
    else if ((e = getenv("XDG_CACHE_HOME")) && *e && is_dir(e))
        n = snprintf(out, size, "%s/segda/%s", e, backend);
    else if ((e = getenv("HOME")) && *e && is_dir(e))
        n = snprintf(out, size, "%s/.cache/segda/%s", e, backend);
    else
        return false;
    if (n <= 0 || (size_t)n >= size)
        return false;
    if (!create || seg_dir_create(out) == SEG_STATUS_OK)
        return true;
    seg_error_clear(); /* no cache directory is not an error: callers go on without one */
    return false;
}

bool seg_backend_cache_path(const struct seg_backend *be, const char *kind, bool create, char *out,
                            size_t size)
{
    char dir[900];
    if (!seg_cache_dir(be->iface->name, create, dir, sizeof dir))
        return false;
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    const char *parts[2] = {be->info.name, be->info.driver};
    for (int i = 0; i < 2; i++)
        for (const char *p = parts[i];; p++) {
            h = (h ^ (unsigned char)*p) * 0x100000001b3ULL; /* the NUL separates the parts */
            if (!*p)
                break;
        }
    snprintf(out, size, "%s/%s-%016llx.txt", dir, kind, (unsigned long long)h);
    return true;
}
