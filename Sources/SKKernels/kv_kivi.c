// KIVI int4 keys (arXiv 2402.02750: keys quantized per channel, values per token). Keys have
// channels whose range is large but nearly constant over neighbouring tokens (RoPE's slow
// frequencies carry a per-channel offset), so a per-token scale spends its 16 levels on them: on
// SmolLM2, values in int4 too, per-token int4 keys cost +6.9% perplexity, per channel over groups
// of 32 tokens +1.8% (docs/measurements/kv-quality.md). A group of up to 32 slots shares, per channel j,
// an f16 scale d_j = f16((max − min) / 15) and an f16 minimum m_j = f16(min); each slot stores
// 4-bit codes c_j = clamp(round((x_j − m_j) / d_j), 0, 15) (element j in the low nibble of byte
// j/2 when even, high when odd) and, after its hd/2 code bytes, a little-endian u32 group id:
// k_j ≈ m_j + d_j · c_j. Slots not yet sealed into a group (the newest ones) carry
// SK_KIVI_PENDING | i and their key as f16 at pending[i · hd].
//
// q · k = Σ_j (q_j d_j) c_j + Σ_j q_j m_j: per group, the query's terms qd_j = q_j · d_j and the
// constant Σ q_j m_j once, then one 4-bit dot product per slot (AVX2, NEON, the scalar reference).
#include "sk_kernels.h"
#include <string.h>

static inline uint32_t gid_at(const uint8_t *row, int hd) {
    uint32_t g;
    memcpy(&g, row + hd / 2, 4);
    return g;
}

void sk_kivi_seal(const float *rows, int n, int hd, uint16_t *params, uint8_t *codes) {
    for (int j = 0; j < hd; j++) {
        float lo = rows[j], hi = rows[j];
        for (int i = 1; i < n; i++) {
            float x = rows[(size_t)i * hd + j];
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
        params[j] = sk_f32_to_f16_scalar((hi - lo) / 15.0f);
        params[hd + j] = sk_f32_to_f16_scalar(lo);
    }
    memset(codes, 0, (size_t)n * (size_t)(hd / 2));
    for (int j = 0; j < hd; j++) {
        float d = sk_f16_to_f32(params[j]), m = sk_f16_to_f32(params[hd + j]);
        float inv = d > 0 ? 1.0f / d : 0.0f;
        for (int i = 0; i < n; i++) {
            float c = __builtin_roundf((rows[(size_t)i * hd + j] - m) * inv);
            c = c < 0 ? 0 : c > 15 ? 15 : c;
            codes[(size_t)i * (hd / 2) + j / 2] |= (uint8_t)((int)c << (4 * (j & 1)));
        }
    }
}

void sk_kivi_dequantize(const uint8_t *row, const uint16_t *params, const uint16_t *pending, float *out, int hd) {
    uint32_t g = gid_at(row, hd);
    if (g & SK_KIVI_PENDING) {
        const uint16_t *k = pending + (size_t)(g & ~SK_KIVI_PENDING) * hd;
        for (int j = 0; j < hd; j++) out[j] = sk_f16_to_f32(k[j]);
        return;
    }
    const uint16_t *p = params + (size_t)g * 2 * hd;
    for (int j = 0; j < hd; j++) {
        float c = (float)((row[j / 2] >> (4 * (j & 1))) & 15), d = sk_f16_to_f32(p[j]);
        out[j] = sk_f16_to_f32(p[hd + j]) + d * c;
    }
}

float sk_kivi_dot_scalar(const uint8_t *codes, const float *qd, int hd) {
    float s = 0;
    for (int j = 0; j < hd; j += 2) s += qd[j] * (float)(codes[j / 2] & 15) + qd[j + 1] * (float)(codes[j / 2] >> 4);
    return s;
}

// A group's query terms: qd_j = q_j · d_j; returns Σ_j q_j · m_j.
static float group_terms(const uint16_t *p, const float *q, float *qd, int hd) {
    float c = 0;
    for (int j = 0; j < hd; j++) {
        qd[j] = q[j] * sk_f16_to_f32(p[j]);
        c += q[j] * sk_f16_to_f32(p[hd + j]);
    }
    return c;
}

// q · k for an f16 key (a sink or an unsealed key).
static float dot_f16(const uint16_t *k, const float *q, int hd) {
    float s = 0;
    for (int j = 0; j < hd; j++) s += q[j] * sk_f16_to_f32(k[j]);
    return s;
}

typedef float (*kivi_dot)(const uint8_t *, const float *, int);
typedef float (*kivi_terms)(const uint16_t *, const float *, float *, int);
typedef float (*kivi_dot16)(const uint16_t *, const float *, int);

// Always inlined, so that each caller's kernels are inlined into the slot loop (no call per slot).
static inline __attribute__((always_inline)) void scores_with(kivi_dot dot, kivi_terms terms, kivi_dot16 dot16, const uint8_t *base,
                                                              size_t row_bytes, const uint16_t *params, const uint16_t *pending,
                                                              const long *slots, int count, const float *q, float scale, float *out, int hd) {
    float qd[hd], qc = 0;
    uint32_t last = SK_KIVI_PENDING;   // no group yet
    for (int t = 0; t < count; t++) {
        const uint8_t *row = base + (size_t)slots[t] * row_bytes;
        uint32_t g = gid_at(row, hd);
        if (g & SK_KIVI_PENDING) {
            out[t] = dot16(pending + (size_t)(g & ~SK_KIVI_PENDING) * hd, q, hd) * scale;
            continue;
        }
        if (g != last) {   // slots of one group are mostly neighbours: terms once per run
            qc = terms(params + (size_t)g * 2 * hd, q, qd, hd);
            last = g;
        }
        out[t] = (dot(row, qd, hd) + qc) * scale;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#include "f16_scalar.h"
#define SK_KIVI_AVX2 __attribute__((target("avx2,fma,f16c")))


static SK_KIVI_AVX2 inline __m256 f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static SK_KIVI_AVX2 float terms_avx2(const uint16_t *p, const float *q, float *qd, int hd) {
    if (hd % 8) return group_terms(p, q, qd, hd);
    __m256 c = _mm256_setzero_ps();
    for (int j = 0; j < hd; j += 8) {
        __m256 qv = _mm256_loadu_ps(q + j);
        _mm256_storeu_ps(qd + j, _mm256_mul_ps(qv, f16x8(p + j)));
        c = _mm256_fmadd_ps(qv, f16x8(p + hd + j), c);
    }
    return sk_hsum8(c);
}

static SK_KIVI_AVX2 float dot16_avx2(const uint16_t *k, const float *q, int hd) {
    if (hd % 8) return dot_f16(k, q, hd);
    __m256 s = _mm256_setzero_ps();
    for (int j = 0; j < hd; j += 8) s = _mm256_fmadd_ps(f16x8(k + j), _mm256_loadu_ps(q + j), s);
    return sk_hsum8(s);
}

// Eight codes (4 bytes, low nibble first) as floats 0..15.
static SK_KIVI_AVX2 inline __m256 u4x8(const uint8_t *p) {
    int32_t w;
    memcpy(&w, p, 4);
    __m128i b = _mm_cvtsi32_si128(w);
    b = _mm_unpacklo_epi8(b, b);
    __m256i v = _mm256_srlv_epi32(_mm256_cvtepu8_epi32(b), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
    return _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15)));
}

static SK_KIVI_AVX2 float dot_avx2(const uint8_t *codes, const float *qd, int hd) {
    if (hd % 16) return sk_kivi_dot_scalar(codes, qd, hd);
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    for (int j = 0; j < hd; j += 16) {
        a = _mm256_fmadd_ps(u4x8(codes + j / 2), _mm256_loadu_ps(qd + j), a);
        b = _mm256_fmadd_ps(u4x8(codes + j / 2 + 4), _mm256_loadu_ps(qd + j + 8), b);
    }
    return sk_hsum8(_mm256_add_ps(a, b));
}

static SK_KIVI_AVX2 void scores_simd(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending,
                                     const long *slots, int count, const float *q, float scale, float *out, int hd) {
    scores_with(dot_avx2, terms_avx2, dot16_avx2, base, row_bytes, params, pending, slots, count, q, scale, out, hd);
}

// GQA: the g query heads of one KV head against the same slots, each sealed row's codes widened
// to floats once for all of them (heads of 64 dimensions: eight vectors); each head's sums those
// of dot_avx2 (the same two accumulators, the same order), so each head equals scores_simd bit for bit.
static SK_KIVI_AVX2 void scores_group_avx2(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending,
                                           const long *slots, int count, const float *q, int g, float scale, float *out,
                                           size_t ostride) {
    enum { HD = 64 };
    float qd[16][HD], qc[16];
    uint32_t last = SK_KIVI_PENDING;
    for (int t = 0; t < count; t++) {
        const uint8_t *row = base + (size_t)slots[t] * row_bytes;
        uint32_t gid = gid_at(row, HD);
        if (gid & SK_KIVI_PENDING) {
            const uint16_t *k = pending + (size_t)(gid & ~SK_KIVI_PENDING) * HD;
            for (int h = 0; h < g; h++) out[h * ostride + t] = dot16_avx2(k, q + h * HD, HD) * scale;
            continue;
        }
        if (gid != last) {
            for (int h = 0; h < g; h++) qc[h] = terms_avx2(params + (size_t)gid * 2 * HD, q + h * HD, qd[h], HD);
            last = gid;
        }
        __m256 c[8];
        for (int k = 0; k < 8; k++) c[k] = u4x8(row + 4 * k);
        for (int h = 0; h < g; h++) {
            __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
            for (int k = 0; k < 8; k += 2) {
                a = _mm256_fmadd_ps(c[k], _mm256_loadu_ps(qd[h] + 8 * k), a);
                b = _mm256_fmadd_ps(c[k + 1], _mm256_loadu_ps(qd[h] + 8 * k + 8), b);
            }
            out[h * ostride + t] = (sk_hsum8(_mm256_add_ps(a, b)) + qc[h]) * scale;
        }
    }
}

static int use_simd(void) {
    static int v = -1;
    if (v < 0) v = sk_kernels_forced() != SK_FORCE_SCALAR && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("f16c");
    return v;
}
float sk_kivi_dot_simd(const uint8_t *codes, const float *qd, int hd) { return dot_avx2(codes, qd, hd); }
int sk_kivi_scores_group(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending, const long *slots,
                         int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    if (hd != 64 || g > 16 || !use_simd()) return 0;
    scores_group_avx2(base, row_bytes, params, pending, slots, count, q, g, scale, out, ostride);
    return 1;
}
#elif defined(__aarch64__)
#include <arm_neon.h>

static float dot_neon(const uint8_t *codes, const float *qd, int hd) {
    if (hd % 8) return sk_kivi_dot_scalar(codes, qd, hd);
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    for (int j = 0; j < hd; j += 8) {
        uint8_t b[8];
        for (int k = 0; k < 4; k++) { b[2 * k] = codes[j / 2 + k] & 15; b[2 * k + 1] = codes[j / 2 + k] >> 4; }
        uint16x8_t h = vmovl_u8(vld1_u8(b));
        s0 = vfmaq_f32(s0, vcvtq_f32_u32(vmovl_u16(vget_low_u16(h))), vld1q_f32(qd + j));
        s1 = vfmaq_f32(s1, vcvtq_f32_u32(vmovl_u16(vget_high_u16(h))), vld1q_f32(qd + j + 4));
    }
    return vaddvq_f32(vaddq_f32(s0, s1));
}

static void scores_simd(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending,
                        const long *slots, int count, const float *q, float scale, float *out, int hd) {
    scores_with(dot_neon, group_terms, dot_f16, base, row_bytes, params, pending, slots, count, q, scale, out, hd);
}
static int use_simd(void) { return sk_kernels_forced() != SK_FORCE_SCALAR; }
float sk_kivi_dot_simd(const uint8_t *codes, const float *qd, int hd) { return dot_neon(codes, qd, hd); }
#else
static int use_simd(void) { return 0; }
float sk_kivi_dot_simd(const uint8_t *codes, const float *qd, int hd) { return sk_kivi_dot_scalar(codes, qd, hd); }
#endif
#if !defined(__x86_64__)
// (the per-head calls in a loop: the caller's fallback)
int sk_kivi_scores_group(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending, const long *slots,
                         int count, const float *q, int g, float scale, float *out, size_t ostride, int hd) {
    (void)base; (void)row_bytes; (void)params; (void)pending; (void)slots; (void)count; (void)q; (void)g; (void)scale; (void)out;
    (void)ostride; (void)hd;
    return 0;
}
#endif

void sk_kivi_scores(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending, const long *slots, int count,
                    const float *q, float scale, float *out, int hd) {
#if defined(__x86_64__) || defined(__aarch64__)
    if (use_simd()) { scores_simd(base, row_bytes, params, pending, slots, count, q, scale, out, hd); return; }
#endif
    scores_with(sk_kivi_dot_scalar, group_terms, dot_f16, base, row_bytes, params, pending, slots, count, q, scale, out, hd);
}

void sk_kivi_scores_scalar(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending, const long *slots,
                           int count, const float *q, float scale, float *out, int hd) {
    scores_with(sk_kivi_dot_scalar, group_terms, dot_f16, base, row_bytes, params, pending, slots, count, q, scale, out, hd);
}
