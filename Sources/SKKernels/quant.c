// SKM block quantization (Formats/SKM.md, "How SinkKit quantizes"). The scalar path is the spec
// one block at a time, in its order of operations: every candidate of the searched types (int4,
// int4-sym) is fitted and its error E summed. The SIMD paths (AVX2: 4 blocks at once, one per f64
// lane; AVX-512: 8) write the same bytes with less work (quant_lanes.h): each lane does the
// scalar path's operations in the same order wherever a result decides a byte, but the literal E
// is summed only for the candidates that can still be the first of the least E (the others are
// ruled out by an estimate with a proven rounding bound, or by having the previous candidate's
// codes). Sums that are exact in f64 (Σ L, Σ L², Σ c² of small integer codes) may be taken in any
// order; Σ x is the same for every candidate and taken once.
#include "sk_kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// No contraction into fused multiply-adds: the spec's arithmetic rounds after every operation.
// (quant_lanes.h calls FMA explicitly only where the product is exact in f64: an f32 times a small
// integer code, or a code squared, so a·b + c rounds once either way.)
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

enum { MAX_GROUP = 256 };

uint16_t sk_f64_to_f16(double v) {
    uint64_t b;
    memcpy(&b, &v, 8);
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000);
    int e = (int)((b >> 52) & 0x7ff);
    uint64_t mant = b & 0xFFFFFFFFFFFFFull;
    if (e == 0x7ff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (e == 0) return sign;                       // f64 subnormals are far below half's range
    int ue = e - 1023;
    if (ue > 15) return (uint16_t)(sign | 0x7c00);
    int shift = ue >= -14 ? 42 : 42 + (-14 - ue); // half subnormals: fewer significant bits
    if (shift > 63) return sign;
    uint64_t full = mant | (1ull << 52);
    uint64_t q = full >> shift, rem = full & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;   // to nearest, ties to even
    // A carry out of the significand moves into the exponent (up to infinity) by itself.
    if (ue >= -14) return (uint16_t)(sign | ((((uint32_t)(ue + 15)) << 10) + (uint32_t)(q - 1024)));
    return (uint16_t)(sign | q);
}

// Round half to even (the default rounding mode): adding and subtracting 1.5·2⁵² rounds any
// |v| < 2⁵¹; larger values are already integers.
static inline double rint_even(double v) {
    const double magic = 6755399441055744.0;
    return fabs(v) < 2251799813685248.0 ? (v + magic) - magic : v;
}
static inline double clampd(double v, double lo, double hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

// Index of the first non-finite value among n, or -1.
int64_t sk_first_nonfinite(const float *x, size_t n) {
    const uint32_t *u = (const uint32_t *)x;
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t i1 = i0 + 256 < n ? i0 + 256 : n;
        uint32_t bad = 0;
        for (size_t i = i0; i < i1; i++) bad |= (uint32_t)((u[i] & 0x7f800000u) == 0x7f800000u);
        if (bad)
            for (size_t i = i0; i < i1; i++)
                if ((u[i] & 0x7f800000u) == 0x7f800000u) return (int64_t)i;
    }
    return -1;
}

static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

// ---- The final step, shared by both paths: f16 scale (and minimum), codes, round-trip error.
// The decoded value is f32(d)·f32(q) (+ f32(m)), as SKCore's Dequantize computes it.

static inline void encode_int8(const float *x, int g, uint8_t *out, double *sums) {
    float amax = 0;
    for (int j = 0; j < g; j++) { float a = fabsf(x[j]); amax = a > amax ? a : amax; }
    uint16_t h = sk_f64_to_f16((double)amax / 127);
    put16(out, h);
    float df = sk_f16_to_f32(h);
    double dd = df;
    int8_t *q = (int8_t *)(out + 2);
    double sse = 0, ssq = 0;
    for (int j = 0; j < g; j++) {
        double qj = dd == 0 ? 0 : clampd(rint_even((double)x[j] / dd), -127, 127);
        q[j] = (int8_t)qj;
        double r = (double)(df * (float)qj) - (double)x[j];
        sse += r * r;
        ssq += (double)x[j] * (double)x[j];
    }
    sums[0] += sse;
    sums[1] += ssq;
}

static inline void encode_int4(const float *x, int g, double d, double m, uint8_t *out, double *sums) {
    uint16_t hd = sk_f64_to_f16(d), hm = sk_f64_to_f16(m);
    put16(out, hd);
    put16(out + 2, hm);
    float df = sk_f16_to_f32(hd), mf = sk_f16_to_f32(hm);
    double dd = df, mm = mf;
    uint8_t q[MAX_GROUP];
    double sse = 0, ssq = 0;
    for (int j = 0; j < g; j++) {
        double qj = dd == 0 ? 0 : clampd(rint_even(((double)x[j] - mm) / dd), 0, 15);
        q[j] = (uint8_t)qj;
        double r = (double)(df * (float)qj + mf) - (double)x[j];
        sse += r * r;
        ssq += (double)x[j] * (double)x[j];
    }
    for (int j = 0; j < g / 2; j++) out[4 + j] = (uint8_t)(q[j] | (q[j + g / 2] << 4));
    sums[0] += sse;
    sums[1] += ssq;
}

static inline void encode_int4_sym(const float *x, int g, double d, uint8_t *out, double *sums) {
    uint16_t hd = sk_f64_to_f16(d);
    put16(out, hd);
    float df = sk_f16_to_f32(hd);
    double dd = df;
    uint8_t q[MAX_GROUP];
    double sse = 0, ssq = 0;
    for (int j = 0; j < g; j++) {
        double cj = dd == 0 ? 0 : clampd(rint_even((double)x[j] / dd), -8, 7);
        q[j] = (uint8_t)(cj + 8);
        double r = (double)(df * (float)cj) - (double)x[j];
        sse += r * r;
        ssq += (double)x[j] * (double)x[j];
    }
    for (int j = 0; j < g / 2; j++) out[2 + j] = (uint8_t)(q[j] | (q[j + g / 2] << 4));
    sums[0] += sse;
    sums[1] += ssq;
}

// ---- Scalar path: the searches of Formats/SKM.md, one block.

static int fit_asym(const double *x, const double *L, int g, double *d, double *m) {
    double A = 0, B = 0, X = 0, Y = 0;
    for (int j = 0; j < g; j++) { A += L[j]; B += L[j] * L[j]; X += x[j]; Y += x[j] * L[j]; }
    double n = g, D = n * B - A * A;
    if (!(D > 0)) return 0;
    double dk = (n * Y - A * X) / D, mk = (B * X - A * Y) / D;
    if (!(dk > 0)) return 0;
    *d = dk;
    *m = mk;
    return 1;
}

static double err_asym(const double *x, const double *L, int g, double d, double m) {
    double e = 0;
    for (int j = 0; j < g; j++) { double r = d * L[j] + m - x[j]; e += r * r; }
    return e;
}

static void search_int4(const double *x, int g, double *dout, double *mout) {
    double lo = x[0], hi = x[0];
    for (int j = 1; j < g; j++) { lo = x[j] < lo ? x[j] : lo; hi = x[j] > hi ? x[j] : hi; }
    double d = 0, m = lo;
    if (hi != lo) {
        double L[MAX_GROUP];
        d = (hi - lo) / 15;
        for (int j = 0; j < g; j++) L[j] = clampd(rint_even((x[j] - lo) / d), 0, 15);
        double best = err_asym(x, L, g, d, m), range = hi - lo;
        // No candidate can beat an exact fit (a strictly smaller error wins), so a block already
        // on a 4-bit grid skips the search and the refinement: the same bytes, less work.
        for (int anchor = 0; anchor < (best == 0 ? 0 : 2); anchor++) {
            for (int k = 0; k <= 20; k++) {
                double s = (15 + 0.1 * (double)(k - 10)) / range, dk, mk;
                if (anchor == 0) for (int j = 0; j < g; j++) L[j] = clampd(rint_even(s * (x[j] - lo)), 0, 15);
                else for (int j = 0; j < g; j++) L[j] = clampd(15 - rint_even(s * (hi - x[j])), 0, 15);
                if (!fit_asym(x, L, g, &dk, &mk)) continue;
                double e = err_asym(x, L, g, dk, mk);
                if (e < best) { best = e; d = dk; m = mk; }
            }
        }
        for (int r = 0; r < (best == 0 ? 0 : 2); r++) {
            double dr, mr;
            for (int j = 0; j < g; j++) L[j] = clampd(rint_even((x[j] - m) / d), 0, 15);
            if (!fit_asym(x, L, g, &dr, &mr)) break;
            double e = err_asym(x, L, g, dr, mr);
            if (e < best) { best = e; d = dr; m = mr; } else break;
        }
    }
    *dout = d;
    *mout = m;
}

// Σ x·c / Σ c² into *dk (0 when Σ c² = 0) and the error E = Σ (dk·c − x)².
static int fit_sym(const double *x, const double *c, int g, double *dk, double *e) {
    double xc = 0, cc = 0;
    for (int j = 0; j < g; j++) { xc += x[j] * c[j]; cc += c[j] * c[j]; }
    if (!(cc > 0)) return 0;
    *dk = xc / cc;
    *e = 0;
    for (int j = 0; j < g; j++) { double r = *dk * c[j] - x[j]; *e += r * r; }
    return 1;
}

static double search_int4_sym(const double *x, int g) {
    double v = 0;
    for (int j = 0; j < g; j++) if (fabs(x[j]) > fabs(v)) v = x[j];
    if (v == 0) return 0;
    double c[MAX_GROUP], d = v / -8, best = 0, dk, e;
    for (int j = 0; j < g; j++) c[j] = clampd(rint_even(x[j] / d), -8, 7);
    for (int j = 0; j < g; j++) { double r = d * c[j] - x[j]; best += r * r; }
    for (int k = 0; k <= 20; k++) {
        double s = -(8 + 0.1 * (double)(k - 10)) / v;
        for (int j = 0; j < g; j++) c[j] = clampd(rint_even(s * x[j]), -8, 7);
        if (fit_sym(x, c, g, &dk, &e) && e < best) { best = e; d = dk; }
    }
    for (int r = 0; r < 2; r++) {
        for (int j = 0; j < g; j++) c[j] = clampd(rint_even(x[j] / d), -8, 7);
        if (!fit_sym(x, c, g, &dk, &e) || !(e < best)) break;
        best = e;
        d = dk;
    }
    return d;
}

static int64_t quantize_scalar(int type, const float *x, size_t nblocks, int group, uint8_t *out, double *sums) {
    size_t bb = type == SK_INT8 ? 2 + (size_t)group : (type == SK_INT4 ? 4 : 2) + (size_t)group / 2;
    double xs[MAX_GROUP] = {0};
    for (size_t b = 0; b < nblocks; b++) {
        const float *xb = x + b * group;
        uint8_t *ob = out + b * bb;
        if (type == SK_INT8) { encode_int8(xb, group, ob, sums); continue; }
        for (int j = 0; j < group; j++) xs[j] = xb[j];
        if (type == SK_INT4) {
            double d, m;
            search_int4(xs, group, &d, &m);
            encode_int4(xb, group, d, m, ob, sums);
        } else {
            encode_int4_sym(xb, group, search_int4_sym(xs, group), ob, sums);
        }
    }
    return -1;
}

static int valid_args(int type, size_t nblocks, int group) {
    (void)nblocks;
    if (type != SK_INT8 && type != SK_INT4 && type != SK_INT4_SYM) return 0;
    if (group < 2 || group > MAX_GROUP || group % 2 != 0) return 0;
    return type != SK_INT8 || group == 32;
}

int64_t sk_quantize_blocks_scalar(int type, const float *x, size_t nblocks, int group, uint8_t *out, double sums[2]) {
    if (type == SK_INT5_SYM) return sk_quantize_blocks_weighted(type, x, nblocks, group, NULL, (size_t)group, out, sums);
    if (!valid_args(type, nblocks, group)) return -2;
    int64_t bad = sk_first_nonfinite(x, nblocks * (size_t)group);
    if (bad >= 0) return bad;
    return quantize_scalar(type, x, nblocks, group, out, sums);
}

// ---- SIMD paths: the searches on 4 (AVX2), 8 (AVX-512) or 2 (NEON) blocks at once, one per f64
// lane (quant_lanes.h); int8 needs no search and runs one block at a time on AVX2 (scalar on NEON).
#if defined(__x86_64__) || defined(_M_X64) || defined(__aarch64__)
enum { NC = 3 };  // int4 candidates evaluated side by side (int4-sym: NC1, per instruction set)

// The searches' second phase (quant_lanes.h) works lane by lane through bit sets of candidate
// indices: the next one of a lane (lowest first, removed from the set), or -1 when none is left.
static inline int next_candidate(uint64_t *set) {
    if (!*set) return -1;
    int c = __builtin_ctzll(*set);
    *set &= *set - 1;
    return c;
}
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define SK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SK_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512dq,avx512vl")))
#define h2f _cvtsh_ss

// X[j] = element j of the 4 blocks of g values at xb: 4×4 transposes.
SK_AVX2 static inline void load_lanes_avx2(const float *xb, int g, __m256d *X) {
    int j = 0;
    for (; j + 4 <= g; j += 4) {
        __m128 r0 = _mm_loadu_ps(xb + j), r1 = _mm_loadu_ps(xb + g + j), r2 = _mm_loadu_ps(xb + 2 * g + j), r3 = _mm_loadu_ps(xb + 3 * g + j);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        X[j] = _mm256_cvtps_pd(r0);
        X[j + 1] = _mm256_cvtps_pd(r1);
        X[j + 2] = _mm256_cvtps_pd(r2);
        X[j + 3] = _mm256_cvtps_pd(r3);
    }
    for (; j < g; j++) X[j] = _mm256_set_pd(xb[3 * g + j], xb[2 * g + j], xb[g + j], xb[j]);
}

// AVX2, 4 lanes.
#define L 4
#define V __m256d
#define M __m256d
#define F __m128
#define T SK_AVX2
#define FN(name) name##_avx2
#define vset1 _mm256_set1_pd
#define vzero _mm256_setzero_pd
#define vadd _mm256_add_pd
#define vsub _mm256_sub_pd
#define vmul _mm256_mul_pd
#define vdiv _mm256_div_pd
#define vmin _mm256_min_pd
#define vmax _mm256_max_pd
#define vround(v) _mm256_round_pd((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vabs(v) _mm256_andnot_pd(_mm256_set1_pd(-0.0), (v))
#define vload _mm256_loadu_pd
#define vstore _mm256_storeu_pd
#define mcmp _mm256_cmp_pd
#define mand _mm256_and_pd
#define mor _mm256_or_pd
#define mandnot _mm256_andnot_pd
#define mbits _mm256_movemask_pd
#define vfma _mm256_fmadd_pd
#define NC1 3
#define mnz(m) (_mm256_movemask_pd(m) != 0)
#define vsel(m, yes, no) _mm256_blendv_pd((no), (yes), (m))
#define vkeep(m, v) _mm256_and_pd((v), (m))
#define fload _mm_loadu_ps
#define v2f _mm256_cvtpd_ps
#define f2v _mm256_cvtps_pd
#define v2i _mm256_cvtpd_epi32
#define istore(p, v) _mm_storeu_si128((__m128i *)(p), (v))
#include "quant_lanes.h"
#undef L
#undef V
#undef M
#undef F
#undef T
#undef FN
#undef vset1
#undef vzero
#undef vadd
#undef vsub
#undef vmul
#undef vdiv
#undef vmin
#undef vmax
#undef vround
#undef vabs
#undef vload
#undef vstore
#undef mcmp
#undef mand
#undef mor
#undef mandnot
#undef mbits
#undef vfma
#undef NC1
#undef mnz
#undef vsel
#undef vkeep
#undef fload
#undef v2f
#undef f2v
#undef v2i
#undef istore

// X[j] = element j of the 8 blocks of g values at xb: 8×8 transposes.
SK_AVX512 static inline void load_lanes_avx512(const float *xb, int g, __m512d *X) {
    int j = 0;
    for (; j + 8 <= g; j += 8) {
        __m256 r[8], t[8], u[8];
        for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_ps(xb + l * g + j);
        for (int l = 0; l < 8; l += 2) {
            t[l] = _mm256_unpacklo_ps(r[l], r[l + 1]);        // r_l[0] r_l+1[0] r_l[1] r_l+1[1] | same for 4, 5
            t[l + 1] = _mm256_unpackhi_ps(r[l], r[l + 1]);    // elements 2, 3 | 6, 7
        }
        for (int h = 0; h < 8; h += 4) {                       // rows h … h + 3
            u[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);         // element 0 | 4
            u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);     // 1 | 5
            u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44); // 2 | 6
            u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE); // 3 | 7
        }
        for (int e = 0; e < 4; e++) {
            X[j + e] = _mm512_cvtps_pd(_mm256_permute2f128_ps(u[e], u[e + 4], 0x20));
            X[j + e + 4] = _mm512_cvtps_pd(_mm256_permute2f128_ps(u[e], u[e + 4], 0x31));
        }
    }
    for (; j < g; j++) {
        double lane[8];
        for (int l = 0; l < 8; l++) lane[l] = xb[l * g + j];
        X[j] = _mm512_loadu_pd(lane);
    }
}

// AVX-512, 8 lanes.
#define L 8
#define V __m512d
#define M __mmask8
#define F __m256
#define T SK_AVX512
#define FN(name) name##_avx512
#define vset1 _mm512_set1_pd
#define vzero _mm512_setzero_pd
#define vadd _mm512_add_pd
#define vsub _mm512_sub_pd
#define vmul _mm512_mul_pd
#define vdiv _mm512_div_pd
#define vmin _mm512_min_pd
#define vmax _mm512_max_pd
#define vround(v) _mm512_roundscale_pd((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vabs(v) _mm512_abs_pd(v)
#define vload _mm512_loadu_pd
#define vstore _mm512_storeu_pd
#define mcmp _mm512_cmp_pd_mask
#define mand(a, b) ((M)((a) & (b)))
#define mor(a, b) ((M)((a) | (b)))
#define mandnot(a, b) ((M)(~(a) & (b)))
#define mbits(m) ((int)(m))
#define vfma _mm512_fmadd_pd
#define NC1 7
#define mnz(m) ((m) != 0)
#define vsel(m, yes, no) _mm512_mask_blend_pd((m), (no), (yes))
#define vkeep(m, v) _mm512_maskz_mov_pd((m), (v))
#define fload _mm256_loadu_ps
#define v2f _mm512_cvtpd_ps
#define f2v _mm512_cvtps_pd
#define v2i _mm512_cvtpd_epi32
#define istore(p, v) _mm256_storeu_si256((__m256i *)(p), (v))
#include "quant_lanes.h"

SK_AVX2 static void encode_int8_avx2(const float *x, uint8_t *out, double *sums) {
    __m256 amax = _mm256_setzero_ps();
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int j = 0; j < 32; j += 8) amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
    __m128 a4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    a4 = _mm_max_ps(a4, _mm_movehl_ps(a4, a4));
    a4 = _mm_max_ss(a4, _mm_movehdup_ps(a4));
    uint16_t h = sk_f64_to_f16((double)_mm_cvtss_f32(a4) / 127);
    put16(out, h);
    float df = _cvtsh_ss(h);
    __m256d dd = _mm256_set1_pd(df), sse = _mm256_setzero_pd(), ssq = sse;
    __m128 d4 = _mm_set1_ps(df);
    __m128i q32[8];
    for (int j = 0; j < 32; j += 4) {
        __m256d xd = _mm256_cvtps_pd(_mm_loadu_ps(x + j));
        __m256d q = df == 0 ? _mm256_setzero_pd() : vclamp_avx2(_mm256_round_pd(_mm256_div_pd(xd, dd), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), _mm256_set1_pd(-127), _mm256_set1_pd(127));
        q32[j / 4] = _mm256_cvtpd_epi32(q);
        __m256d r = _mm256_sub_pd(_mm256_cvtps_pd(_mm_mul_ps(d4, _mm256_cvtpd_ps(q))), xd);
        sse = _mm256_add_pd(sse, _mm256_mul_pd(r, r));
        ssq = _mm256_add_pd(ssq, _mm256_mul_pd(xd, xd));
    }
    for (int i = 0; i < 2; i++) {
        __m128i a = _mm_packs_epi32(q32[4 * i], q32[4 * i + 1]), b = _mm_packs_epi32(q32[4 * i + 2], q32[4 * i + 3]);
        _mm_storeu_si128((__m128i *)(out + 2 + 16 * i), _mm_packs_epi16(a, b));
    }
    double s[4], t[4];
    _mm256_storeu_pd(s, sse);
    _mm256_storeu_pd(t, ssq);
    sums[0] += (s[0] + s[1]) + (s[2] + s[3]);
    sums[1] += (t[0] + t[1]) + (t[2] + t[3]);
}

SK_AVX2 static void quantize_int8_avx2(const float *x, size_t nblocks, uint8_t *out, double *sums) {
    for (size_t b = 0; b < nblocks; b++) encode_int8_avx2(x + b * 32, out + b * 34, sums);
}

static int has_avx2(void) { return sk_kernels_avx2() != NULL; }
static int has_avx512(void) {
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

int64_t sk_quantize_blocks_simd(int width, int type, const float *x, size_t nblocks, int group, uint8_t *out, double sums[2]) {
    if (type == SK_INT5_SYM) return sk_quantize_blocks_scalar(type, x, nblocks, group, out, sums);
    if (!valid_args(type, nblocks, group)) return -2;
    if ((width == 8 && !has_avx512()) || (width != 8 && !has_avx2())) return sk_quantize_blocks_scalar(type, x, nblocks, group, out, sums);
    int64_t bad = sk_first_nonfinite(x, nblocks * (size_t)group);
    if (bad >= 0) return bad;
    if (type == SK_INT8) { quantize_int8_avx2(x, nblocks, out, sums); return -1; }
    return width == 8 ? quantize_lanes_avx512(type, x, nblocks, group, out, sums) : quantize_lanes_avx2(type, x, nblocks, group, out, sums);
}
int sk_quantize_simd_width(void) { return has_avx512() ? 8 : has_avx2() ? 4 : 0; }
#elif defined(__aarch64__)
#include <arm_neon.h>

// X[j] = element j of the 2 blocks of g values at xb.
static inline void load_lanes_neon(const float *xb, int g, float64x2_t *X) {
    int j = 0;
    for (; j + 4 <= g; j += 4) {
        float32x4_t r0 = vld1q_f32(xb + j), r1 = vld1q_f32(xb + g + j);
        float32x4_t lo = vzip1q_f32(r0, r1), hi = vzip2q_f32(r0, r1);   // r0[0] r1[0] r0[1] r1[1] | 2, 3
        X[j] = vcvt_f64_f32(vget_low_f32(lo));
        X[j + 1] = vcvt_high_f64_f32(lo);
        X[j + 2] = vcvt_f64_f32(vget_low_f32(hi));
        X[j + 3] = vcvt_high_f64_f32(hi);
    }
    for (; j < g; j++) {
        double lane[2] = {xb[j], xb[g + j]};
        X[j] = vld1q_f64(lane);
    }
}

// NEON, 2 lanes. min / max / comparisons spelled as the x86 instructions behave (MINPD returns
// its second operand unless the first is less; the _OQ predicates are false on NaN), so every
// lane decides as the AVX2 and scalar paths do.
static inline float64x2_t vmin_x86(float64x2_t a, float64x2_t b) { return vbslq_f64(vcltq_f64(a, b), a, b); }
static inline float64x2_t vmax_x86(float64x2_t a, float64x2_t b) { return vbslq_f64(vcgtq_f64(a, b), a, b); }
#define L 2
#define V float64x2_t
#define M uint64x2_t
#define F float32x2_t
#define T
#define FN(name) name##_neon
#define vset1 vdupq_n_f64
#define vzero() vdupq_n_f64(0.0)
#define vadd vaddq_f64
#define vsub vsubq_f64
#define vmul vmulq_f64
#define vdiv vdivq_f64
#define vmin vmin_x86
#define vmax vmax_x86
#define vround vrndnq_f64
#define vabs vabsq_f64
#define vload vld1q_f64
#define vstore vst1q_f64
#define mcmp(a, b, pred) mcmp##pred(a, b)
#define mcmp_CMP_LE_OQ vcleq_f64
#define mcmp_CMP_LT_OQ vcltq_f64
#define mcmp_CMP_GT_OQ vcgtq_f64
#define mcmp_CMP_EQ_OQ vceqq_f64
#define mcmp_CMP_NEQ_OQ(a, b) vorrq_u64(vcltq_f64((a), (b)), vcgtq_f64((a), (b)))
#define mand vandq_u64
#define mor vorrq_u64
#define mandnot(a, b) vbicq_u64((b), (a))
#define mbits(m) ((int)((vgetq_lane_u64((m), 0) & 1) | ((vgetq_lane_u64((m), 1) & 1) << 1)))
#define vfma(a, b, c) vfmaq_f64((c), (a), (b))
#define NC1 7
#define mnz(m) ((vgetq_lane_u64((m), 0) | vgetq_lane_u64((m), 1)) != 0)
#define vsel(m, yes, no) vbslq_f64((m), (yes), (no))
#define vkeep(m, v) vreinterpretq_f64_u64(vandq_u64((m), vreinterpretq_u64_f64(v)))
#define fload vld1_f32
#define v2f vcvt_f32_f64
#define f2v vcvt_f64_f32
#define v2i(v) vmovn_s64(vcvtq_s64_f64(v))
#define istore(p, v) vst1_s32((p), (v))
#define h2f sk_f16_to_f32
#include "quant_lanes.h"

int64_t sk_quantize_blocks_simd(int width, int type, const float *x, size_t nblocks, int group, uint8_t *out, double sums[2]) {
    if (width != 2 || type == SK_INT8 || type == SK_INT5_SYM) return sk_quantize_blocks_scalar(type, x, nblocks, group, out, sums);
    if (!valid_args(type, nblocks, group)) return -2;
    int64_t bad = sk_first_nonfinite(x, nblocks * (size_t)group);
    if (bad >= 0) return bad;
    return quantize_lanes_neon(type, x, nblocks, group, out, sums);
}
int sk_quantize_simd_width(void) { return 2; }
#else
int64_t sk_quantize_blocks_simd(int width, int type, const float *x, size_t nblocks, int group, uint8_t *out, double sums[2]) {
    (void)width;
    return sk_quantize_blocks_scalar(type, x, nblocks, group, out, sums);
}
int sk_quantize_simd_width(void) { return 0; }
#endif

int64_t sk_quantize_blocks(int type, const float *x, size_t nblocks, int group, uint8_t *out, double sums[2]) {
    static int width = -1;   // 0 scalar, 2 NEON, 4 AVX2, 8 AVX-512
    if (width < 0) {
        int w = sk_quantize_simd_width(), f = sk_kernels_forced();
        if (f == SK_FORCE_SCALAR || (f == SK_FORCE_NEON && w != 2)) w = 0;
        else if (f == SK_FORCE_AVX2 && w) w = 4;
        width = w;
    }
    return width ? sk_quantize_blocks_simd(width, type, x, nblocks, group, out, sums)
                 : sk_quantize_blocks_scalar(type, x, nblocks, group, out, sums);
}
