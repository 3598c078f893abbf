// AVX2 + FMA + F16C kernels (the same sums as scalar.c, in SIMD order). Compiled with target
// attributes, so a baseline x86-64 build contains them and only calls them after checking cpuid.
#include "sk_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include "f16_scalar.h"
#include <string.h>
#include <math.h>

#define SK_AVX2 __attribute__((target("avx2,fma,f16c")))


// Σ over 32 pairs of u8 (0..15 or |w|) × s8, as 8 int32 lanes, converted to float.
SK_AVX2 static inline __m256 dot_u8s8(__m256i u, __m256i s) {
    __m256i p16 = _mm256_maddubs_epi16(u, s);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

SK_AVX2 static float dot_f32(const float *w, const float *x, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = sk_hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}

SK_AVX2 static float dot_f16(const uint16_t *w, const float *x, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8)));
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = sk_hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += _cvtsh_ss(w[i]) * x[i];
    return s;
}

SK_AVX2 static void quantize_act(const float *x, sk_act_q8 *out, int n) {
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / 32; b++) {
        const float *v = x + 32 * b;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signbit, v0), _mm256_andnot_ps(signbit, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(signbit, v2), _mm256_andnot_ps(signbit, v3)));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        __m256 mul = _mm256_set1_ps(id);
        // round half to even, as lrintf in the default rounding mode
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, mul)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, mul));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, mul)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, mul));
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out[b].qs, p);
        out[b].d = d;
        out[b].isum = _mm_cvtsi128_si32(s4);
    }
}

SK_AVX2 static float dot_int8(const void *wv, const sk_act_q8 *a, int n) {
    const uint8_t *w = (const uint8_t *)wv;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / 32; b++, w += 34) {
        __m256i wq = _mm256_loadu_si256((const __m256i *)(w + 2));
        __m256i aq = _mm256_loadu_si256((const __m256i *)a[b].qs);
        // maddubs wants unsigned × signed: |w| × (a with w's sign)
        __m256 p = dot_u8s8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(aq, wq));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sk_f16c_at(w) * a[b].d), p, acc);
    }
    return sk_hsum8(acc);
}

// The codes of one weight group, in element order, as 32-byte vectors (group/32 of them).
SK_AVX2 static inline void unpack_group(const uint8_t *qs, int group, __m256i *q) {
    const __m256i low = _mm256_set1_epi8(0x0f);
    if (group == 32) {
        __m128i b = _mm_loadu_si128((const __m128i *)qs);
        __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0f)), hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0f));
        q[0] = _mm256_set_m128i(hi, lo);
    } else if (group == 64) {
        __m256i b = _mm256_loadu_si256((const __m256i *)qs);
        q[0] = _mm256_and_si256(b, low);
        q[1] = _mm256_and_si256(_mm256_srli_epi16(b, 4), low);
    } else {  // 128
        __m256i b0 = _mm256_loadu_si256((const __m256i *)qs), b1 = _mm256_loadu_si256((const __m256i *)(qs + 32));
        q[0] = _mm256_and_si256(b0, low);
        q[1] = _mm256_and_si256(b1, low);
        q[2] = _mm256_and_si256(_mm256_srli_epi16(b0, 4), low);
        q[3] = _mm256_and_si256(_mm256_srli_epi16(b1, 4), low);
    }
}

// Groups of 32 (the default), two groups per iteration on independent accumulators. int4-sym
// folds its offset into the integer sums: Σ(q−8)a = Σqa − 8·isum, i.e. −isum on each of the 8
// int32 lanes; int4 adds m·d_a·isum per group.
SK_AVX2 static inline __m256 int4_g32_block(const uint8_t *w, const sk_act_q8 *a, int asym, float *accm) {
    const __m128i low = _mm_set1_epi8(0x0f);
    __m128i x = _mm_loadu_si128((const __m128i *)(w + (asym ? 4 : 2)));
    __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), low), _mm_and_si128(x, low));
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)a->qs)), _mm256_set1_epi16(1));
    if (asym) *accm += sk_f16c_at(w + 2) * a->d * (float)a->isum;
    else s = _mm256_sub_epi32(s, _mm256_set1_epi32(a->isum));
    return _mm256_mul_ps(_mm256_set1_ps(sk_f16c_at(w) * a->d), _mm256_cvtepi32_ps(s));
}

SK_AVX2 static inline float int4_dot_g32(const uint8_t *w, const sk_act_q8 *a, int n, int asym) {
    const int bytes = asym ? 20 : 18, nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float m0 = 0, m1 = 0;
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        acc0 = _mm256_add_ps(acc0, int4_g32_block(w + b * bytes, a + b, asym, &m0));
        acc1 = _mm256_add_ps(acc1, int4_g32_block(w + (b + 1) * bytes, a + b + 1, asym, &m1));
    }
    if (b < nb) acc0 = _mm256_add_ps(acc0, int4_g32_block(w + b * bytes, a + b, asym, &m0));
    return sk_hsum8(_mm256_add_ps(acc0, acc1)) + m0 + m1;
}

SK_AVX2 static inline float int4_dot(const uint8_t *w, const sk_act_q8 *a, int n, int group, int asym) {
    if (group == 32) return int4_dot_g32(w, a, n, asym);
    const int bytes = (asym ? 4 : 2) + group / 2, sub = group / 32;
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int g = 0; g < n / group; g++, w += bytes, a += sub) {
        __m256i q[4];
        unpack_group(w + (asym ? 4 : 2), group, q);
        float d = sk_f16c_at(w), m = asym ? sk_f16c_at(w + 2) : -8.0f * d, sa = 0;
        for (int k = 0; k < sub; k++) {
            __m256 p = dot_u8s8(q[k], _mm256_loadu_si256((const __m256i *)a[k].qs));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * a[k].d), p, acc);
            sa += a[k].d * (float)a[k].isum;
        }
        accm += m * sa;
    }
    return sk_hsum8(acc) + accm;
}

SK_AVX2 static float dot_int4(const void *w, const sk_act_q8 *a, int n, int group) {
    return int4_dot((const uint8_t *)w, a, n, group, 1);
}

SK_AVX2 static float dot_int4_sym(const void *w, const sk_act_q8 *a, int n, int group) {
    return int4_dot((const uint8_t *)w, a, n, group, 0);
}

// gemv is one AVX2 dot per row: 4-row blocked kernels (one activation load shared by four rows,
// four accumulator chains) measured slower here, 71 vs 123 tok/s (int8) and 93 vs 105 (int4),
// interleaving four row streams, so they were not kept.
static const sk_kernel_table avx2_table;

static void gemv(int type, const void *w, size_t rb, int rows, const sk_act_q8 *a, int n, int group, float *out) {
    sk_gemv_rows(&avx2_table, type, w, rb, rows, a, n, group, out);
}

// x8 layout (pack.c): 8 rows per register lane set. Per block: four 32-byte loads give the codes
// of 4 consecutive elements for each of the 8 rows (low nibbles) and of the 4 elements 16
// further on (high nibbles); each is multiplied with one broadcast 4-byte activation group
// (maddubs: |pair sum| ≤ 2·15·127, so eight of them still fit int16), one madd leaves one int32
// per row, and the 8 rows' scales arrive as one f16 vector.
SK_AVX2 static void gemv_int4_x8(int asym, const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32, qoff = asym ? 32 : 16;
    const size_t bb = (size_t)qoff + 128;
    const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++, w += bb) {
            const uint8_t *q = w + qoff;
            const int8_t *x = a[b].qs;
            int32_t g[8];
            memcpy(g, x, 32);
            __m256i s16 = _mm256_setzero_si256();
            for (int p = 0; p < 4; p++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * p));
                __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(lo, _mm256_set1_epi32(g[p])));
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(hi, _mm256_set1_epi32(g[4 + p])));
            }
            __m256i s = _mm256_madd_epi16(s16, ones);
            if (!asym) s = _mm256_sub_epi32(s, _mm256_set1_epi32(8 * a[b].isum));
            __m256 ad = _mm256_set1_ps(a[b].d);
            __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w)), ad);
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
            if (asym) accm = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 16))), _mm256_set1_ps(a[b].d * (float)a[b].isum), accm);
        }
        _mm256_storeu_ps(out + r0, _mm256_add_ps(acc, accm));
    }
}

// int8 x8: per block and group of 4 columns, one 32-byte load holds 4 codes of each of the 8
// rows; maddubs wants unsigned × signed, so |w| × (the broadcast activations with w's sign).
SK_AVX2 static void gemv_int8_x8(const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++, w += SK_X8_INT8_BLOCK_BYTES) {
            int32_t g[8];
            memcpy(g, a[b].qs, 32);
            __m256i s0 = _mm256_setzero_si256(), s1 = s0;
            for (int p = 0; p < 8; p += 2) {
                __m256i v0 = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * p));
                __m256i v1 = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * (p + 1)));
                __m256i x0 = _mm256_set1_epi32(g[p]), x1 = _mm256_set1_epi32(g[p + 1]);
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(x0, v0)), ones));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v1, v1), _mm256_sign_epi8(x1, v1)), ones));
            }
            __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w)), _mm256_set1_ps(a[b].d));
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
        }
        _mm256_storeu_ps(out + r0, acc);
    }
}

// e^x on 8 floats: x = n·ln2 + r with n = round(x·log2 e), ln2 in two parts (Cephes expf), e^r by
// Cephes' degree-5 polynomial, 2^n put into the exponent. Below ln(FLT_MIN) the result is 0
// (−inf included); above 88.376 it stays at e^88.376.
SK_AVX2 static inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654475f), hi = _mm256_set1_ps(88.3762626647949f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

SK_AVX2 static void silu_mul(float *g, const float *u, int n) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(g + i);
        __m256 s = _mm256_div_ps(a, _mm256_add_ps(one, exp8(_mm256_xor_ps(a, sign))));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    if (i < n) {   // the tail through the same vector code (every element, same arithmetic)
        float gt[8] = {0}, ut[8] = {0};
        memcpy(gt, g + i, sizeof(float) * (size_t)(n - i));
        memcpy(ut, u + i, sizeof(float) * (size_t)(n - i));
        silu_mul(gt, ut, 8);
        memcpy(g + i, gt, sizeof(float) * (size_t)(n - i));
    }
}

SK_AVX2 static float exp_shift_sum(float *x, int n, float shift) {
    int i = 0;
    __m256 acc = _mm256_setzero_ps();
    const __m256 sh = _mm256_set1_ps(shift);
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (i < n) {
        float t[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(t), sh));
        _mm256_storeu_ps(t, e);
        memcpy(x + i, t, sizeof(float) * (size_t)(n - i));
        acc = _mm256_add_ps(acc, e);
    }
    return sk_hsum8(acc);
}


static const sk_kernel_table avx2_table = {
    "avx2", dot_f32, dot_f16, dot_int8, dot_int4, dot_int4_sym, quantize_act, gemv, gemv_int4_x8, gemv_int8_x8, silu_mul, exp_shift_sum,
};

const sk_kernel_table *sk_kernels_avx2(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return &avx2_table;
    return NULL;
}
#else
const sk_kernel_table *sk_kernels_avx2(void) { return NULL; }
#endif
