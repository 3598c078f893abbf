// GQA decode: the query heads that share one KV head, all against the same slots in one pass, so
// every key and value row is read and decoded (f32 keys, f16 → f32, int8 → f32) once per group
// instead of once per query head (f16 values excepted: head by head measured faster, see
// sk_kv16_accumulate_group; f32 values are per head, kv_f32.c). Each head's result is the
// per-head kernel's (kv_f16.c, kv_int8.c, the table's dot_f32) bit for bit: for
// every output the same operations in the same order (the per-head kernels' accumulator split
// is mirrored slot by slot); only the loop nest differs. Heads go in sub-groups of at most
// SUB (the accumulators must stay in registers). Where the per-head kernels would take another
// path (no AVX2, odd head sizes, blocks other than 32), and on NEON and scalar builds, the group
// is the per-head kernels in a loop: the same results by construction.
#include "sk_kernels.h"

enum { SUB = 4 };

static void scores16_each(const uint16_t *base, const long *slots, int count, const float *q, int g, float scale, float *out,
                          size_t ostride, int hd) {
    for (int h = 0; h < g; h++) sk_kv16_scores(base, slots, count, q + (size_t)h * hd, scale, out + (size_t)h * ostride, hd);
}
// f16 values: the per-head kernel, head by head, on every path. It streams each value row once per
// head with the head's 64 accumulators in registers; a group pass (dimensions outer, 16 at a time
// for all heads, each row converted once) measured 0.87x at depth 1,024 (docs/OPTIMIZATION-LOG.md).
void sk_kv16_accumulate_group(float *out, const float *w, size_t wstride, const uint16_t *base, const long *slots, int count, int g, int hd) {
    for (int h = 0; h < g; h++) sk_kv16_accumulate(out + (size_t)h * hd, w + (size_t)h * wstride, base, slots, count, hd);
}
static void scores8_each(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, int g, float scale,
                         float *out, size_t ostride, int hd, int block) {
    for (int h = 0; h < g; h++) sk_kv8_scores(base, row_bytes, slots, count, q + (size_t)h * hd, scale, out + (size_t)h * ostride, hd, block);
}
static void scores32_each(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out,
                          size_t ostride, int hd) {
    float (*dot)(const float *, const float *, int) = sk_kernels_best()->dot_f32;
    for (int h = 0; h < g; h++)
        for (int t = 0; t < count; t++) out[(size_t)h * ostride + t] = dot(base + (size_t)slots[t] * (size_t)hd, q + (size_t)h * hd, hd) * scale;
}
static void accumulate8_each(float *out, const float *w, size_t wstride, const uint8_t *base, size_t row_bytes, const long *slots,
                             int count, int g, int hd, int block) {
    for (int h = 0; h < g; h++) sk_kv8_accumulate(out + (size_t)h * hd, w + (size_t)h * wstride, base, row_bytes, slots, count, hd, block);
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include "f16_scalar.h"
#define SK_G __attribute__((target("avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) inline

SK_G static INLINE __m256 h8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
SK_G static INLINE __m256 c8(const uint8_t *p) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p))); }

// f16 scores, G heads. kv_f16.c: with hd a multiple of 16, slots in whole groups of four sum
// the even 8-chunks and the odd ones apart (a + b); the rest, and every slot when hd is not a
// multiple of 16, one accumulator over all chunks.
SK_G static INLINE void scores16_g(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out,
                                   size_t ostride, int hd, const int G) {
    const int split = hd % 16 == 0 ? count / 4 * 4 : 0;
    for (int t = 0; t < count; t++) {
        const uint16_t *k = base + (size_t)slots[t] * (size_t)hd;
        __m256 a[SUB], b[SUB];
        for (int h = 0; h < G; h++) { a[h] = _mm256_setzero_ps(); b[h] = _mm256_setzero_ps(); }
        if (t < split) {
            for (int i = 0; i < hd; i += 16) {
                __m256 k0 = h8(k + i), k1 = h8(k + i + 8);
                for (int h = 0; h < G; h++) {
                    a[h] = _mm256_fmadd_ps(k0, _mm256_loadu_ps(q + h * hd + i), a[h]);
                    b[h] = _mm256_fmadd_ps(k1, _mm256_loadu_ps(q + h * hd + i + 8), b[h]);
                }
            }
            for (int h = 0; h < G; h++) out[h * ostride + t] = sk_hsum8(_mm256_add_ps(a[h], b[h])) * scale;
        } else {
            for (int i = 0; i < hd; i += 8) {
                __m256 k0 = h8(k + i);
                for (int h = 0; h < G; h++) a[h] = _mm256_fmadd_ps(k0, _mm256_loadu_ps(q + h * hd + i), a[h]);
            }
            for (int h = 0; h < G; h++) out[h * ostride + t] = sk_hsum8(a[h]) * scale;
        }
    }
}

// int8 scores, G heads, blocks of 32. kv_int8.c: slots in pairs take one sum per block
// (s = Σ fma over the four 8-chunks, acc = fma(d, s, acc)); an odd last slot its two-sum form
// (s0 over chunks 0 and 2, s1 over 1 and 3, acc = fma(d, s0 + s1, acc)).
SK_G static INLINE void scores8_g(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, float scale,
                                  float *out, size_t ostride, int hd, const int G) {
    const int pairs = count / 2 * 2;
    for (int t = 0; t < count; t++) {
        const uint8_t *row = base + (size_t)slots[t] * row_bytes;
        __m256 acc[SUB];
        for (int h = 0; h < G; h++) acc[h] = _mm256_setzero_ps();
        for (int b = 0; b < hd / 32; b++) {
            const uint8_t *p = row + b * 34;
            __m256 c0 = c8(p + 2), c1 = c8(p + 10), c2 = c8(p + 18), c3 = c8(p + 26), d = _mm256_set1_ps(sk_f16c_at(p));
            for (int h = 0; h < G; h++) {
                const float *qb = q + h * hd + b * 32;
                __m256 s;
                if (t < pairs) {
                    s = _mm256_fmadd_ps(c0, _mm256_loadu_ps(qb), _mm256_setzero_ps());
                    s = _mm256_fmadd_ps(c1, _mm256_loadu_ps(qb + 8), s);
                    s = _mm256_fmadd_ps(c2, _mm256_loadu_ps(qb + 16), s);
                    s = _mm256_fmadd_ps(c3, _mm256_loadu_ps(qb + 24), s);
                } else {
                    __m256 s0 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(qb), _mm256_setzero_ps());
                    __m256 s1 = _mm256_fmadd_ps(c1, _mm256_loadu_ps(qb + 8), _mm256_setzero_ps());
                    s0 = _mm256_fmadd_ps(c2, _mm256_loadu_ps(qb + 16), s0);
                    s1 = _mm256_fmadd_ps(c3, _mm256_loadu_ps(qb + 24), s1);
                    s = _mm256_add_ps(s0, s1);
                }
                acc[h] = _mm256_fmadd_ps(d, s, acc[h]);
            }
        }
        for (int h = 0; h < G; h++) out[h * ostride + t] = sk_hsum8(acc[h]) * scale;
    }
}

// f32 scores, G heads: avx2.c's dot_f32 (even 8-chunks in one accumulator, odd in another, summed,
// the same horizontal sum, then the scalar tail as `s += w[i] * x[i]`), times the scale.
SK_G static INLINE void scores32_g(const float *base, const long *slots, int count, const float *q, float scale, float *out,
                                   size_t ostride, int hd, const int G) {
    for (int t = 0; t < count; t++) {
        const float *k = base + (size_t)slots[t] * (size_t)hd;
        __m256 a0[SUB], a1[SUB];
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
            float s = sk_hsum8(_mm256_add_ps(a0[h], a1[h]));
            for (int j = i; j < hd; j++) s += k[j] * q[h * hd + j];
            out[h * ostride + t] = s * scale;
        }
    }
}

// int8 values, G heads, blocks of 32: o = fma(w·d, code, o) per element, slot by slot (kv_int8.c's
// chain), half a block (16 dimensions) at a time.
SK_G static INLINE void accumulate8_g(float *out, const float *w, size_t wstride, const uint8_t *base, size_t row_bytes, const long *slots,
                                      int count, int hd, const int G) {
    for (int d = 0; d < hd; d += 16) {
        const size_t at = (size_t)(d / 32) * 34 + 2 + (size_t)(d % 32);
        __m256 o0[SUB], o1[SUB];
        for (int h = 0; h < G; h++) { o0[h] = _mm256_loadu_ps(out + h * hd + d); o1[h] = _mm256_loadu_ps(out + h * hd + d + 8); }
        for (int t = 0; t < count; t++) {
            const uint8_t *p = base + (size_t)slots[t] * row_bytes;
            const float dv = sk_f16c_at(p + (size_t)(d / 32) * 34);
            __m256 v0 = c8(p + at), v1 = c8(p + at + 8);
            for (int h = 0; h < G; h++) {
                __m256 wd = _mm256_set1_ps(w[h * wstride + t] * dv);
                o0[h] = _mm256_fmadd_ps(wd, v0, o0[h]);
                o1[h] = _mm256_fmadd_ps(wd, v1, o1[h]);
            }
        }
        for (int h = 0; h < G; h++) { _mm256_storeu_ps(out + h * hd + d, o0[h]); _mm256_storeu_ps(out + h * hd + d + 8, o1[h]); }
    }
}

// One sub-group of n ≤ SUB heads through the kernel specialised for n.
#define SK_SUBGROUP(call, n)                                       \
    switch (n) {                                                   \
    case 1: call(1); break;                                        \
    case 2: call(2); break;                                        \
    case 3: call(3); break;                                        \
    default: call(4); break;                                       \
    }

SK_G static void scores16_avx2(const uint16_t *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    for (int h0 = 0; h0 < g; h0 += SUB) {
        int n = g - h0 < SUB ? g - h0 : SUB;
#define CALL(N) scores16_g(base, slots, count, q + (size_t)h0 * hd, scale, out + (size_t)h0 * ostride, ostride, hd, N)
        SK_SUBGROUP(CALL, n)
#undef CALL
    }
}
SK_G static void scores8_avx2(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, int g, float scale,
                              float *out, size_t ostride, int hd) {
    for (int h0 = 0; h0 < g; h0 += SUB) {
        int n = g - h0 < SUB ? g - h0 : SUB;
#define CALL(N) scores8_g(base, row_bytes, slots, count, q + (size_t)h0 * hd, scale, out + (size_t)h0 * ostride, ostride, hd, N)
        SK_SUBGROUP(CALL, n)
#undef CALL
    }
}
SK_G static void scores32_avx2(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out,
                               size_t ostride, int hd) {
    for (int h0 = 0; h0 < g; h0 += SUB) {
        int n = g - h0 < SUB ? g - h0 : SUB;
#define CALL(N) scores32_g(base, slots, count, q + (size_t)h0 * hd, scale, out + (size_t)h0 * ostride, ostride, hd, N)
        SK_SUBGROUP(CALL, n)
#undef CALL
    }
}
SK_G static void accumulate8_avx2(float *out, const float *w, size_t wstride, const uint8_t *base, size_t row_bytes, const long *slots,
                                  int count, int g, int hd) {
    for (int h0 = 0; h0 < g; h0 += SUB) {
        int n = g - h0 < SUB ? g - h0 : SUB;
#define CALL(N) accumulate8_g(out + (size_t)h0 * hd, w + (size_t)h0 * wstride, wstride, base, row_bytes, slots, count, hd, N)
        SK_SUBGROUP(CALL, n)
#undef CALL
    }
}

// The group kernels apply exactly where the per-head dispatchers pick their AVX2 kernels.
static int avx2(void) { return sk_kv16_simd() && sk_kv8_simd() && sk_kernels_forced() != SK_FORCE_SCALAR; }

void sk_kv16_scores_group(const uint16_t *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    if (hd % 8 == 0 && avx2()) scores16_avx2(base, slots, count, q, g, scale, out, ostride, hd);
    else scores16_each(base, slots, count, q, g, scale, out, ostride, hd);
}
// f32: only where the table's dot_f32 is AVX2's (not the scalar or a forced path's).
void sk_kv32_scores_group(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    const sk_kernel_table *a = sk_kernels_avx2();
    if (a && sk_kernels_best()->dot_f32 == a->dot_f32) scores32_avx2(base, slots, count, q, g, scale, out, ostride, hd);
    else scores32_each(base, slots, count, q, g, scale, out, ostride, hd);
}
void sk_kv8_scores_group(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, int g, float scale,
                         float *out, size_t ostride, int hd, int block) {
    if (block == 32 && hd % 32 == 0 && avx2()) scores8_avx2(base, row_bytes, slots, count, q, g, scale, out, ostride, hd);
    else scores8_each(base, row_bytes, slots, count, q, g, scale, out, ostride, hd, block);
}
void sk_kv8_accumulate_group(float *out, const float *w, size_t wstride, const uint8_t *base, size_t row_bytes, const long *slots,
                             int count, int g, int hd, int block) {
    if (block == 32 && hd % 32 == 0 && avx2()) accumulate8_avx2(out, w, wstride, base, row_bytes, slots, count, g, hd);
    else accumulate8_each(out, w, wstride, base, row_bytes, slots, count, g, hd, block);
}
#else
void sk_kv32_scores_group(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    scores32_each(base, slots, count, q, g, scale, out, ostride, hd);
}
void sk_kv16_scores_group(const uint16_t *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    scores16_each(base, slots, count, q, g, scale, out, ostride, hd);
}
void sk_kv8_scores_group(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, int g, float scale,
                         float *out, size_t ostride, int hd, int block) {
    scores8_each(base, row_bytes, slots, count, q, g, scale, out, ostride, hd, block);
}
void sk_kv8_accumulate_group(float *out, const float *w, size_t wstride, const uint8_t *base, size_t row_bytes, const long *slots,
                             int count, int g, int hd, int block) {
    accumulate8_each(out, w, wstride, base, row_bytes, slots, count, g, hd, block);
}
#endif
