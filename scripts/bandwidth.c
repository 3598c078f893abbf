// Streaming read bandwidth of this machine: T threads each sum their share of a large buffer
// (far larger than the caches), best of several passes. Prints GB/s. Used by
// bench_vs_llama_cpp.py as the roofline for generation (which streams every weight once per token).
//   cc -O2 -pthread scripts/bandwidth.c -o bandwidth && ./bandwidth THREADS MEGABYTES
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { const uint64_t *p; size_t n; uint64_t sum; } job;

static void *reader(void *arg) {
    job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= j->n; i += 4) { s0 += j->p[i]; s1 += j->p[i + 1]; s2 += j->p[i + 2]; s3 += j->p[i + 3]; }
    j->sum = s0 + s1 + s2 + s3;
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    size_t mb = argc > 2 ? (size_t)atol(argv[2]) : 512;
    if (threads < 1 || threads > 256 || mb < 1) { fprintf(stderr, "usage: bandwidth THREADS MEGABYTES\n"); return 2; }
    size_t n = mb * 1024 * 1024 / 8;
    uint64_t *buf = malloc(n * 8);
    if (!buf) { fprintf(stderr, "out of memory\n"); return 1; }
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double best = 1e30;
    uint64_t check = 0;
    for (int pass = 0; pass < 7; pass++) {
        pthread_t th[256];
        job jobs[256];
        double t = now();
        for (int k = 0; k < threads; k++) {
            size_t a = n * k / threads, b = n * (k + 1) / threads;
            jobs[k] = (job){buf + a, b - a, 0};
            pthread_create(&th[k], NULL, reader, &jobs[k]);
        }
        for (int k = 0; k < threads; k++) { pthread_join(th[k], NULL); check += jobs[k].sum; }
        t = now() - t;
        if (t < best) best = t;
    }
    printf("%.2f GB/s (checksum %llu)\n", n * 8 / best / 1e9, (unsigned long long)(check & 0xff));
    free(buf);
    return 0;
}
