// Every SIMD kernel path this build has (AVX2 on x86-64, NEON on aarch64) against the scalar
// reference, on random rows of every block type and group. Built natively and, for NEON, with
// an aarch64 cross compiler and run under qemu-user (scripts/test-kernels.sh).
#include "sk_kernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x1234567;
static double uniform(void) { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return ((state >> 11) + 0.5) / 9007199254740992.0; }
static float gauss(void) { return (float)(sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform())); }

static uint16_t f2h(float f) {  // round-to-nearest-even f32 -> f16 (normal range only)
    uint32_t x; memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000; int e = (int)((x >> 23) & 0xff) - 127 + 15; uint32_t m = x & 0x7fffff;
    if (e <= 0) return (uint16_t)sign;
    uint32_t h = sign | (e << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

static int failures = 0, checks = 0, vnni_checked = 0, avx2_gemm_checked = 0;
static const sk_kernel_table *paths[4];
static void expect_close(const char *what, const char *path, int n, int g, float ref, float got) {
    checks++;
    float tol = 1e-4f * fmaxf(1.0f, fabsf(ref)) + 1e-3f;
    if (!(fabsf(ref - got) <= tol)) {
        failures++;
        fprintf(stderr, "FAIL %s %s n=%d group=%d: scalar %.7g, simd %.7g\n", path, what, n, g, ref, got);
    }
}

// The x8 gemv kernels at the extremes of their integer sums (every code at its largest magnitude,
// every activation at ±127 with the sign that adds up), where a narrow intermediate would wrap.
static void test_x8_extremes(const sk_kernel_table *t) {
    const int n = 1536, nb = n / 32, rows = 24;
    sk_act_q8 *a = malloc(sizeof(sk_act_q8) * nb);
    for (int sign = -1; sign <= 1; sign += 2) {
        for (int b = 0; b < nb; b++) {
            a[b].d = 0.01f;
            a[b].isum = sign * 127 * 32;
            memset(a[b].qs, (int8_t)(sign * 127), 32);
        }
        for (int asym = 0; asym < 2; asym++) {
            size_t bb = sk_x8_block_bytes(asym);
            uint8_t *pk = malloc(bb * nb * (rows / 8));
            for (int b = 0; b < nb * (rows / 8); b++) {
                uint16_t d = f2h(0.02f), m = f2h(-0.1f);
                for (int i = 0; i < 8; i++) { memcpy(pk + bb * b + 2 * i, &d, 2); if (asym) memcpy(pk + bb * b + 16 + 2 * i, &m, 2); }
                memset(pk + bb * b + (asym ? 32 : 16), 0xff, 128);   // every code 15
            }
            float want[24], got[24];
            sk_gemv_int4_x8_scalar(asym, pk, rows, a, n, want);
            if (t->gemv_int4_x8) {
                t->gemv_int4_x8(asym, pk, rows, a, n, got);
                for (int r = 0; r < rows; r++) expect_close(asym ? "gemv_int4_x8 extremes" : "gemv_int4_sym_x8 extremes", t->name, n, 32, want[r], got[r]);
            }
            sk_gemm_int4_x8_fn gemms[2] = {sk_gemm_int4_x8_vnni(), sk_gemm_int4_x8_avx2()};
            for (int gi = 0; gi < 2; gi++) {
                if (!gemms[gi] || t != paths[0]) continue;
                sk_act_q8 *a5 = malloc(sizeof(sk_act_q8) * nb * 13);
                for (int k = 0; k < 13; k++) memcpy(a5 + k * nb, a, sizeof(sk_act_q8) * nb);
                float o5[13 * 24];
                gemms[gi](asym, pk, rows, a5, 13, n, o5, rows);
                for (int k = 0; k < 13; k++)
                    for (int r = 0; r < rows; r++) expect_close("gemm int4 x8 extremes", gi ? "avx2 gemm" : "avx512vnni", n, 32, want[r], o5[rows * k + r]);
                free(a5);
            }
            free(pk);
        }
        uint8_t *pk = malloc((size_t)SK_X8_INT8_BLOCK_BYTES * nb * (rows / 8));
        for (int b = 0; b < nb * (rows / 8); b++) {
            uint16_t d = f2h(0.02f);
            for (int i = 0; i < 8; i++) memcpy(pk + SK_X8_INT8_BLOCK_BYTES * b + 2 * i, &d, 2);
            memset(pk + SK_X8_INT8_BLOCK_BYTES * b + 16, 0x80, 256);   // every code −128
        }
        float want[24], got[24];
        sk_gemv_int8_x8_scalar(pk, rows, a, n, want);
        if (t->gemv_int8_x8) {
            t->gemv_int8_x8(pk, rows, a, n, got);
            for (int r = 0; r < rows; r++) expect_close("gemv_int8_x8 extremes", t->name, n, 32, want[r], got[r]);
        }
        sk_gemm_int8_x8_fn gemms8[2] = {sk_gemm_int8_x8_vnni(), sk_gemm_int8_x8_avx2()};
        for (int gi = 0; gi < 2; gi++) {
            if (!gemms8[gi] || t != paths[0]) continue;
            sk_act_q8 *a5 = malloc(sizeof(sk_act_q8) * nb * 13);
            for (int k = 0; k < 13; k++) memcpy(a5 + k * nb, a, sizeof(sk_act_q8) * nb);
            float o5[13 * 24];
            gemms8[gi](pk, rows, a5, 13, n, o5, rows);
            for (int k = 0; k < 13; k++)
                for (int r = 0; r < rows; r++) expect_close("gemm int8 x8 extremes", gi ? "avx2 gemm" : "avx512vnni", n, 32, want[r], o5[rows * k + r]);
            free(a5);
        }
        free(pk);
    }
    free(a);
}

static void test_table(const sk_kernel_table *s, const sk_kernel_table *t) {
    int sizes[] = {32, 64, 128, 576, 1536};
    for (int si = 0; si < 5; si++) {
        int n = sizes[si];
        float *x = malloc(n * 4), *wf = malloc(n * 4);
        uint16_t *wh = malloc(n * 2);
        for (int i = 0; i < n; i++) { x[i] = gauss() * (i % 13 == 0 ? 8 : 1); wf[i] = gauss() * 0.05f; wh[i] = f2h(wf[i]); }
        expect_close("dot_f32", t->name, n, 0, s->dot_f32(wf, x, n), t->dot_f32(wf, x, n));
        expect_close("dot_f16", t->name, n, 0, s->dot_f16(wh, x, n), t->dot_f16(wh, x, n));
        sk_act_q8 *as = malloc(sizeof(sk_act_q8) * n / 32), *at = malloc(sizeof(sk_act_q8) * n / 32);
        s->quantize_act(x, as, n);
        t->quantize_act(x, at, n);
        checks++;
        for (int b = 0; b < n / 32; b++) {
            if (as[b].d != at[b].d || as[b].isum != at[b].isum || memcmp(as[b].qs, at[b].qs, 32) != 0) {
                failures++;
                fprintf(stderr, "FAIL %s quantize_act n=%d block %d differs from scalar\n", t->name, n, b);
                break;
            }
        }
        // random weight blocks: int8
        uint8_t *w8 = malloc(34 * n / 32);
        for (int b = 0; b < n / 32; b++) {
            uint16_t d = f2h(0.01f + 0.001f * b); memcpy(w8 + 34 * b, &d, 2);
            for (int i = 0; i < 32; i++) w8[34 * b + 2 + i] = (uint8_t)(int8_t)(lrint(gauss() * 40) % 127);
        }
        expect_close("dot_int8", t->name, n, 32, s->dot_int8(w8, as, n), t->dot_int8(w8, as, n));
        int groups[] = {32, 64, 128};
        for (int gi = 0; gi < 3; gi++) {
            int g = groups[gi];
            if (n % g) continue;
            uint8_t *w4 = malloc((4 + g / 2) * n / g), *w4s = malloc((2 + g / 2) * n / g);
            for (int b = 0; b < n / g; b++) {
                uint16_t d = f2h(0.02f + 0.001f * b), m = f2h(-0.1f - 0.002f * b);
                memcpy(w4 + (4 + g / 2) * b, &d, 2); memcpy(w4 + (4 + g / 2) * b + 2, &m, 2);
                memcpy(w4s + (2 + g / 2) * b, &d, 2);
                for (int i = 0; i < g / 2; i++) {
                    w4[(4 + g / 2) * b + 4 + i] = (uint8_t)(uniform() * 256);
                    w4s[(2 + g / 2) * b + 2 + i] = (uint8_t)(uniform() * 256);
                }
            }
            expect_close("dot_int4", t->name, n, g, s->dot_int4(w4, as, n, g), t->dot_int4(w4, as, n, g));
            expect_close("dot_int4_sym", t->name, n, g, s->dot_int4_sym(w4s, as, n, g), t->dot_int4_sym(w4s, as, n, g));
            free(w4); free(w4s);
        }
        // gemv over 11 rows (two blocks of four and a remainder of three) against per-row scalar dots
        {
            int rows = 11, g = 32;
            size_t rb8 = 34 * n / 32, rb4 = (4 + g / 2) * n / g, rb4s = (2 + g / 2) * n / g;
            uint8_t *m8 = malloc(rb8 * rows), *m4 = malloc(rb4 * rows), *m4s = malloc(rb4s * rows);
            for (size_t i = 0; i < rb8 * rows; i++) m8[i] = (uint8_t)(int8_t)(lrint(gauss() * 40) % 127);
            for (size_t i = 0; i < rb4 * rows; i++) m4[i] = (uint8_t)(uniform() * 256);
            for (size_t i = 0; i < rb4s * rows; i++) m4s[i] = (uint8_t)(uniform() * 256);
            for (int r = 0; r < rows; r++) {  // sane f16 scales and minima
                for (int b = 0; b < n / 32; b++) {
                    uint16_t d = f2h(0.01f + 0.001f * (b + r)), m = f2h(-0.1f - 0.003f * r);
                    memcpy(m8 + r * rb8 + 34 * b, &d, 2);
                    memcpy(m4 + r * rb4 + (4 + g / 2) * b, &d, 2); memcpy(m4 + r * rb4 + (4 + g / 2) * b + 2, &m, 2);
                    memcpy(m4s + r * rb4s + (2 + g / 2) * b, &d, 2);
                }
            }
            float got[11];
            const char *names[] = {"gemv int8", "gemv int4", "gemv int4_sym"};
            const uint8_t *mats[] = {m8, m4, m4s};
            size_t rbs[] = {rb8, rb4, rb4s};
            for (int type = 0; type < 3; type++) {
                t->gemv(type, mats[type], rbs[type], rows, as, n, g, got);
                for (int r = 0; r < rows; r++) {
                    const uint8_t *row = mats[type] + r * rbs[type];
                    float ref = type == SK_INT8 ? s->dot_int8(row, as, n) : type == SK_INT4 ? s->dot_int4(row, as, n, g) : s->dot_int4_sym(row, as, n, g);
                    expect_close(names[type], t->name, n, g, ref, got[r]);
                }
            }
            // other groups go row by row
            if (n % 64 == 0) {
                size_t rb = (4 + 32) * n / 64;
                uint8_t *g64 = malloc(rb * 5);
                for (size_t i = 0; i < rb * 5; i++) g64[i] = (uint8_t)(uniform() * 256);
                for (int r = 0; r < 5; r++) {
                    for (int b = 0; b < n / 64; b++) {
                        uint16_t d = f2h(0.02f + 0.001f * b), m = f2h(-0.05f * r);
                        memcpy(g64 + r * rb + 36 * b, &d, 2); memcpy(g64 + r * rb + 36 * b + 2, &m, 2);
                    }
                }
                t->gemv(SK_INT4, g64, rb, 5, as, n, 64, got);
                for (int r = 0; r < 5; r++) expect_close("gemv int4 g64", t->name, n, 64, s->dot_int4(g64 + r * rb, as, n, 64), got[r]);
                free(g64);
            }
            free(m8); free(m4); free(m4s);
        }
        // x8 layout: pack 16 random int4 / int4-sym rows; the scalar x8 gemv and this path's x8
        // gemv against per-row scalar dots on the SKM rows; unpacking against direct decoding
        for (int asym = 0; asym < 2; asym++) {
            int rows = 24;   // three groups of 8 (an odd count)
            size_t rb = (size_t)(asym ? 20 : 18) * (n / 32);
            uint8_t *m = malloc(rb * rows), *pk = malloc(sk_x8_block_bytes(asym) * (n / 32) * (rows / 8));
            for (size_t i = 0; i < rb * rows; i++) m[i] = (uint8_t)(uniform() * 256);
            for (int r = 0; r < rows; r++) {
                for (int b = 0; b < n / 32; b++) {
                    uint16_t d = f2h(0.01f + 0.002f * r + 0.0001f * b), mn = f2h(-0.08f - 0.003f * r);
                    memcpy(m + r * rb + (asym ? 20 : 18) * b, &d, 2);
                    if (asym) memcpy(m + r * rb + 20 * b + 2, &mn, 2);
                }
            }
            sk_pack_int4_x8(m, rb, rows, n, asym, pk);
            float ref[24], got[24], simd[24];
            for (int r = 0; r < rows; r++) ref[r] = asym ? s->dot_int4(m + r * rb, as, n, 32) : s->dot_int4_sym(m + r * rb, as, n, 32);
            sk_gemv_int4_x8_scalar(asym, pk, rows, as, n, got);
            for (int r = 0; r < rows; r++) expect_close(asym ? "x8 scalar int4" : "x8 scalar int4_sym", "scalar", n, 32, ref[r], got[r]);
            if (t->gemv_int4_x8) {
                t->gemv_int4_x8(asym, pk, rows, as, n, simd);
                for (int r = 0; r < rows; r++) expect_close(asym ? "gemv_int4_x8" : "gemv_int4_sym_x8", t->name, n, 32, ref[r], simd[r]);
            }
            for (int gi = 0; gi < 2; gi++) {
            sk_gemm_int4_x8_fn gemm = gi ? sk_gemm_int4_x8_avx2() : sk_gemm_int4_x8_vnni();
            const char *gname = gi ? "avx2 gemm" : "avx512vnni";
            if (gemm && t == paths[0]) {
                // 13 tokens (blocks of eight and four and a remainder): the same activations, then
                // other rows; out with ldo = rows + 5
                const int T = 13;   // a block of eight, one of four, one left
                float *x2 = malloc(sizeof(float) * n * (T - 1)), *o = malloc(sizeof(float) * T * (rows + 5));
                sk_act_q8 *acts = malloc(sizeof(sk_act_q8) * (n / 32) * T);
                for (int i = 0; i < (T - 1) * n; i++) x2[i] = gauss();
                memcpy(acts, as, sizeof(sk_act_q8) * (n / 32));
                for (int tk = 1; tk < T; tk++) s->quantize_act(x2 + (tk - 1) * n, acts + tk * (n / 32), n);
                gemm(asym, pk, rows, acts, T, n, o, rows + 5);
                for (int tk = 0; tk < T; tk++) {
                    float want[24];
                    sk_gemv_int4_x8_scalar(asym, pk, rows, acts + tk * (n / 32), n, want);
                    for (int r = 0; r < rows; r++) expect_close(asym ? "gemm int4 x8" : "gemm int4_sym x8", gname, n, 32, want[r], o[tk * (rows + 5) + r]);
                }
                free(x2); free(o); free(acts);
                if (gi) avx2_gemm_checked = 1; else vnni_checked = 1;
            }
            }
            float *un = malloc(sizeof(float) * rows * n);
            sk_unpack_int4_x8(asym, pk, rows, n, un);
            checks++;
            int bad = 0;
            for (int r = 0; r < rows && !bad; r++) {
                for (int j = 0; j < n; j++) {
                    const uint8_t *blk = m + r * rb + (asym ? 20 : 18) * (j / 32);
                    uint16_t dh, mh = 0;
                    memcpy(&dh, blk, 2);
                    if (asym) memcpy(&mh, blk + 2, 2);
                    int jj = j % 32, q = jj < 16 ? blk[(asym ? 4 : 2) + jj] & 15 : blk[(asym ? 4 : 2) + jj - 16] >> 4;
                    float want = asym ? sk_f16_to_f32(dh) * (float)q + sk_f16_to_f32(mh) : sk_f16_to_f32(dh) * (float)(q - 8);
                    if (un[r * n + j] != want) { bad = 1; break; }
                }
            }
            if (bad) { failures++; fprintf(stderr, "FAIL unpack x8 asym=%d n=%d\n", asym, n); }
            float *one = malloc(sizeof(float) * n);
            for (int r = 0; r < rows; r++) {
                sk_unpack_x8_row(asym ? SK_INT4 : SK_INT4_SYM, pk + sk_x8_block_bytes(asym) * (n / 32) * (r / 8), n, r % 8, one);
                checks++;
                if (memcmp(one, un + r * n, sizeof(float) * n) != 0) { failures++; fprintf(stderr, "FAIL x8 row %d asym=%d n=%d\n", r, asym, n); }
            }
            free(one);
            free(un); free(m); free(pk);
        }
        // int8 x8: 16 random rows packed; scalar and SIMD gemv against per-row dots, the VNNI GEMM
        // on 6 tokens, unpacking against direct decoding
        {
            int rows = 24;
            size_t rb = (size_t)34 * (n / 32);
            uint8_t *m = malloc(rb * rows), *pk = malloc((size_t)SK_X8_INT8_BLOCK_BYTES * (n / 32) * (rows / 8));
            for (size_t i = 0; i < rb * rows; i++) m[i] = (uint8_t)(int8_t)(lrint(gauss() * 50) % 128);
            for (int r = 0; r < rows; r++)
                for (int b = 0; b < n / 32; b++) { uint16_t d = f2h(0.004f + 0.001f * r + 0.0002f * b); memcpy(m + r * rb + 34 * b, &d, 2); }
            sk_pack_int8_x8(m, rb, rows, n, pk);
            float ref[24], got[24];
            for (int r = 0; r < rows; r++) ref[r] = s->dot_int8(m + r * rb, as, n);
            sk_gemv_int8_x8_scalar(pk, rows, as, n, got);
            for (int r = 0; r < rows; r++) expect_close("x8 scalar int8", "scalar", n, 32, ref[r], got[r]);
            if (t->gemv_int8_x8) {
                t->gemv_int8_x8(pk, rows, as, n, got);
                for (int r = 0; r < rows; r++) expect_close("gemv_int8_x8", t->name, n, 32, ref[r], got[r]);
            }
            for (int gi = 0; gi < 2; gi++) {
            sk_gemm_int8_x8_fn gemm8 = gi ? sk_gemm_int8_x8_avx2() : sk_gemm_int8_x8_vnni();
            const char *gname = gi ? "avx2 gemm" : "avx512vnni";
            if (gemm8 && t == paths[0]) {
                const int T = 13;   // a block of eight, one of four, one left
                float *x2 = malloc(sizeof(float) * n * T), *o = malloc(sizeof(float) * T * (rows + 3));
                sk_act_q8 *acts = malloc(sizeof(sk_act_q8) * (n / 32) * T);
                for (int i = 0; i < T * n; i++) x2[i] = gauss() * (i % 7 == 0 ? 6 : 1);
                for (int tk = 0; tk < T; tk++) s->quantize_act(x2 + tk * n, acts + tk * (n / 32), n);
                gemm8(pk, rows, acts, T, n, o, rows + 3);
                for (int tk = 0; tk < T; tk++) {
                    float want[24];
                    sk_gemv_int8_x8_scalar(pk, rows, acts + tk * (n / 32), n, want);
                    for (int r = 0; r < rows; r++) expect_close("gemm int8 x8", gname, n, 32, want[r], o[tk * (rows + 3) + r]);
                }
                free(x2); free(o); free(acts);
            }
            }
            float *un = malloc(sizeof(float) * rows * n);
            sk_unpack_int8_x8(pk, rows, n, un);
            checks++;
            int bad = 0;
            for (int r = 0; r < rows && !bad; r++) {
                for (int j = 0; j < n; j++) {
                    const uint8_t *blk = m + r * rb + 34 * (j / 32);
                    uint16_t dh;
                    memcpy(&dh, blk, 2);
                    if (un[r * n + j] != sk_f16_to_f32(dh) * (float)(int8_t)blk[2 + j % 32]) { bad = 1; break; }
                }
            }
            if (bad) { failures++; fprintf(stderr, "FAIL unpack int8 x8 n=%d\n", n); }
            float *one = malloc(sizeof(float) * n);
            for (int r = 0; r < rows; r++) {
                sk_unpack_x8_row(SK_INT8, pk + (size_t)SK_X8_INT8_BLOCK_BYTES * (n / 32) * (r / 8), n, r % 8, one);
                checks++;
                if (memcmp(one, un + r * n, sizeof(float) * n) != 0) { failures++; fprintf(stderr, "FAIL int8 x8 row %d n=%d\n", r, n); }
            }
            free(one);
            free(un); free(m); free(pk);
        }
        free(x); free(wf); free(wh); free(as); free(at); free(w8);
    }
}

// f64 → f16: every finite half (above the largest, 65504, the next step would be 65536), the doubles just either side of each midpoint between
// neighbours, the midpoints themselves (ties to even), overflow and underflow.
static void test_f16_rounding(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        for (int sgn = 0; sgn < 2; sgn++) {
            uint16_t hs = (uint16_t)(h | (sgn ? 0x8000 : 0));
            double v = sk_f16_to_f32(hs), next = h + 1 < 0x7c00 ? (double)sk_f16_to_f32((uint16_t)(hs + 1)) : (sgn ? -65536.0 : 65536.0);
            double mid = (v + next) / 2;
            uint16_t up = h + 1 < 0x7c00 ? (uint16_t)(hs + 1) : (uint16_t)(sgn ? 0xfc00 : 0x7c00);
            uint16_t even = (h & 1) ? up : hs;
            if (sk_f64_to_f16(v) != hs) bad++;
            if (sk_f64_to_f16(nextafter(mid, v)) != hs) bad++;
            if (sk_f64_to_f16(nextafter(mid, 2 * next)) != up) bad++;
            if (sk_f64_to_f16(mid) != even) bad++;
            checks += 4;
        }
    }
    checks += 3;
    if (sk_f64_to_f16(1e300) != 0x7c00 || sk_f64_to_f16(-1e-300) != 0x8000 || sk_f64_to_f16(ldexp(1, -25)) != 0) bad++;
    if (sk_f64_to_f16(nextafter(ldexp(1, -25), 1)) != 1) bad++;
    if (bad) { failures += bad; fprintf(stderr, "FAIL f64 -> f16 rounding: %d cases\n", bad); }
}

// CRC-32: the folding path against slicing-by-8 for every length 0…600 at three alignments and a
// long buffer, chained updates equal one update over the whole, and the standard check value
// ("123456789" → 0xCBF43926).
static void test_crc32(void) {
    int bad = 0;
    size_t big = 1 << 20;
    uint8_t *b = malloc(big + 3);
    for (size_t i = 0; i < big + 3; i++) b[i] = (uint8_t)(uniform() * 256);
    for (size_t n = 0; n <= 600; n++)
        for (int off = 0; off < 3; off++) {
            checks++;
            if (sk_crc32_clmul(0, b + off, n) != sk_crc32_scalar(0, b + off, n)) bad++;
        }
    checks += 3;
    if (sk_crc32_clmul(0x12345678, b, big) != sk_crc32_scalar(0x12345678, b, big)) bad++;
    if (sk_crc32(sk_crc32(0, b, 1000), b + 1000, big - 1000) != sk_crc32_scalar(0, b, big)) bad++;
    if (sk_crc32_scalar(0, (const uint8_t *)"123456789", 9) != 0xCBF43926u || sk_crc32(0, (const uint8_t *)"123456789", 9) != 0xCBF43926u) bad++;
    free(b);
    if (bad) { failures += bad; fprintf(stderr, "FAIL crc32: %d cases\n", bad); }
    else printf("crc32 %s path: checked against slicing-by-8\n", sk_crc32_has_clmul() ? "PCLMULQDQ" : "scalar");
}

// The SIMD searches evaluate the spec's literal error E only for candidates whose estimate from
// the least-squares identities is within a rounding bound of the best (quant_lanes.h), and drop a
// candidate whose codes equal the previous one's. Byte identity with the scalar path (which
// evaluates every candidate) over many blocks, built to sit near those decisions: near-ties
// (grids plus a 1-ulp or 1e-7 nudge, where several candidates fit almost equally), few
// distinct levels (many candidates with equal codes), exponents spread over 2⁻⁶⁰…2⁶⁰ (the bound
// against large terms), mirrored blocks, and groups that are not a multiple of the lane
// transpose (2, 6, 34, 250).
static void test_quantize_stress(int width) {
    if (sk_quantize_simd_width() < width) return;
    const int groups[6] = {2, 6, 32, 34, 64, 250};
    int bad = 0;
    for (int ti = 0; ti < 2; ti++) {
        int type = ti ? SK_INT4_SYM : SK_INT4;
        for (int gi = 0; gi < 6; gi++) {
            int g = groups[gi];
            size_t nb = (size_t)(g <= 6 ? 24000 : 96000 / g * 8) + 5;
            float *x = malloc(sizeof(float) * nb * g);
            for (size_t b = 0; b < nb; b++) {
                float *xb = x + b * g;
                int kind = (int)(uniform() * 8);
                float scale = (float)ldexp(1, (int)(uniform() * 40) - 20);
                for (int j = 0; j < g; j++) {
                    float z = gauss(), v;
                    switch (kind) {
                    case 0: v = scale * z; break;
                    case 1: v = scale * (float)((int)(uniform() * 16) - 8); v = nextafterf(v, uniform() < 0.5 ? -INFINITY : INFINITY); break;
                    case 2: v = scale * ((float)((int)(uniform() * 16)) + 1e-7f * z); break;
                    case 3: v = scale * (float)((int)(uniform() * 3) - 1); break;
                    case 4: v = (float)ldexp(z, (int)(uniform() * 120) - 60); break;
                    case 5: v = j < g / 2 ? scale * z : -xb[j - g / 2]; break;
                    case 6: v = scale * (float)((int)(uniform() * 16) - 8) * (1 + 1e-7f * z); break;
                    default: v = scale * (z + (uniform() < 0.1 ? 8 * gauss() : 0)); break;
                    }
                    xb[j] = v;
                }
            }
            size_t bb = (size_t)(type == SK_INT4 ? 4 : 2) + (size_t)g / 2;
            uint8_t *o1 = calloc(nb, bb), *o2 = calloc(nb, bb);
            double s1[2] = {0, 0}, s2[2] = {0, 0};
            int64_t r1 = sk_quantize_blocks_scalar(type, x, nb, g, o1, s1);
            int64_t r2 = sk_quantize_blocks_simd(width, type, x, nb, g, o2, s2);
            checks += 1 + (int)nb;
            if (r1 != -1 || r2 != -1) { bad++; fprintf(stderr, "FAIL quantize stress returned %lld / %lld\n", (long long)r1, (long long)r2); }
            int shown = 0;
            for (size_t b = 0; b < nb; b++)
                if (memcmp(o1 + b * bb, o2 + b * bb, bb) != 0) {
                    bad++;
                    if (shown++ < 3) fprintf(stderr, "FAIL quantize stress width %d type %d group %d block %zu: SIMD bytes differ from scalar\n", width, type, g, b);
                }
            free(x); free(o1); free(o2);
        }
    }
    if (bad) { failures += bad; fprintf(stderr, "FAIL quantize stress: %d blocks\n", bad); }
    else printf("quantizer %s path: pruned searches checked against scalar on near-tie blocks\n", width == 8 ? "AVX-512" : width == 2 ? "NEON" : "AVX2");
}

// The AVX2 quantizer writes the scalar quantizer's bytes, on data that exercises every branch:
// Gaussian and heavy-tailed blocks, blocks already on a 4-bit grid (exact fits skip the search),
// all-zero and constant blocks, magnitude ties of both signs, lone outliers, tiny (f16-subnormal
// scales) and large values, and block counts that leave a tail of fewer than 4.
static void test_quantize(int width) {
    if (sk_quantize_simd_width() < width) return;
    const int types[3] = {SK_INT8, SK_INT4, SK_INT4_SYM};
    const int groups[4] = {32, 64, 128, 256};
    int bad = 0;
    for (int kind = 0; kind < 9; kind++) {
        for (int ti = 0; ti < 3; ti++) {
            for (int gi = 0; gi < 4; gi++) {
                int g = groups[gi], type = types[ti];
                if (type == SK_INT8 && g != 32) continue;
                size_t nb = 8 * 5 + (size_t)kind % 8;   // tails of 0…7 blocks
                float *x = malloc(sizeof(float) * nb * g);
                for (size_t b = 0; b < nb; b++) {
                    float *xb = x + b * g;
                    float scale = kind == 6 ? 1e-6f : (kind == 7 ? 3e3f : 0.02f);
                    for (int j = 0; j < g; j++) {
                        float z = gauss();
                        switch ((kind + (int)b) % 9) {
                        case 0: case 6: case 7: xb[j] = scale * z; break;
                        case 1: xb[j] = scale * z * z * z; break;                                  // heavy tails
                        case 2: xb[j] = 0.01f * (float)(int)(uniform() * 16) - 0.05f; break;      // on an asymmetric grid
                        case 3: xb[j] = 0.25f * (float)((int)(uniform() * 16) - 8); break;        // on the symmetric grid
                        case 4: xb[j] = (b & 1) ? 0 : 0.5f; break;                                // zero / constant
                        case 5: xb[j] = (j % 3 == 0) ? ((j & 1) ? 0.7f : -0.7f) : 0.1f * z; break; // magnitude ties, both signs
                        default: xb[j] = (j == (int)b % g) ? 40 * z : 0.01f * z; break;           // a lone outlier
                        }
                    }
                }
                size_t bb = type == SK_INT8 ? 34 : (size_t)(type == SK_INT4 ? 4 : 2) + (size_t)g / 2;
                uint8_t *o1 = calloc(nb, bb), *o2 = calloc(nb, bb);
                double s1[2] = {0, 0}, s2[2] = {0, 0};
                int64_t r1 = sk_quantize_blocks_scalar(type, x, nb, g, o1, s1);
                int64_t r2 = sk_quantize_blocks_simd(width, type, x, nb, g, o2, s2);
                checks += 3;
                if (r1 != -1 || r2 != -1) { bad++; fprintf(stderr, "FAIL quantize returned %lld / %lld\n", (long long)r1, (long long)r2); }
                for (size_t b = 0; b < nb; b++)
                    if (memcmp(o1 + b * bb, o2 + b * bb, bb) != 0) {
                        bad++;
                        fprintf(stderr, "FAIL quantize width %d type %d group %d kind %d block %zu: SIMD bytes differ from scalar\n", width, type, g, kind, b);
                        break;
                    }
                if (fabs(s1[0] - s2[0]) > 1e-9 * fmax(s1[0], 1e-30) + 1e-300 || fabs(s1[1] - s2[1]) > 1e-9 * s1[1]) {
                    bad++;
                    fprintf(stderr, "FAIL quantize type %d group %d: sums %.17g/%.17g vs %.17g/%.17g\n", type, g, s1[0], s1[1], s2[0], s2[1]);
                }
                free(x); free(o1); free(o2);
            }
        }
    }
    // Non-finite input is named by index; bad arguments are refused.
    float y[64];
    for (int j = 0; j < 64; j++) y[j] = 0.1f;
    y[45] = INFINITY;
    uint8_t o[64];
    double s[2] = {0, 0};
    checks += 3;
    if (sk_quantize_blocks_simd(width, SK_INT4, y, 2, 32, o, s) != 45 || sk_quantize_blocks_scalar(SK_INT4, y, 2, 32, o, s) != 45) bad++;
    // inside SIMD lane groups, in the tail, as NaN and as −Inf, for every type
    {
        enum { NB = 21 };
        float z[NB * 32];
        uint8_t oz[NB * 34];
        const size_t at[4] = {5, 300, 611, NB * 32 - 1};
        for (int ti = 0; ti < 3; ti++)
            for (int a = 0; a < 4; a++) {
                for (int j = 0; j < NB * 32; j++) z[j] = 0.01f * gauss();
                z[at[a]] = (a & 1) ? NAN : -INFINITY;
                int type = ti == 0 ? SK_INT8 : ti == 1 ? SK_INT4 : SK_INT4_SYM;
                double zs[2] = {0, 0};
                checks += 2;
                if (sk_quantize_blocks_scalar(type, z, NB, 32, oz, zs) != (int64_t)at[a]) bad++;
                if (sk_quantize_blocks_simd(width, type, z, NB, 32, oz, zs) != (int64_t)at[a]) {
                    bad++;
                    fprintf(stderr, "FAIL quantize width %d type %d: non-finite at %zu not reported\n", width, type, at[a]);
                }
            }
    }
    if (sk_quantize_blocks_scalar(SK_INT8, y, 1, 64, o, s) != -2) bad++;
    if (sk_quantize_blocks_simd(width, SK_INT4, y, 1, 33, o, s) != -2) bad++;
    if (bad) { failures += bad; fprintf(stderr, "FAIL quantize: %d cases\n", bad); }
    else printf("quantizer %s path: checked against scalar\n", width == 8 ? "AVX-512" : width == 2 ? "NEON" : "AVX2");
}

// SwiGLU and softmax numerators: the SIMD polynomial e^x against libm's expf (scalar path), over
// typical activations, large magnitudes at both ends of f32's range, −inf and odd lengths.
static void test_exp(const sk_kernel_table *s, const sk_kernel_table *t) {
    enum { N = 203 };
    float g1[N], g2[N], u[N], x1[N], x2[N];
    for (int rep = 0; rep < 50; rep++) {
        float scale = rep < 10 ? 1 : (rep < 20 ? 10 : (rep < 30 ? 60 : 100));
        for (int i = 0; i < N; i++) {
            g1[i] = g2[i] = scale * gauss();
            u[i] = gauss();
            x1[i] = x2[i] = scale * gauss();
        }
        if (rep % 5 == 0) x1[rep % N] = x2[rep % N] = -INFINITY;
        int n = N - rep % 9;
        s->silu_mul(g1, u, n);
        t->silu_mul(g2, u, n);
        float mx = -INFINITY;
        for (int i = 0; i < n; i++) mx = x1[i] > mx ? x1[i] : mx;
        float sum1 = s->exp_shift_sum(x1, n, mx), sum2 = t->exp_shift_sum(x2, n, mx);
        for (int i = 0; i < n; i++) {
            checks += 2;
            if (!(fabsf(g1[i] - g2[i]) <= 1e-6f * fabsf(g1[i]) + 1e-30f)) {
                failures++;
                fprintf(stderr, "FAIL %s silu_mul [%d]: scalar %.9g, simd %.9g\n", t->name, i, g1[i], g2[i]);
            }
            if (!(fabsf(x1[i] - x2[i]) <= 1e-6f * fabsf(x1[i]) + 1e-37f)) {
                failures++;
                fprintf(stderr, "FAIL %s exp_shift_sum [%d]: scalar %.9g, simd %.9g\n", t->name, i, x1[i], x2[i]);
            }
        }
        expect_close("exp_shift_sum", t->name, n, 0, sum1, sum2);
    }
}

// f16 <-> f32 in bulk: the SIMD path (F16C / NEON) against the scalar path bit for bit; the
// scalar f32 -> f16 is quant.c's f64 -> f16 rounding (every f32 is exact in f64, and that rounding
// is checked exhaustively in test_f16_rounding), so this holds the hardware to it.
static void test_half(void) {
    int bad = 0;
    enum { N = 1 << 16 };
    uint16_t *h = malloc(2 * N), *h1 = malloc(2 * N), *h2 = malloc(2 * N);
    float *f1 = malloc(4 * N), *f2 = malloc(4 * N), *f = malloc(4 * N);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    sk_f16_to_f32_n_scalar(h, f1, N);
    if (sk_half_simd()) {
        sk_f16_to_f32_n_simd(h, f2, N - 3);   // a tail too
        f2[N - 3] = f1[N - 3]; f2[N - 2] = f1[N - 2]; f2[N - 1] = f1[N - 1];
        for (int i = 0; i < N - 3; i++) {
            if (f1[i] != f1[i] && f2[i] != f2[i]) continue;   // NaN both: payloads aside
            checks++;
            if (memcmp(&f1[i], &f2[i], 4) != 0) { bad++; if (bad < 5) fprintf(stderr, "FAIL f16 %04x -> f32: SIMD %.9g vs scalar %.9g\n", i, f2[i], f1[i]); }
        }
    }
    for (int rep = 0; rep < 4; rep++) {
        for (int i = 0; i < N; i++) {
            uint32_t u;
            switch (rep) {
            case 0: u = (uint32_t)(uniform() * 4294967295.0); break;                    // any bits
            case 1: memcpy(&u, &f1[i], 4); u += (i & 1) ? 0x1000 : 0x0fff; break;       // at and beside midpoints
            case 2: { float v = (float)(gauss() * 1e-5); memcpy(&u, &v, 4); break; }     // subnormal halves
            default: { float v = (float)(gauss() * 3e4); memcpy(&u, &v, 4); break; }     // near overflow
            }
            memcpy(&f[i], &u, 4);
        }
        sk_f32_to_f16_n_scalar(f, h1, N);
        for (int i = 0; i < N; i++) {
            if (f[i] != f[i]) continue;   // NaN: payloads aside
            checks++;
            if (h1[i] != sk_f64_to_f16((double)f[i])) {
                bad++;
                if (bad < 5) fprintf(stderr, "FAIL f32 -> f16 scalar %.9g: %04x, f64 path %04x\n", f[i], h1[i], sk_f64_to_f16((double)f[i]));
            }
        }
        if (sk_half_simd()) {
            sk_f32_to_f16_n_simd(f, h2, N);
            for (int i = 0; i < N; i++) {
                if (f[i] != f[i]) continue;
                checks++;
                if (h1[i] != h2[i]) { bad++; if (bad < 5) fprintf(stderr, "FAIL f32 -> f16 SIMD %.9g: %04x vs scalar %04x\n", f[i], h2[i], h1[i]); }
            }
        }
    }
    failures += bad;
    if (!bad) printf("f16 <-> f32 %s: checked against scalar and the f64 rounding\n", sk_half_simd() ? "SIMD path" : "scalar path");
    free(h); free(h1); free(h2); free(f1); free(f2); free(f);
}

// int8 KV rows: the SIMD dot/axpy against the scalar reference, the scalar reference against a
// direct dequantize-and-multiply, and the quantizer's error bound (half a step per element).
// f16 KV whole-head kernels: the SIMD path against the scalar reference on random rows and a
// shuffled subset of slots, heads of 8 to 136 dimensions (chunks of 32 and of 8).
static void test_kv16(void) {
    if (!sk_kv16_simd()) return;
    int hds[] = {8, 16, 40, 64, 128, 136};
    for (int c = 0; c < 6; c++) {
        int hd = hds[c], rows = 300;
        uint16_t *base = malloc(sizeof(uint16_t) * (size_t)hd * rows);
        float q[136], w[300], sv[300], ss[300], ov[136], os[136];
        long slots[300];
        for (int i = 0; i < hd * rows; i++) base[i] = f2h(gauss() * (i % 17 == 0 ? 6 : 1));
        for (int rep = 0; rep < 10; rep++) {
            int count = 1 + (int)(uniform() * 299);
            for (int t = 0; t < count; t++) { slots[t] = (long)(uniform() * rows) % rows; w[t] = (float)uniform() / count; }
            for (int i = 0; i < hd; i++) { q[i] = gauss(); ov[i] = os[i] = gauss(); }
            sk_kv16_scores_scalar(base, slots, count, q, 0.125f, ss, hd);
            sk_kv16_scores_simd(base, slots, count, q, 0.125f, sv, hd);
            for (int t = 0; t < count; t++) expect_close("kv16 scores", "simd", hd, 0, ss[t], sv[t]);
            sk_kv16_accumulate_scalar(os, w, base, slots, count, hd);
            sk_kv16_accumulate_simd(ov, w, base, slots, count, hd);
            for (int i = 0; i < hd; i++) expect_close("kv16 accumulate", "simd", hd, 0, os[i], ov[i]);
        }
        free(base);
    }
    printf("f16 KV rows: SIMD path checked against scalar\n");
}

// GQA group kernels (kv_group.c): every head of a group bit for bit the per-head dispatchers'
// result, for groups of 1 to 9 heads (sub-groups of 4 and a remainder), counts of every parity
// and remainder mod 4, heads of 32 to 136 dimensions (f16) and 32 to 128 (int8), and int8 shapes
// the group kernels leave to the per-head path (48, 8).
static void test_kv_group(void) {
    enum { ROWS = 64, MAXG = 9, MAXHD = 136 };
    int hds[] = {32, 40, 64, 96, 128, 136, 48, 8};
    int bad = 0;
    float *q = malloc(sizeof(float) * MAXG * MAXHD), *sg = malloc(sizeof(float) * MAXG * ROWS), *sh = malloc(sizeof(float) * ROWS);
    float *w = malloc(sizeof(float) * MAXG * ROWS), *og = malloc(sizeof(float) * MAXG * MAXHD), *oh = malloc(sizeof(float) * MAXHD);
    uint16_t *k16 = malloc(sizeof(uint16_t) * ROWS * MAXHD);
    uint8_t *k8 = malloc(ROWS * 160);
    float *k32 = malloc(sizeof(float) * ROWS * MAXHD);
    long slots[ROWS];
    for (int c = 0; c < 8; c++) {
        int hd = hds[c], block = hd % 32 == 0 ? 32 : hd;
        size_t rb = sk_kv8_row_bytes(hd, block);
        for (int r = 0; r < ROWS; r++) {
            float x[MAXHD];
            for (int i = 0; i < hd; i++) { x[i] = gauss(); k16[r * hd + i] = f2h(gauss()); k32[r * hd + i] = gauss(); }
            if (hd <= 128) sk_kv8_quantize(x, k8 + r * rb, hd, block);
        }
        for (int g = 1; g <= MAXG; g++)
            for (int count = 0; count <= 11; count++) {
                for (int t = 0; t < count; t++) slots[t] = (long)(uniform() * ROWS) % ROWS;
                for (int i = 0; i < g * hd; i++) { q[i] = gauss(); og[i] = gauss(); }
                for (int i = 0; i < g * ROWS; i++) w[i] = (float)uniform();
                for (int kind = 0; kind < 3; kind++) {   // f16, int8, f32
                    if (kind == 1 && hd > 128) continue;
                    float o0[MAXG * MAXHD];
                    memcpy(o0, og, sizeof(float) * (size_t)g * hd);
                    if (kind == 0) {
                        sk_kv16_scores_group(k16, slots, count, q, g, 0.125f, sg, ROWS, hd);
                        sk_kv16_accumulate_group(og, w, ROWS, k16, slots, count, g, hd);
                    } else if (kind == 2) {
                        sk_kv32_scores_group(k32, slots, count, q, g, 0.125f, sg, ROWS, hd);
                        sk_kv32_accumulate_group(og, w, ROWS, k32, slots, count, g, hd);
                    } else {
                        sk_kv8_scores_group(k8, rb, slots, count, q, g, 0.125f, sg, ROWS, hd, block);
                        sk_kv8_accumulate_group(og, w, ROWS, k8, rb, slots, count, g, hd, block);
                    }
                    for (int h = 0; h < g; h++) {
                        memcpy(oh, o0 + h * hd, sizeof(float) * (size_t)hd);
                        if (kind == 0) {
                            sk_kv16_scores(k16, slots, count, q + h * hd, 0.125f, sh, hd);
                            sk_kv16_accumulate(oh, w + h * ROWS, k16, slots, count, hd);
                        } else if (kind == 2) {
                            // the per-head path: the table's dot_f32, and the scalar twin
                            for (int t = 0; t < count; t++) sh[t] = sk_kernels_best()->dot_f32(k32 + slots[t] * hd, q + h * hd, hd) * 0.125f;
                            sk_kv32_accumulate_scalar(oh, w + h * ROWS, ROWS, k32, slots, count, 1, hd);
                        } else {
                            sk_kv8_scores(k8, rb, slots, count, q + h * hd, 0.125f, sh, hd, block);
                            sk_kv8_accumulate(oh, w + h * ROWS, k8, rb, slots, count, hd, block);
                        }
                        checks += 2;
                        if (count && memcmp(sh, sg + h * ROWS, sizeof(float) * (size_t)count) != 0) {
                            if (bad++ < 5) fprintf(stderr, "FAIL kv group %s scores hd=%d g=%d count=%d head %d\n", kind == 2 ? "f32" : kind ? "int8" : "f16", hd, g, count, h);
                        }
                        if (memcmp(oh, og + h * hd, sizeof(float) * (size_t)hd) != 0) {
                            if (bad++ < 5) fprintf(stderr, "FAIL kv group %s accumulate hd=%d g=%d count=%d head %d\n", kind == 2 ? "f32" : kind ? "int8" : "f16", hd, g, count, h);
                        }
                    }
                    memcpy(og, o0, sizeof(float) * (size_t)g * hd);
                }
            }
    }
    free(q); free(sg); free(sh); free(w); free(og); free(oh); free(k16); free(k8); free(k32);
    failures += bad;
    if (!bad) printf("KV group kernels: every head bit for bit the per-head kernels\n");
}

static void test_kv8(void) {
    int hds[] = {8, 32, 64, 128, 48, 96};   // (96: two blocks past a chunk of 64)
    for (int c = 0; c < 5; c++) {
        int hd = hds[c], block = hd % 32 == 0 ? 32 : hd;
        for (int rep = 0; rep < 50; rep++) {
            float x[128], q[128], deq[128], out_s[128], out_v[128];
            uint8_t row[160];
            float amp = rep % 5 == 0 ? 1e-3f : rep % 7 == 0 ? 300.0f : 1.0f;
            for (int i = 0; i < hd; i++) { x[i] = amp * gauss(); q[i] = gauss(); out_s[i] = out_v[i] = gauss(); }
            if (rep == 3) for (int i = 0; i < hd; i++) x[i] = 0;
            sk_kv8_quantize(x, row, hd, block);
            sk_kv8_dequantize(row, deq, hd, block);
            for (int b = 0; b < hd / block; b++) {
                float amax = 0;
                for (int i = 0; i < block; i++) amax = fmaxf(amax, fabsf(x[b * block + i]));
                for (int i = 0; i < block; i++) {
                    checks++;
                    if (!(fabsf(deq[b * block + i] - x[b * block + i]) <= amax / 127.0f * 0.5f * 1.002f + 1e-30f)) {
                        failures++; fprintf(stderr, "FAIL kv8 quantize hd=%d: %g vs %g\n", hd, x[b * block + i], deq[b * block + i]);
                    }
                }
            }
            double direct = 0;
            for (int i = 0; i < hd; i++) direct += (double)deq[i] * q[i];
            float ds = sk_kv8_dot_scalar(row, q, hd, block);
            expect_close("kv8 dot vs dequantized", "scalar", hd, block, (float)direct, ds);
            expect_close("kv8 dot", "simd", hd, block, ds, sk_kv8_dot_simd(row, q, hd, block));
            float w = (float)uniform();
            sk_kv8_axpy_scalar(out_s, w, row, hd, block);
            sk_kv8_axpy_simd(out_v, w, row, hd, block);
            for (int i = 0; i < hd; i++) expect_close("kv8 axpy", "simd", hd, block, out_s[i], out_v[i]);
        }
    }
    // The batched calls (odd and even counts, slots out of order) against the scalar rows.
    for (int c = 0; c < 6; c++) {
        int hd = hds[c], block = hd % 32 == 0 ? 32 : hd;
        size_t rb = sk_kv8_row_bytes(hd, block);
        uint8_t rows[7 * 160];
        float q[128], w[7], out_a[128], out_b[128], sc[7];
        long slots[7] = {3, 0, 6, 1, 5, 2, 4};
        for (int r = 0; r < 7; r++) {
            float x[128];
            for (int i = 0; i < hd; i++) x[i] = gauss();
            sk_kv8_quantize(x, rows + r * rb, hd, block);
            w[r] = (float)uniform();
        }
        for (int i = 0; i < hd; i++) { q[i] = gauss(); out_a[i] = out_b[i] = gauss(); }
        for (int count = 1; count <= 7; count++) {
            sk_kv8_scores(rows, rb, slots, count, q, 0.125f, sc, hd, block);
            for (int t = 0; t < count; t++)
                expect_close("kv8 scores", "dispatch", hd, block, sk_kv8_dot_scalar(rows + slots[t] * rb, q, hd, block) * 0.125f, sc[t]);
        }
        sk_kv8_accumulate(out_a, w, rows, rb, slots, 7, hd, block);
        for (int t = 0; t < 7; t++) sk_kv8_axpy_scalar(out_b, w[t], rows + slots[t] * rb, hd, block);
        for (int i = 0; i < hd; i++) expect_close("kv8 accumulate", "dispatch", hd, block, out_b[i], out_a[i]);
    }
    // int4 values batched (AVX2: 64 dimensions in registers over all the slots): against the scalar
    // rows, and bit for bit the row kernel slot by slot (same multiply-adds in the same order).
    for (int c = 0; c < 6; c++) {
        int hd = hds[c], block = hd % 32 == 0 ? 32 : hd;
        size_t rb = sk_kv4_row_bytes(hd, block);
        uint8_t rows[7 * 160];
        float w[7], out_a[128], out_b[128], out_c[128];
        long slots[7] = {3, 0, 6, 1, 5, 2, 4};
        for (int r = 0; r < 7; r++) {
            float x[128];
            for (int i = 0; i < hd; i++) x[i] = gauss();
            sk_kv4_quantize(x, rows + r * rb, hd, block);
            w[r] = (float)uniform();
        }
        for (int count = 1; count <= 7; count += 3) {
            for (int i = 0; i < hd; i++) out_a[i] = out_b[i] = out_c[i] = gauss();
            sk_kv4_accumulate(out_a, w, rows, rb, slots, count, hd, block);
            for (int t = 0; t < count; t++) {
                sk_kv4_axpy_scalar(out_b, w[t], rows + slots[t] * rb, hd, block);
                sk_kv4_axpy(out_c, w[t], rows + slots[t] * rb, hd, block);
            }
            for (int i = 0; i < hd; i++) {
                expect_close("kv4 accumulate", "dispatch", hd, block, out_b[i], out_a[i]);
                checks++;
                if (memcmp(&out_a[i], &out_c[i], 4) != 0) { failures++; fprintf(stderr, "FAIL kv4 accumulate vs axpy slot by slot hd=%d: %.9g vs %.9g\n", hd, out_c[i], out_a[i]); }
            }
        }
    }
#if defined(__aarch64__)
    printf("int8 KV rows: %s path checked against scalar\n", "NEON");
#else
    printf("int8 KV rows: %s path checked against scalar\n", sk_kv8_simd() ? "AVX2" : "scalar-only");
#endif
    // int4 KV rows: error bound, dot and axpy against dequantize-and-multiply, the SIMD path against the scalar one, batched calls.
    for (int c = 0; c < 5; c++) {
        int hd = hds[c], block = hd % 32 == 0 ? 32 : hd;
        size_t rb = sk_kv4_row_bytes(hd, block);
        for (int rep = 0; rep < 50; rep++) {
            float x[128], q[128], deq[128], out_a[128], out_b[128], sc[1];
            uint8_t row[160];
            for (int i = 0; i < hd; i++) { x[i] = (rep % 5 == 0 ? 1e-3f : 1.0f) * gauss(); q[i] = gauss(); out_a[i] = out_b[i] = gauss(); }
            if (rep == 3) for (int i = 0; i < hd; i++) x[i] = 0;
            sk_kv4_quantize(x, row, hd, block);
            sk_kv4_dequantize(row, deq, hd, block);
            for (int b = 0; b < hd / block; b++) {
                float amax = 0;
                for (int i = 0; i < block; i++) amax = fmaxf(amax, fabsf(x[b * block + i]));
                for (int i = 0; i < block; i++) {
                    checks++;
                    if (!(fabsf(deq[b * block + i] - x[b * block + i]) <= amax / 7.0f * 0.5f * 1.002f + 1e-30f)) {
                        failures++; fprintf(stderr, "FAIL kv4 quantize hd=%d: %g vs %g\n", hd, x[b * block + i], deq[b * block + i]);
                    }
                }
            }
            double direct = 0;
            for (int i = 0; i < hd; i++) direct += (double)deq[i] * q[i];
            float ds = sk_kv4_dot_scalar(row, q, hd, block);
            expect_close("kv4 dot vs dequantized", "scalar", hd, block, (float)direct, ds);
            expect_close("kv4 dot", "simd", hd, block, ds, sk_kv4_dot_simd(row, q, hd, block));
            {
                float ys[128], yv[128], w2 = (float)uniform();
                for (int i = 0; i < hd; i++) ys[i] = yv[i] = gauss();
                sk_kv4_axpy_scalar(ys, w2, row, hd, block);
                sk_kv4_axpy_simd(yv, w2, row, hd, block);
                for (int i = 0; i < hd; i++) expect_close("kv4 axpy", "simd", hd, block, ys[i], yv[i]);
            }
            long slot0 = 0;
            sk_kv4_scores(row, rb, &slot0, 1, q, 0.5f, sc, hd, block);
            expect_close("kv4 scores", "scalar", hd, block, (float)direct * 0.5f, sc[0]);
            float w = (float)uniform();
            sk_kv4_accumulate(out_a, &w, row, rb, &slot0, 1, hd, block);
            for (int i = 0; i < hd; i++) expect_close("kv4 axpy vs dequantized", "scalar", hd, block, out_b[i] + w * deq[i], out_a[i]);
        }
    }
    // The Walsh-Hadamard rotation of int4 KV rows: the Sylvester matrix (−1)^popcount(i&j)/√n
    // times x, and its own inverse.
    for (int n = 1; n <= 128; n *= 2) {
        float x[128], y[128];
        for (int i = 0; i < n; i++) x[i] = y[i] = gauss();
        sk_fwht(y, n);
        for (int i = 0; i < n; i++) {
            double want = 0;
            for (int j = 0; j < n; j++) want += (__builtin_popcount(i & j) % 2 ? -1.0 : 1.0) * x[j];
            expect_close("fwht vs Sylvester matrix", "scalar", n, n, (float)(want / sqrt((double)n)), y[i]);
        }
        sk_fwht(y, n);
        for (int i = 0; i < n; i++) expect_close("fwht twice", "scalar", n, n, x[i], y[i]);
    }
}

// KIVI int4 keys (kv_kivi.c): a sealed group's codes within half a step of each key per channel
// (the step from the channel's range over the group), the dot product against dequantize-and-
// multiply, the SIMD dot against the scalar one, and the scores of a mix of sealed slots of two
// groups (in any order) and pending f16 slots against direct dot products of the dequantized keys.
static void test_kivi(void) {
    int hds[] = {8, 16, 48, 64, 128}, group_checked = 0;
    for (int c = 0; c < 5; c++) {
        int hd = hds[c];
        size_t rb = (size_t)hd / 2 + 4;
        for (int rep = 0; rep < 20; rep++) {
            int n = 1 + (int)(uniform() * 32);
            float rows[32 * 128], q[128], deq[128];
            for (int j = 0; j < hd; j++) {
                float off = (j % 7 == 0) ? 20.0f * gauss() : 0.0f, sc = rep % 5 == 0 ? 1e-3f : 1.0f;   // offset channels, as RoPE's slow ones
                for (int i = 0; i < n; i++) rows[i * hd + j] = off + sc * gauss();
                if (rep == 3) for (int i = 0; i < n; i++) rows[i * hd + j] = 0.5f;   // a constant channel: scale 0
            }
            for (int j = 0; j < hd; j++) q[j] = gauss();
            uint16_t params[2 * 2 * 128], pending[4 * 128];
            uint8_t codes[32 * 64], base[40 * 68];
            sk_kivi_seal(rows, n, hd, params, codes);
            // a second group (id 1) from other keys, and four pending keys
            float rows2[4 * 128];
            for (int i = 0; i < 4 * hd; i++) rows2[i] = 3.0f * gauss();
            uint8_t codes2[4 * 64];
            sk_kivi_seal(rows2, 4, hd, params + 2 * hd, codes2);
            for (int i = 0; i < 4 * hd; i++) pending[i] = f2h(rows2[i] * 0.5f);
            for (int j = 0; j < hd; j++) {
                float d = sk_f16_to_f32(params[j]), m = sk_f16_to_f32(params[hd + j]), lo = rows[j], hi = rows[j];
                for (int i = 1; i < n; i++) { lo = fminf(lo, rows[i * hd + j]); hi = fmaxf(hi, rows[i * hd + j]); }
                checks++;
                if (!(fabsf(d - (hi - lo) / 15) <= 1e-3f * fabsf(d) + 1e-7f && fabsf(m - lo) <= 1e-3f * fabsf(lo) + 1e-7f)) {
                    failures++; fprintf(stderr, "FAIL kivi params hd=%d ch=%d: d %g m %g for [%g, %g]\n", hd, j, d, m, lo, hi);
                }
            }
            // rows 0..n-1: group 0; n..n+3: group 1; n+4..n+7: pending 0..3
            for (int i = 0; i < n + 8; i++) {
                uint8_t *r = base + (size_t)i * rb;
                uint32_t g = i < n ? 0 : i < n + 4 ? 1 : (SK_KIVI_PENDING | (uint32_t)(i - n - 4));
                memcpy(r, i < n ? codes + (size_t)i * (hd / 2) : i < n + 4 ? codes2 + (size_t)(i - n) * (hd / 2) : codes, (size_t)hd / 2);
                memcpy(r + hd / 2, &g, 4);
            }
            for (int i = 0; i < n; i++) {
                sk_kivi_dequantize(base + (size_t)i * rb, params, pending, deq, hd);
                for (int j = 0; j < hd; j++) {
                    float d = sk_f16_to_f32(params[j]), lo = rows[j], x = rows[i * hd + j];
                    for (int k = 1; k < n; k++) lo = fminf(lo, rows[k * hd + j]);
                    // half a step, plus what rounding the minimum and the scale to f16 moves the ends (clamped codes)
                    float bound = d * 0.5f * 1.002f + 1e-3f * (fabsf(lo) + 15 * d) + 1e-7f;
                    checks++;
                    if (!(fabsf(deq[j] - x) <= bound)) { failures++; fprintf(stderr, "FAIL kivi quantize hd=%d: %g vs %g\n", hd, x, deq[j]); }
                }
                float qd[128];
                for (int j = 0; j < hd; j++) qd[j] = q[j] * sk_f16_to_f32(params[j]);
                float ds = sk_kivi_dot_scalar(base + (size_t)i * rb, qd, hd);
                double direct = 0;
                for (int j = 0; j < hd; j++) direct += (double)qd[j] * ((base[(size_t)i * rb + j / 2] >> (4 * (j & 1))) & 15);
                expect_close("kivi dot vs codes", "scalar", hd, n, (float)direct, ds);
                expect_close("kivi dot", "simd", hd, n, ds, sk_kivi_dot_simd(base + (size_t)i * rb, qd, hd));
            }
            // scores over slots in a shuffled order (groups interleaved, pending among them)
            long slots[40];
            int cnt = n + 8;
            for (int t = 0; t < cnt; t++) slots[t] = t;
            for (int t = cnt - 1; t > 0; t--) { int u = (int)(uniform() * (t + 1)); long tmp = slots[t]; slots[t] = slots[u]; slots[u] = tmp; }
            float sa[40], sb[40];
            sk_kivi_scores(base, rb, params, pending, slots, cnt, q, 0.125f, sa, hd);
            sk_kivi_scores_scalar(base, rb, params, pending, slots, cnt, q, 0.125f, sb, hd);
            for (int t = 0; t < cnt; t++) {
                sk_kivi_dequantize(base + (size_t)slots[t] * rb, params, pending, deq, hd);
                double direct = 0;
                for (int j = 0; j < hd; j++) direct += (double)deq[j] * q[j];
                float tol_ref = (float)direct * 0.125f;
                // the sum of q·d·c and q·m cancels large terms: compare at the scale of the terms
                double mag = 0;
                for (int j = 0; j < hd; j++) mag += fabs((double)deq[j] * q[j]);
                checks++;
                if (!(fabs(sb[t] - tol_ref) <= 1e-5 * mag + 1e-5)) { failures++; fprintf(stderr, "FAIL kivi scores vs dequantized hd=%d slot=%ld: %g vs %g\n", hd, slots[t], tol_ref, sb[t]); }
                checks++;
                if (!(fabs(sa[t] - sb[t]) <= 1e-5 * mag + 1e-5)) { failures++; fprintf(stderr, "FAIL kivi scores simd vs scalar hd=%d: %g vs %g\n", hd, sb[t], sa[t]); }
            }
            // GQA group scores: each head bit for bit its own sk_kivi_scores (where there is a group kernel)
            int gs[] = {1, 3, 9, 16};
            for (int gi = 0; gi < 4; gi++) {
                int g = gs[gi];
                float qg[16 * 128], og[16 * 40], oh[40];
                for (int i = 0; i < g * hd; i++) qg[i] = gauss();
                if (!sk_kivi_scores_group(base, rb, params, pending, slots, cnt, qg, g, 0.125f, og, 40, hd)) continue;
                group_checked++;
                for (int h = 0; h < g; h++) {
                    sk_kivi_scores(base, rb, params, pending, slots, cnt, qg + h * hd, 0.125f, oh, hd);
                    checks++;
                    if (memcmp(oh, og + h * 40, sizeof(float) * (size_t)cnt) != 0) { failures++; fprintf(stderr, "FAIL kivi group scores hd=%d g=%d head %d\n", hd, g, h); }
                }
            }
        }
    }
    printf("KIVI int4 keys: seal, dequantize, dot and scores checked (simd against scalar); GQA group scores %s\n",
           group_checked ? "checked against the per-head kernel" : "not built here (per-head calls)");
}

int main(void) {
    const sk_kernel_table *s = sk_kernels_scalar();
    test_kv8();
    test_kivi();
    test_kv16();
    test_kv_group();
    paths[0] = sk_kernels_avx2();
    paths[2] = sk_kernels_avx2_vnni();
    // on aarch64 paths[1] is the plain NEON table and paths[3] the sdot one where the CPU has it
    paths[1] = sk_kernels_neon_plain();
    paths[3] = sk_kernels_neon_dotprod();
    if (sk_kernels_neon() && !paths[3]) printf("note: no dot-product extension on this CPU; plain NEON only\n");
    int tested = 0;
    for (int p = 0; p < 4; p++) {
        if (!paths[p]) continue;
        for (int rep = 0; rep < 20; rep++) test_table(s, paths[p]);
        test_exp(s, paths[p]);
        test_x8_extremes(paths[p]);
        printf("kernel path %s: checked against scalar\n", paths[p]->name);
        tested++;
    }
    // The scalar int4 sums against a direct dequantize-and-multiply, so the reference is right too.
    {
        int n = 64, g = 64;
        float x[64]; for (int i = 0; i < n; i++) x[i] = gauss();
        sk_act_q8 a[2]; s->quantize_act(x, a, n);
        uint8_t w[4 + 32]; uint16_t d = f2h(0.03f), m = f2h(-0.2f); memcpy(w, &d, 2); memcpy(w + 2, &m, 2);
        for (int i = 0; i < 32; i++) w[4 + i] = (uint8_t)(uniform() * 256);
        double direct = 0;
        for (int j = 0; j < n; j++) {
            int q = j < 32 ? (w[4 + j] & 15) : (w[4 + j - 32] >> 4);
            direct += (sk_f16_to_f32(d) * q + sk_f16_to_f32(m)) * (a[j / 32].d * a[j / 32].qs[j % 32]);
        }
        expect_close("dot_int4 vs dequantized", "scalar", n, g, (float)direct, s->dot_int4(w, a, n, g));
    }
    // SHA-256: the scalar path on FIPS 180-4's "abc" vector; SHA-NI (where present) against scalar.
    {
        uint8_t blk[64] = {'a', 'b', 'c', 0x80};
        blk[63] = 24;  // bit length
        uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
        const uint32_t want[8] = {0xba7816bf, 0x8f01cfea, 0x414140de, 0x5dae2223, 0xb00361a3, 0x96177a9c, 0xb410ff61, 0xf20015ad};
        sk_sha256_blocks_scalar(h, blk, 1);
        checks++;
        if (memcmp(h, want, 32) != 0) { failures++; fprintf(stderr, "FAIL sha256 scalar: abc\n"); }
        if (sk_sha256_has_shani()) {
            size_t counts[] = {1, 2, 3, 7, 100};
            uint8_t *data = malloc(64 * 100);
            for (int i = 0; i < 64 * 100; i++) data[i] = (uint8_t)(uniform() * 256);
            for (int c = 0; c < 5; c++) {
                uint32_t a[8], b[8];
                for (int i = 0; i < 8; i++) a[i] = b[i] = (uint32_t)(uniform() * 4294967295.0);
                sk_sha256_blocks_scalar(a, data, counts[c]);
                sk_sha256_blocks_shani(b, data, counts[c]);
                checks++;
                if (memcmp(a, b, 32) != 0) { failures++; fprintf(stderr, "FAIL sha256 SHA-NI vs scalar, %zu blocks\n", counts[c]); }
            }
            free(data);
            printf("sha256 SHA-NI path: checked against scalar\n");
        }
    }
    test_f16_rounding();
    test_half();
#if defined(__aarch64__)
    test_quantize(2);
    test_quantize_stress(2);
#else
    test_quantize(4);
    test_quantize(8);
    test_quantize_stress(4);
    test_quantize_stress(8);
#endif
    test_crc32();
    if (vnni_checked) printf("x8 GEMM AVX512-VNNI path: checked against scalar\n");
    if (avx2_gemm_checked) printf("x8 GEMM AVX2 path: checked against scalar\n");
    printf("%d passed, %d failed\n", checks - failures, failures);
    if (!tested) printf("note: no SIMD path on this CPU; scalar only\n");
    return failures ? 1 : 0;
}
