/* cache_path.c: where a backend keeps what it learns about a device (GEMM tuning, the
 * measured convolution algorithms): <cache>/<backend>/<kind>-<hash of device and driver>.txt
 * with <cache> = $SEGDA_CACHE_DIR, else $XDG_CACHE_HOME/segda, else $HOME/.cache/segda.
 * A new driver gets a new file: what was measured under the old one no longer holds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "backend/backend.h"

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

bool seg_backend_cache_path(const struct seg_backend *be, const char *kind, bool create, char *out,
                            size_t size)
{
    char dir[900];
    const char *e, *name = be->iface->name;
    if ((e = getenv("SEGDA_CACHE_DIR")) && *e)
        snprintf(dir, sizeof dir, "%s/%s", e, name);
    else if ((e = getenv("XDG_CACHE_HOME")) && *e)
        snprintf(dir, sizeof dir, "%s/segda/%s", e, name);
    else if ((e = getenv("HOME")) && *e)
        snprintf(dir, sizeof dir, "%s/.cache/segda/%s", e, name);
    else
        return false;
    if (create && mkdirs(dir) != 0)
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
