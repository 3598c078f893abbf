// f16 KV rows, a whole head's slots per call: attention scores (q · k for each listed slot) and
// the weighted sum of values. The per-slot kernel calls these replace paid a call, a horizontal
// sum and, for the values, a reload and store of the output row per slot; here the output stays
// in registers across the slots (in chunks of 64, 32 and 8 dimensions). Scalar reference, AVX2 + F16C,
// NEON; the SIMD paths sum in their own order (tested against the scalar one to 1e-4 relative).
#include "sk_kernels.h"
#include <string.h>

void sk_kv16_scores_scalar(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd) {
    for (int t = 0; t < count; t++) {
        const uint16_t *k = base + (size_t)slots[t] * (size_t)hd;
        float s = 0;
        for (int i = 0; i < hd; i++) s += sk_f16_to_f32(k[i]) * q[i];
        out[t] = s * scale;
    }
}

void sk_kv16_accumulate_scalar(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd) {
    for (int t = 0; t < count; t++) {
        const uint16_t *v = base + (size_t)slots[t] * (size_t)hd;
        for (int i = 0; i < hd; i++) out[i] += w[t] * sk_f16_to_f32(v[i]);
    }
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include "f16_scalar.h"
#define SK_F16C __attribute__((target("avx2,fma,f16c")))

SK_F16C static inline __m256 h8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }


// Four slots at a time, two accumulators each: eight independent FMA chains (fewer leave the
// loop bound by the FMA latency); hd a multiple of 8.
SK_F16C static void scores_f16c(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd) {
    int t = 0;
    if (hd % 16 == 0) {
        for (; t + 4 <= count; t += 4) {
            const uint16_t *k0 = base + (size_t)slots[t] * (size_t)hd, *k1 = base + (size_t)slots[t + 1] * (size_t)hd;
            const uint16_t *k2 = base + (size_t)slots[t + 2] * (size_t)hd, *k3 = base + (size_t)slots[t + 3] * (size_t)hd;
            __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
            for (int i = 0; i < hd; i += 16) {
                __m256 qa = _mm256_loadu_ps(q + i), qb = _mm256_loadu_ps(q + i + 8);
                a0 = _mm256_fmadd_ps(h8(k0 + i), qa, a0); b0 = _mm256_fmadd_ps(h8(k0 + i + 8), qb, b0);
                a1 = _mm256_fmadd_ps(h8(k1 + i), qa, a1); b1 = _mm256_fmadd_ps(h8(k1 + i + 8), qb, b1);
                a2 = _mm256_fmadd_ps(h8(k2 + i), qa, a2); b2 = _mm256_fmadd_ps(h8(k2 + i + 8), qb, b2);
                a3 = _mm256_fmadd_ps(h8(k3 + i), qa, a3); b3 = _mm256_fmadd_ps(h8(k3 + i + 8), qb, b3);
            }
            out[t] = sk_hsum8(_mm256_add_ps(a0, b0)) * scale;
            out[t + 1] = sk_hsum8(_mm256_add_ps(a1, b1)) * scale;
            out[t + 2] = sk_hsum8(_mm256_add_ps(a2, b2)) * scale;
            out[t + 3] = sk_hsum8(_mm256_add_ps(a3, b3)) * scale;
        }
    }
    for (; t < count; t++) {
        const uint16_t *k = base + (size_t)slots[t] * (size_t)hd;
        __m256 a = _mm256_setzero_ps();
        for (int i = 0; i < hd; i += 8) a = _mm256_fmadd_ps(h8(k + i), _mm256_loadu_ps(q + i), a);
        out[t] = sk_hsum8(a) * scale;
    }
}

// Output chunks of 64 dimensions (eight accumulators: eight independent chains per slot), then
// 32, then 8, held in registers over all the slots.
SK_F16C static void accumulate_f16c(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd) {
    int d = 0;
    for (; d + 64 <= hd; d += 64) {
        __m256 o[8];
        for (int k = 0; k < 8; k++) o[k] = _mm256_loadu_ps(out + d + 8 * k);
        for (int t = 0; t < count; t++) {
            const uint16_t *v = base + (size_t)slots[t] * (size_t)hd + d;
            __m256 wt = _mm256_set1_ps(w[t]);
            for (int k = 0; k < 8; k++) o[k] = _mm256_fmadd_ps(h8(v + 8 * k), wt, o[k]);
        }
        for (int k = 0; k < 8; k++) _mm256_storeu_ps(out + d + 8 * k, o[k]);
    }
    for (; d + 32 <= hd; d += 32) {
        __m256 o0 = _mm256_loadu_ps(out + d), o1 = _mm256_loadu_ps(out + d + 8), o2 = _mm256_loadu_ps(out + d + 16), o3 = _mm256_loadu_ps(out + d + 24);
        for (int t = 0; t < count; t++) {
            const uint16_t *v = base + (size_t)slots[t] * (size_t)hd + d;
            __m256 wt = _mm256_set1_ps(w[t]);
            o0 = _mm256_fmadd_ps(h8(v), wt, o0);
            o1 = _mm256_fmadd_ps(h8(v + 8), wt, o1);
            o2 = _mm256_fmadd_ps(h8(v + 16), wt, o2);
            o3 = _mm256_fmadd_ps(h8(v + 24), wt, o3);
        }
        _mm256_storeu_ps(out + d, o0);
        _mm256_storeu_ps(out + d + 8, o1);
        _mm256_storeu_ps(out + d + 16, o2);
        _mm256_storeu_ps(out + d + 24, o3);
    }
    for (; d < hd; d += 8) {
        __m256 o = _mm256_loadu_ps(out + d);
        for (int t = 0; t < count; t++) o = _mm256_fmadd_ps(h8(base + (size_t)slots[t] * (size_t)hd + d), _mm256_set1_ps(w[t]), o);
        _mm256_storeu_ps(out + d, o);
    }
}

static int simd(void) {
    static int s = -1;
    if (s < 0) s = sk_kernels_forced() != SK_FORCE_SCALAR && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return s;
}
int sk_kv16_simd(void) { return simd(); }
void sk_kv16_scores_simd(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd) {
    scores_f16c(base, slots, count, q, scale, out, hd);
}
void sk_kv16_accumulate_simd(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd) {
    accumulate_f16c(out, w, base, slots, count, hd);
}

#elif defined(__aarch64__)
#include <arm_neon.h>

static inline float32x4_t lo4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

static void scores_neon(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd) {
    for (int t = 0; t < count; t++) {
        const uint16_t *k = base + (size_t)slots[t] * (size_t)hd;
        float32x4_t a = vdupq_n_f32(0), b = vdupq_n_f32(0);
        for (int i = 0; i < hd; i += 8) {
            a = vfmaq_f32(a, lo4(k + i), vld1q_f32(q + i));
            b = vfmaq_f32(b, lo4(k + i + 4), vld1q_f32(q + i + 4));
        }
        out[t] = vaddvq_f32(vaddq_f32(a, b)) * scale;
    }
}

static void accumulate_neon(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd) {
    int d = 0;
    for (; d + 16 <= hd; d += 16) {
        float32x4_t o0 = vld1q_f32(out + d), o1 = vld1q_f32(out + d + 4), o2 = vld1q_f32(out + d + 8), o3 = vld1q_f32(out + d + 12);
        for (int t = 0; t < count; t++) {
            const uint16_t *v = base + (size_t)slots[t] * (size_t)hd + d;
            o0 = vfmaq_n_f32(o0, lo4(v), w[t]);
            o1 = vfmaq_n_f32(o1, lo4(v + 4), w[t]);
            o2 = vfmaq_n_f32(o2, lo4(v + 8), w[t]);
            o3 = vfmaq_n_f32(o3, lo4(v + 12), w[t]);
        }
        vst1q_f32(out + d, o0); vst1q_f32(out + d + 4, o1); vst1q_f32(out + d + 8, o2); vst1q_f32(out + d + 12, o3);
    }
    for (; d < hd; d += 8) {
        float32x4_t o0 = vld1q_f32(out + d), o1 = vld1q_f32(out + d + 4);
        for (int t = 0; t < count; t++) {
            const uint16_t *v = base + (size_t)slots[t] * (size_t)hd + d;
            o0 = vfmaq_n_f32(o0, lo4(v), w[t]);
            o1 = vfmaq_n_f32(o1, lo4(v + 4), w[t]);
        }
        vst1q_f32(out + d, o0); vst1q_f32(out + d + 4, o1);
    }
}

int sk_kv16_simd(void) { return sk_kernels_forced() != SK_FORCE_SCALAR; }
void sk_kv16_scores_simd(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd) {
    scores_neon(base, slots, count, q, scale, out, hd);
}
void sk_kv16_accumulate_simd(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd) {
    accumulate_neon(out, w, base, slots, count, hd);
}

#else
int sk_kv16_simd(void) { return 0; }
void sk_kv16_scores_simd(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd) {
    sk_kv16_scores_scalar(base, slots, count, q, scale, out, hd);
}
void sk_kv16_accumulate_simd(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd) {
    sk_kv16_accumulate_scalar(out, w, base, slots, count, hd);
}
#endif

// The SIMD paths need hd a multiple of 8; other heads take the scalar path.
void sk_kv16_scores(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd) {
    if (hd % 8 == 0 && sk_kv16_simd()) sk_kv16_scores_simd(base, slots, count, q, scale, out, hd);
    else sk_kv16_scores_scalar(base, slots, count, q, scale, out, hd);
}
void sk_kv16_accumulate(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd) {
    if (hd % 8 == 0 && sk_kv16_simd()) sk_kv16_accumulate_simd(out, w, base, slots, count, hd);
    else sk_kv16_accumulate_scalar(out, w, base, slots, count, hd);
}
