// f32 KV decode (skrun's default KV type): the g query heads of one KV head against the same
// slots, each key row read once per group (the values: once per head, below). Bit for bit what the per-head path computes:
// scores are the kernel table's dot_f32 (sk_kernels_best) times the scale, values accumulate as
// out[d] = out[d] + w·v[d] with the product rounded before the sum (no fused multiply-add), slot
// by slot. The AVX2 scores apply only where the table's dot_f32 is the AVX2 one (mirroring its
// two accumulators and horizontal sum); elsewhere the per-head calls in a loop. Values: AVX2 (heads
// a multiple of 8) and NEON (a multiple of 4) kernels, else the scalar twin.
#include "sk_kernels.h"

enum { SUB32 = 4 };

static void scores32_each(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out,
                          size_t ostride, int hd) {
    float (*dot)(const float *, const float *, int) = sk_kernels_best()->dot_f32;
    for (int h = 0; h < g; h++)
        for (int t = 0; t < count; t++) out[(size_t)h * ostride + t] = dot(base + (size_t)slots[t] * (size_t)hd, q + (size_t)h * hd, hd) * scale;
}

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

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define SK_G32 __attribute__((target("avx2,fma")))
#define INLINE __attribute__((always_inline)) inline

SK_G32 static INLINE float hsum(__m256 v) {   // avx2.c's hsum256
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

// avx2.c's dot_f32 for G heads at once: even 8-chunks in one accumulator, odd in another, summed,
// then the scalar tail (hd % 16 == 8) as `s += w[i] * x[i]`.
SK_G32 static INLINE void scores32_g(const float *base, const long *slots, int count, const float *q, float scale, float *out,
                                     size_t ostride, int hd, const int G) {
    for (int t = 0; t < count; t++) {
        const float *k = base + (size_t)slots[t] * (size_t)hd;
        __m256 a0[SUB32], a1[SUB32];
        for (int h = 0; h < G; h++) { a0[h] = _mm256_setzero_ps(); a1[h] = _mm256_setzero_ps(); }
        int i = 0;
        for (; i + 16 <= hd; i += 16) {
            __m256 k0 = _mm256_loadu_ps(k + i), k1 = _mm256_loadu_ps(k + i + 8);
            for (int h = 0; h < G; h++) {
                a0[h] = _mm256_fmadd_ps(k0, _mm256_loadu_ps(q + h * hd + i), a0[h]);
                a1[h] = _mm256_fmadd_ps(k1, _mm256_loadu_ps(q + h * hd + i + 8), a1[h]);
            }
        }
        for (int h = 0; h < G; h++) {
            float s = hsum(_mm256_add_ps(a0[h], a1[h]));
            for (int j = i; j < hd; j++) s += k[j] * q[h * hd + j];
            out[h * ostride + t] = s * scale;
        }
    }
}

// One head's dimensions [d, d + 8·V): o = o + w·v per element (multiply, then add), slot by slot,
// the V accumulators in registers. Slots outer, so a 64-element head streams each value row once
// per head: a GQA group's heads sharing each row's load (dimensions outer, a few rows' worth of
// accumulators per pass) measured slower at depth, the rows then being read in 64-byte pieces
// several times over (docs/OPTIMIZATION-LOG.md).
SK_G32 static INLINE void accumulate32_dims(float *o, const float *w, const float *base, const long *slots, int count, int hd, int d,
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

SK_G32 static void accumulate32_avx2(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd) {
    for (int h = 0; h < g; h++) {
        float *o = out + (size_t)h * hd;
        const float *wh = w + (size_t)h * wstride;
        int d = 0;
        for (; d + 64 <= hd; d += 64) accumulate32_dims(o, wh, base, slots, count, hd, d, 8);
        if (d + 32 <= hd) { accumulate32_dims(o, wh, base, slots, count, hd, d, 4); d += 32; }
        for (; d < hd; d += 8) accumulate32_dims(o, wh, base, slots, count, hd, d, 1);
    }
}

#define SK_SUB32(call, n)                                          \
    switch (n) {                                                   \
    case 1: call(1); break;                                        \
    case 2: call(2); break;                                        \
    case 3: call(3); break;                                        \
    default: call(4); break;                                       \
    }

// Whether the table's dot_f32 is AVX2's (not the scalar or a forced path's).
static int avx2_dot(void) {
    const sk_kernel_table *a = sk_kernels_avx2();
    return a && sk_kernels_best()->dot_f32 == a->dot_f32;
}

SK_G32 static void scores32_avx2(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    for (int h0 = 0; h0 < g; h0 += SUB32) {
        int n = g - h0 < SUB32 ? g - h0 : SUB32;
#define CALL(N) scores32_g(base, slots, count, q + (size_t)h0 * hd, scale, out + (size_t)h0 * ostride, ostride, hd, N)
        SK_SUB32(CALL, n)
#undef CALL
    }
}

void sk_kv32_scores_group(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    if (avx2_dot()) scores32_avx2(base, slots, count, q, g, scale, out, ostride, hd);
    else scores32_each(base, slots, count, q, g, scale, out, ostride, hd);
}

void sk_kv32_accumulate_group(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd) {
    if (hd % 8 == 0 && sk_kernels_avx2() && sk_kernels_forced() != SK_FORCE_SCALAR) accumulate32_avx2(out, w, wstride, base, slots, count, g, hd);
    else sk_kv32_accumulate_scalar(out, w, wstride, base, slots, count, g, hd);
}
#elif defined(__aarch64__)
#include <arm_neon.h>

// NEON: one head's dimensions [d, d + 4·V), multiply then add (vmulq, vaddq: no fused
// multiply-add), slot by slot, the V accumulators in registers; the scalar twin's rounding.
static inline __attribute__((always_inline)) void accumulate32_dims_neon(float *o, const float *w, const float *base, const long *slots,
                                                                         int count, int hd, int d, const int V) {
    float32x4_t acc[16];
    for (int u = 0; u < V; u++) acc[u] = vld1q_f32(o + d + 4 * u);
    for (int t = 0; t < count; t++) {
        const float *v = base + (size_t)slots[t] * (size_t)hd + d;
        const float32x4_t wt = vdupq_n_f32(w[t]);
        for (int u = 0; u < V; u++) acc[u] = vaddq_f32(acc[u], vmulq_f32(wt, vld1q_f32(v + 4 * u)));
    }
    for (int u = 0; u < V; u++) vst1q_f32(o + d + 4 * u, acc[u]);
}

void sk_kv32_scores_group(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    scores32_each(base, slots, count, q, g, scale, out, ostride, hd);
}
void sk_kv32_accumulate_group(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd) {
    if (hd % 4 != 0 || sk_kernels_forced() == SK_FORCE_SCALAR) {
        sk_kv32_accumulate_scalar(out, w, wstride, base, slots, count, g, hd);
        return;
    }
    for (int h = 0; h < g; h++) {
        float *o = out + (size_t)h * hd;
        const float *wh = w + (size_t)h * wstride;
        int d = 0;
        for (; d + 64 <= hd; d += 64) accumulate32_dims_neon(o, wh, base, slots, count, hd, d, 16);
        if (d + 32 <= hd) { accumulate32_dims_neon(o, wh, base, slots, count, hd, d, 8); d += 32; }
        for (; d < hd; d += 4) accumulate32_dims_neon(o, wh, base, slots, count, hd, d, 1);
    }
}
#else
void sk_kv32_scores_group(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    scores32_each(base, slots, count, q, g, scale, out, ostride, hd);
}
void sk_kv32_accumulate_group(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd) {
    sk_kv32_accumulate_scalar(out, w, wstride, base, slots, count, g, hd);
}
#endif
