/* fuzz_safetensors.c: mutates valid safetensors images with a seeded RNG (bit flips, byte
 * changes, truncation, header-length changes) and checks that the reader only ever returns
 * an error or a file whose every tensor lies inside the buffer. Run under ASan in CI.
 * usage: fuzz_safetensors [ITERATIONS] [SEED] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    uint32_t s = argc > 2 ? (uint32_t)atol(argv[2]) | 1u : 12345u;
    const char *header = "{\"__metadata__\":{\"arch\":\"deeplabv2_tiny\",\"num_classes\":\"19\"},"
                         "\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                         "\"bn1.bias\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[24,40]},"
                         "\"x\":{\"dtype\":\"U8\",\"shape\":[3,1],\"data_offsets\":[40,43]}}";
    size_t hl = strlen(header), base = 8 + hl + 43;
    unsigned char *seed = calloc(1, base);
    for (int i = 0; i < 8; i++)
        seed[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(seed + 8, header, hl);
    long accepted = 0;
    for (long it = 0; it < iters; it++) {
        size_t size = base;
        unsigned char *b = malloc(base);
        memcpy(b, seed, base);
        int nmut = 1 + (int)(next(&s) % 4);
        for (int m = 0; m < nmut; m++) {
            switch (next(&s) % 5) {
            case 0: b[next(&s) % size] ^= (unsigned char)(1u << (next(&s) % 8)); break;
            case 1: b[next(&s) % size] = (unsigned char)next(&s); break;
            case 2: size = next(&s) % size + 1; break;                 /* truncate */
            case 3: b[next(&s) % 8] = (unsigned char)next(&s); break;  /* header length */
            case 4: { /* digits inside the header: offsets and shapes */
                size_t at = 8 + next(&s) % hl;
                if (at < size)
                    b[at] = (unsigned char)('0' + next(&s) % 10);
                break;
            }
            }
        }
        unsigned char *copy = malloc(size); /* exact-size buffer so ASan sees any overread */
        memcpy(copy, b, size);
        free(b);
        struct seg_st_file f;
        if (seg_st_parse(copy, size, "fuzz", &f) == SEG_STATUS_OK) {
            accepted++;
            for (int i = 0; i < f.ntensors; i++) {
                const unsigned char *d = f.tensors[i].data;
                if (d < f.buf || d + f.tensors[i].nbytes > f.buf + f.size) {
                    fprintf(stderr, "iteration %ld: tensor %s outside the buffer\n", it, f.tensors[i].name);
                    return 1;
                }
                volatile unsigned sum = 0; /* touch every byte */
                for (size_t k = 0; k < f.tensors[i].nbytes; k++)
                    sum += d[k];
                (void)sum;
            }
            seg_st_free(&f);
        }
    }
    free(seed);
    printf("fuzz_safetensors: %ld iterations, %ld accepted, no crash\n", iters, accepted);
    return 0;
}
