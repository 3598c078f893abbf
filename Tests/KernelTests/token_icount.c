// One generated token's weight matmuls of SmolLM2-135M (30 layers of q 576, k 192, v 192, o 576,
// gate 1536, up 1536 rows × 576 columns and down 576 × 1536, then the tied 49,152-row output
// matrix), run through one kernel table's x8 gemv and activation quantizer: the program
// scripts/kernel_icount.sh counts instructions of under qemu-user, once with `tokens` 0 and once
// with 1, so the difference is one token's matmul work on that path. Weights are one layer's,
// reused (instruction counts do not depend on the values; the output matrix is 32 calls on the
// 1536-row one). Not a speed measurement.
//
// `quant scalar|simd int4|int4-sym n`: quantizes SmolLM2's 192 × 576 k_proj shape (Gaussian
// values) n times with the scalar search or the CPU's SIMD search (AVX2 / NEON), for the same
// count of the quantizer's work.
#include "sk_kernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static void fill(uint8_t *p, size_t n) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        memcpy(p + i, &rng, 8);
    }
}

static int quant(const char *path, const char *type_name, int times) {
    const int type = !strcmp(type_name, "int4") ? SK_INT4 : SK_INT4_SYM;
    const size_t n = 192 * 576, nb = n / 32;
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i += 2) {   // Box-Muller from the same xorshift stream
        uint64_t u[2];
        fill((uint8_t *)u, 16);
        double a = ((double)(u[0] >> 11) + 0.5) * 0x1p-53, b = (double)(u[1] >> 11) * 0x1p-53;
        double r = sqrt(-2 * log(a));
        x[i] = (float)(0.02 * r * cos(6.283185307179586 * b));
        x[i + 1] = (float)(0.02 * r * sin(6.283185307179586 * b));
    }
    uint8_t *out = malloc(nb * 20);
    double sums[2] = {0, 0};
    int simd = !strcmp(path, "simd"), width = sk_quantize_simd_width();
    if (simd && !width) { fprintf(stderr, "no SIMD quantizer here\n"); return 3; }
    for (int t = 0; t < times; t++) {
        int64_t r = simd ? sk_quantize_blocks_simd(width == 8 ? 4 : width, type, x, nb, 32, out, sums)
                         : sk_quantize_blocks_scalar(type, x, nb, 32, out, sums);
        if (r != -1) { fprintf(stderr, "quantize failed: %lld\n", (long long)r); return 1; }
    }
    printf("quant %s %s width %d times=%d sse=%g\n", path, type_name, simd ? width : 0, times, sums[0]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "quant")) return quant(argv[2], argv[3], atoi(argv[4]));
    if (argc != 4) { fprintf(stderr, "usage: %s avx2|neon|neon-plain|neon-rows|scalar int8|int4|int4-sym tokens\n", argv[0]); return 2; }
    const sk_kernel_table *t = NULL;
    if (!strcmp(argv[1], "avx2")) t = sk_kernels_avx2();
    else if (!strcmp(argv[1], "neon")) t = sk_kernels_neon_dotprod();
    else if (!strcmp(argv[1], "neon-plain")) t = sk_kernels_neon_plain();
    else if (!strcmp(argv[1], "scalar")) t = sk_kernels_scalar();
    static sk_kernel_table rows_only;
    if (!strcmp(argv[1], "neon-rows") && sk_kernels_neon_plain()) {
        // the NEON path before the x8 kernels: the SKM row layout, one dot per row
        rows_only = *sk_kernels_neon_plain();
        rows_only.name = "neon (row layout)";
        rows_only.gemv_int4_x8 = NULL;
        rows_only.gemv_int8_x8 = NULL;
        t = &rows_only;
    }
    int type = !strcmp(argv[2], "int8") ? SK_INT8 : !strcmp(argv[2], "int4") ? SK_INT4 : SK_INT4_SYM;
    int tokens = atoi(argv[3]);
    if (!t) { fprintf(stderr, "kernel path %s not available here\n", argv[1]); return 3; }
    const int d = 576, ff = 1536, kv = 192;
    const int asym = type == SK_INT4;
    // per block of 32 columns × 8 rows
    size_t bb = type == SK_INT8 ? SK_X8_INT8_BLOCK_BYTES : sk_x8_block_bytes(asym);
    size_t big = bb * (ff / 8) * (d / 32);   // the largest matrix: 1536 × 576 (down: 576 × 1536, same bytes)
    uint8_t *w = malloc(big);
    fill(w, big);
    float *x = malloc(sizeof(float) * ff), *out = malloc(sizeof(float) * ff);
    sk_act_q8 *a = malloc(sizeof(sk_act_q8) * (ff / 32));
    for (int i = 0; i < ff; i++) x[i] = (float)((i * 7919) % 201 - 100) / 50.0f;
    // tables without x8 kernels run their row-layout gemv over the same bytes (the two layouts
    // take the same bytes per row)
#define MATMUL(ROWS, COLS)                                                                               \
    do {                                                                                                 \
        if (type == SK_INT8 && t->gemv_int8_x8) t->gemv_int8_x8(w, ROWS, a, COLS, out);                  \
        else if (type != SK_INT8 && t->gemv_int4_x8) t->gemv_int4_x8(asym, w, ROWS, a, COLS, out);      \
        else t->gemv(type, w, type == SK_INT8 ? (size_t)34 * (COLS / 32) : (size_t)(asym ? 20 : 18) * (COLS / 32), ROWS, a, COLS, 32, out); \
    } while (0)
    for (int tk = 0; tk < tokens; tk++) {
        for (int l = 0; l < 30; l++) {
            t->quantize_act(x, a, d);       // attention input
            MATMUL(d, d); MATMUL(kv, d); MATMUL(kv, d);
            t->quantize_act(x, a, d);       // attention output
            MATMUL(d, d);
            t->quantize_act(x, a, d);       // MLP input
            MATMUL(ff, d); MATMUL(ff, d);
            t->quantize_act(x, a, ff);      // down_proj input
            MATMUL(d, ff);
        }
        t->quantize_act(x, a, d);
        for (int c = 0; c < 49152 / ff; c++) MATMUL(ff, d);
    }
    printf("%s %s tokens=%d out[0]=%g\n", t->name, argv[2], tokens, (double)out[0]);
    return 0;
}
