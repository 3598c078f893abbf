// f32 KV values (skrun's default KV type; the scores are a GQA group kernel, kv_group.c): out[d] =
// out[d] + w·v[d] with the product rounded before the sum (no fused multiply-add), slot by slot,
// head by head: bit for bit the scalar twin. Slots outer, so a 64-element head streams each value
// row once per head with its dimensions in registers: a GQA group's heads sharing each row's load
// (dimensions outer, a few dimensions of every head per pass) measured slower at depth, the rows
// then being read in pieces several times over (docs/OPTIMIZATION-LOG.md). AVX2 and NEON for
// heads a multiple of 8, else the scalar twin.
#include "sk_kernels.h"

void sk_kv32_accumulate_scalar(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd) {
    for (int h = 0; h < g; h++) {
        float *o = out + (size_t)h * hd;
        for (int t = 0; t < count; t++) {
            const float wt = w[(size_t)h * wstride + t], *v = base + (size_t)slots[t] * (size_t)hd;
            for (int d = 0; d < hd; d++) {
                const float p = wt * v[d];   // rounded, then added (two statements: never contracted)
                o[d] = o[d] + p;
            }
        }
    }
}

#if defined(__x86_64__) || defined(_M_X64) || defined(__aarch64__)
#define INLINE __attribute__((always_inline)) inline

#if defined(__aarch64__)
#include <arm_neon.h>
#define SK_V32

// One head's dimensions [d, d + 8·V), two q registers per 8 (vmulq, then vaddq).
static INLINE void accumulate32_dims(float *o, const float *w, const float *base, const long *slots, int count, int hd, int d, const int V) {
    float32x4_t acc[16];
    for (int u = 0; u < 2 * V; u++) acc[u] = vld1q_f32(o + d + 4 * u);
    for (int t = 0; t < count; t++) {
        const float *v = base + (size_t)slots[t] * (size_t)hd + d;
        const float32x4_t wt = vdupq_n_f32(w[t]);
        for (int u = 0; u < 2 * V; u++) acc[u] = vaddq_f32(acc[u], vmulq_f32(wt, vld1q_f32(v + 4 * u)));
    }
    for (int u = 0; u < 2 * V; u++) vst1q_f32(o + d + 4 * u, acc[u]);
}
static int simd(void) { return sk_kernels_forced() != SK_FORCE_SCALAR; }
#else
#include <immintrin.h>
#define SK_V32 __attribute__((target("avx2,fma")))

// One head's dimensions [d, d + 8·V), one register per 8 (mul, then add).
SK_V32 static INLINE void accumulate32_dims(float *o, const float *w, const float *base, const long *slots, int count, int hd, int d,
                                            const int V) {
    __m256 acc[8];
    for (int u = 0; u < V; u++) acc[u] = _mm256_loadu_ps(o + d + 8 * u);
    for (int t = 0; t < count; t++) {
        const float *v = base + (size_t)slots[t] * (size_t)hd + d;
        const __m256 wt = _mm256_set1_ps(w[t]);
        for (int u = 0; u < V; u++) acc[u] = _mm256_add_ps(acc[u], _mm256_mul_ps(wt, _mm256_loadu_ps(v + 8 * u)));
    }
    for (int u = 0; u < V; u++) _mm256_storeu_ps(o + d + 8 * u, acc[u]);
}
static int simd(void) { return sk_kernels_avx2() && sk_kernels_forced() != SK_FORCE_SCALAR; }
#endif

// Head by head: 64 dimensions at a time, then 32, then 8.
SK_V32 static void accumulate32_simd(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd) {
    for (int h = 0; h < g; h++) {
        float *o = out + (size_t)h * hd;
        const float *wh = w + (size_t)h * wstride;
        int d = 0;
        for (; d + 64 <= hd; d += 64) accumulate32_dims(o, wh, base, slots, count, hd, d, 8);
        if (d + 32 <= hd) { accumulate32_dims(o, wh, base, slots, count, hd, d, 4); d += 32; }
        for (; d < hd; d += 8) accumulate32_dims(o, wh, base, slots, count, hd, d, 1);
    }
}

void sk_kv32_accumulate_group(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd) {
    if (hd % 8 == 0 && simd()) accumulate32_simd(out, w, wstride, base, slots, count, g, hd);
    else sk_kv32_accumulate_scalar(out, w, wstride, base, slots, count, g, hd);
}
#else
void sk_kv32_accumulate_group(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd) {
    sk_kv32_accumulate_scalar(out, w, wstride, base, slots, count, g, hd);
}
#endif
