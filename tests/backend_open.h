/* backend_open.h: how every per-backend test opens its backend. A backend that is not built
 * or has no device is a skip (exit 77) unless SEGDA_REQUIRE names it, then a failure: CI's
 * PoCL and lavapipe tests never skip silently. */
#ifndef SEGDA_TESTS_BACKEND_OPEN_H
#define SEGDA_TESTS_BACKEND_OPEN_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segda.h"

/* 0 with *be open, else the exit code the test should return (77 skip, 1 required). */
static inline int test_backend_open(const char *spec, struct seg_backend **be)
{
    char name[32];
    snprintf(name, sizeof name, "%s", spec);
    char *colon = strchr(name, ':');
    if (colon)
        *colon = '\0';
    *be = NULL;
    if (seg_backend_compiled(name) && !seg_backend_create(spec, be))
        return 0;
    const char *req = getenv("SEGDA_REQUIRE");
    if (req && strstr(req, name)) {
        fprintf(stderr, "FAIL: backend %s required but unavailable: %s\n", spec, seg_last_error());
        return 1;
    }
    printf("SKIP: backend %s unavailable\n", spec);
    return 77;
}

/* Counts a failed check in the int `fails` and says where (file:line) and why. */
#define TEST_CHECK(fails, cond, ...)                                                         \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            (fails)++;                                                                       \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                      \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
        }                                                                                    \
    } while (0)

/* A per-backend test's arguments: `-b BACKEND` (default cpu) into *spec. Anything else
 * prints "usage: NAME [-b BACKEND]"; then the test returns *rc (0 for --help, else 2). */
static inline bool test_backend_arg(int argc, char **argv, const char *name, const char **spec, int *rc)
{
    *spec = "cpu";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc) {
            *spec = argv[++i];
            continue;
        }
        printf("usage: %s [-b BACKEND]\n", name);
        *rc = strcmp(argv[i], "--help") ? 2 : 0;
        return false;
    }
    return true;
}

#endif
