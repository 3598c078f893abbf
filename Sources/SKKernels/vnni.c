// Prompt processing over x8-layout int4 / int4-sym weights (pack.c) with AVX-512 VNNI
// (vpdpbusd on 256-bit registers): for each group of 8 rows the codes of all blocks are unpacked
// once into a small buffer (L1-resident), then every activation row (token) is multiplied with
// them: per block, 8 dpbusd with broadcast 4-byte activation groups leave one int32 per row, and
// the 8 rows' scales are one vector. Only built for and only chosen on CPUs with AVX512-VNNI
// and AVX512-VL; elsewhere prompts decode x8 tiles to f32 for sgemm.
#include "sk_kernels.h"
#include "x8_codes.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define SK_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))

SK_VNNI static void gemm_int4_x8(int asym, const void *packed, int rows, const sk_act_q8 *a, int tokens, int n, float *out, int ldo) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32, qoff = asym ? 32 : 16;
    const size_t bb = (size_t)qoff + 128;
    __m256i *codes = aligned_alloc(64, (size_t)nb * 8 * sizeof(__m256i));
    float *scales = aligned_alloc(64, (size_t)nb * 16 * sizeof(float));
    if (!codes || !scales) { free(codes); free(scales); return; }
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8, w += bb * nb) {
        sk_x8_int4_group_codes(asym, w, nb, codes, scales);
        // four tokens at a time: four independent dpbusd chains (its latency would otherwise
        // bound the loop) sharing each code vector (eight at a time measured slower: pp512
        // int4-sym 764-826 vs 911-937 tok/s at 1 thread)
        int t = 0;
        for (; t + 4 <= tokens; t += 4) {
            const sk_act_q8 *a0 = a + (size_t)t * nb, *a1 = a0 + nb, *a2 = a1 + nb, *a3 = a2 + nb;
            __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
            for (int b = 0; b < nb; b++) {
                const int32_t *g0 = (const int32_t *)a0[b].qs, *g1 = (const int32_t *)a1[b].qs;
                const int32_t *g2 = (const int32_t *)a2[b].qs, *g3 = (const int32_t *)a3[b].qs;
                __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
                for (int p = 0; p < 8; p++) {
                    __m256i c = codes[8 * b + p];
                    s0 = _mm256_dpbusd_epi32(s0, c, _mm256_set1_epi32(g0[p]));
                    s1 = _mm256_dpbusd_epi32(s1, c, _mm256_set1_epi32(g1[p]));
                    s2 = _mm256_dpbusd_epi32(s2, c, _mm256_set1_epi32(g2[p]));
                    s3 = _mm256_dpbusd_epi32(s3, c, _mm256_set1_epi32(g3[p]));
                }
                __m256 d = _mm256_load_ps(scales + 16 * b);
                if (!asym) {
                    s0 = _mm256_sub_epi32(s0, _mm256_set1_epi32(8 * a0[b].isum));
                    s1 = _mm256_sub_epi32(s1, _mm256_set1_epi32(8 * a1[b].isum));
                    s2 = _mm256_sub_epi32(s2, _mm256_set1_epi32(8 * a2[b].isum));
                    s3 = _mm256_sub_epi32(s3, _mm256_set1_epi32(8 * a3[b].isum));
                } else {
                    __m256 m = _mm256_load_ps(scales + 16 * b + 8);
                    acc0 = _mm256_fmadd_ps(m, _mm256_set1_ps(a0[b].d * (float)a0[b].isum), acc0);
                    acc1 = _mm256_fmadd_ps(m, _mm256_set1_ps(a1[b].d * (float)a1[b].isum), acc1);
                    acc2 = _mm256_fmadd_ps(m, _mm256_set1_ps(a2[b].d * (float)a2[b].isum), acc2);
                    acc3 = _mm256_fmadd_ps(m, _mm256_set1_ps(a3[b].d * (float)a3[b].isum), acc3);
                }
                acc0 = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a0[b].d)), _mm256_cvtepi32_ps(s0), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a1[b].d)), _mm256_cvtepi32_ps(s1), acc1);
                acc2 = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a2[b].d)), _mm256_cvtepi32_ps(s2), acc2);
                acc3 = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a3[b].d)), _mm256_cvtepi32_ps(s3), acc3);
            }
            _mm256_storeu_ps(out + (size_t)t * ldo + r0, acc0);
            _mm256_storeu_ps(out + (size_t)(t + 1) * ldo + r0, acc1);
            _mm256_storeu_ps(out + (size_t)(t + 2) * ldo + r0, acc2);
            _mm256_storeu_ps(out + (size_t)(t + 3) * ldo + r0, acc3);
        }
        for (; t < tokens; t++) {
            const sk_act_q8 *at = a + (size_t)t * nb;
            __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
            for (int b = 0; b < nb; b++) {
                const int32_t *g = (const int32_t *)at[b].qs;
                __m256i s = _mm256_setzero_si256();
                for (int p = 0; p < 8; p++) s = _mm256_dpbusd_epi32(s, codes[8 * b + p], _mm256_set1_epi32(g[p]));
                if (!asym) s = _mm256_sub_epi32(s, _mm256_set1_epi32(8 * at[b].isum));
                __m256 ad = _mm256_set1_ps(at[b].d);
                acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_load_ps(scales + 16 * b), ad), _mm256_cvtepi32_ps(s), acc);
                if (asym) accm = _mm256_fmadd_ps(_mm256_load_ps(scales + 16 * b + 8), _mm256_set1_ps(at[b].d * (float)at[b].isum), accm);
            }
            _mm256_storeu_ps(out + (size_t)t * ldo + r0, _mm256_add_ps(acc, accm));
        }
    }
    free(codes);
    free(scales);
}

// int8: dpbusd multiplies unsigned × signed, so the activations go in as a + 128 (xor 0x80) and
// 128 · Σw per row and block (computed once per row group) comes off again.
SK_VNNI static void gemm_int8_x8(const void *packed, int rows, const sk_act_q8 *a, int tokens, int n, float *out, int ldo) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32;
    __m256i *corr = aligned_alloc(64, (size_t)nb * sizeof(__m256i));
    float *scales = aligned_alloc(64, (size_t)nb * 8 * sizeof(float));
    if (!corr || !scales) { free(corr); free(scales); return; }
    const __m256i one8 = _mm256_set1_epi8(1), flip = _mm256_set1_epi32((int)0x80808080u);
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8, w += SK_X8_INT8_BLOCK_BYTES * (size_t)nb) {
        for (int b = 0; b < nb; b++) {
            __m256i sum = _mm256_setzero_si256();
            for (int p = 0; p < 8; p++) sum = _mm256_dpbusd_epi32(sum, one8, _mm256_loadu_si256((const __m256i *)(w + SK_X8_INT8_BLOCK_BYTES * b + 16 + 32 * p)));
            corr[b] = _mm256_slli_epi32(sum, 7);
            _mm256_store_ps(scales + 8 * b, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + SK_X8_INT8_BLOCK_BYTES * b))));
        }
        int t = 0;
        for (; t + 4 <= tokens; t += 4) {
            const sk_act_q8 *a0 = a + (size_t)t * nb, *a1 = a0 + nb, *a2 = a1 + nb, *a3 = a2 + nb;
            __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
            for (int b = 0; b < nb; b++) {
                const int32_t *g0 = (const int32_t *)a0[b].qs, *g1 = (const int32_t *)a1[b].qs;
                const int32_t *g2 = (const int32_t *)a2[b].qs, *g3 = (const int32_t *)a3[b].qs;
                __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
                for (int p = 0; p < 8; p++) {
                    __m256i c = _mm256_loadu_si256((const __m256i *)(w + SK_X8_INT8_BLOCK_BYTES * b + 16 + 32 * p));
                    s0 = _mm256_dpbusd_epi32(s0, _mm256_xor_si256(_mm256_set1_epi32(g0[p]), flip), c);
                    s1 = _mm256_dpbusd_epi32(s1, _mm256_xor_si256(_mm256_set1_epi32(g1[p]), flip), c);
                    s2 = _mm256_dpbusd_epi32(s2, _mm256_xor_si256(_mm256_set1_epi32(g2[p]), flip), c);
                    s3 = _mm256_dpbusd_epi32(s3, _mm256_xor_si256(_mm256_set1_epi32(g3[p]), flip), c);
                }
                __m256 d = _mm256_load_ps(scales + 8 * b);
                acc0 = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a0[b].d)), _mm256_cvtepi32_ps(_mm256_sub_epi32(s0, corr[b])), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a1[b].d)), _mm256_cvtepi32_ps(_mm256_sub_epi32(s1, corr[b])), acc1);
                acc2 = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a2[b].d)), _mm256_cvtepi32_ps(_mm256_sub_epi32(s2, corr[b])), acc2);
                acc3 = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a3[b].d)), _mm256_cvtepi32_ps(_mm256_sub_epi32(s3, corr[b])), acc3);
            }
            _mm256_storeu_ps(out + (size_t)t * ldo + r0, acc0);
            _mm256_storeu_ps(out + (size_t)(t + 1) * ldo + r0, acc1);
            _mm256_storeu_ps(out + (size_t)(t + 2) * ldo + r0, acc2);
            _mm256_storeu_ps(out + (size_t)(t + 3) * ldo + r0, acc3);
        }
        for (; t < tokens; t++) {
            const sk_act_q8 *at = a + (size_t)t * nb;
            __m256 acc = _mm256_setzero_ps();
            for (int b = 0; b < nb; b++) {
                const int32_t *g = (const int32_t *)at[b].qs;
                __m256i s = _mm256_setzero_si256();
                for (int p = 0; p < 8; p++)
                    s = _mm256_dpbusd_epi32(s, _mm256_xor_si256(_mm256_set1_epi32(g[p]), flip), _mm256_loadu_si256((const __m256i *)(w + SK_X8_INT8_BLOCK_BYTES * b + 16 + 32 * p)));
                acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_load_ps(scales + 8 * b), _mm256_set1_ps(at[b].d)), _mm256_cvtepi32_ps(_mm256_sub_epi32(s, corr[b])), acc);
            }
            _mm256_storeu_ps(out + (size_t)t * ldo + r0, acc);
        }
    }
    free(corr);
    free(scales);
}

sk_gemm_int8_x8_fn sk_gemm_int8_x8_vnni(void) { return sk_gemm_int4_x8_vnni() ? gemm_int8_x8 : NULL; }

// Generation (one activation row) over x8 weights with vpdpbusd: int4 codes are already unsigned
// (8 dpbusd per block where AVX2 needs 8 maddubs, 8 int16 adds and a madd); int8 codes are made
// unsigned by flipping their sign bit (w + 128), and 128·Σx (the activation block's isum) is
// taken off. Two accumulators per block halve the dpbusd dependency chain.
SK_VNNI static void gemv_int4_x8_vnni(int asym, const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32, qoff = asym ? 32 : 16;
    const size_t bb = (size_t)qoff + 128;
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++, w += bb) {
            const uint8_t *q = w + qoff;
            const int32_t *g = (const int32_t *)a[b].qs;
            __m256i s0 = _mm256_setzero_si256(), s1 = s0;
            for (int p = 0; p < 4; p++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * p));
                s0 = _mm256_dpbusd_epi32(s0, _mm256_and_si256(v, low), _mm256_set1_epi32(g[p]));
                s1 = _mm256_dpbusd_epi32(s1, _mm256_and_si256(_mm256_srli_epi16(v, 4), low), _mm256_set1_epi32(g[4 + p]));
            }
            __m256i s = _mm256_add_epi32(s0, s1);
            if (!asym) s = _mm256_sub_epi32(s, _mm256_set1_epi32(8 * a[b].isum));
            __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w)), _mm256_set1_ps(a[b].d));
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
            if (asym) accm = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 16))), _mm256_set1_ps(a[b].d * (float)a[b].isum), accm);
        }
        _mm256_storeu_ps(out + r0, _mm256_add_ps(acc, accm));
    }
}

SK_VNNI static void gemv_int8_x8_vnni(const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++, w += SK_X8_INT8_BLOCK_BYTES) {
            const int32_t *g = (const int32_t *)a[b].qs;
            __m256i s0 = _mm256_setzero_si256(), s1 = s0;
            for (int p = 0; p < 8; p += 2) {
                s0 = _mm256_dpbusd_epi32(s0, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w + 16 + 32 * p)), flip), _mm256_set1_epi32(g[p]));
                s1 = _mm256_dpbusd_epi32(s1, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w + 16 + 32 * (p + 1))), flip), _mm256_set1_epi32(g[p + 1]));
            }
            __m256i s = _mm256_sub_epi32(_mm256_add_epi32(s0, s1), _mm256_set1_epi32(128 * a[b].isum));
            __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w)), _mm256_set1_ps(a[b].d));
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
        }
        _mm256_storeu_ps(out + r0, acc);
    }
}

/// The AVX2 table with the x8 generation kernels on VNNI (CPUs with AVX512-VNNI and AVX512-VL).
const sk_kernel_table *sk_kernels_avx2_vnni(void) {
    static sk_kernel_table table;
    static int made = 0;
    const sk_kernel_table *base = sk_kernels_avx2();
    if (!base || !sk_gemm_int4_x8_vnni()) return NULL;
    if (!made) {
        table = *base;
        table.name = "avx2+vnni";
        table.gemv_int4_x8 = gemv_int4_x8_vnni;
        table.gemv_int8_x8 = gemv_int8_x8_vnni;
        made = 1;
    }
    return &table;
}

sk_gemm_int4_x8_fn sk_gemm_int4_x8_vnni(void) {
    if (sk_kernels_avx2() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")) return gemm_int4_x8;
    return NULL;
}
#else
sk_gemm_int4_x8_fn sk_gemm_int4_x8_vnni(void) { return NULL; }
sk_gemm_int8_x8_fn sk_gemm_int8_x8_vnni(void) { return NULL; }
const sk_kernel_table *sk_kernels_avx2_vnni(void) { return NULL; }
#endif

// The prompt GEMMs: VNNI where the CPU has it (unless SK_NO_VNNI), else AVX2 (gemm_avx2.c);
// none on a forced scalar / NEON path (x8 tiles then go to sgemm).
static int gemm_path(void) {
    int f = sk_kernels_forced();
    if (f == SK_FORCE_SCALAR || f == SK_FORCE_NEON) return 0;
    if (!getenv("SK_NO_VNNI") && sk_gemm_int4_x8_vnni()) return 2;
    return sk_gemm_int4_x8_avx2() ? 1 : 0;
}

sk_gemm_int4_x8_fn sk_gemm_int4_x8_best(void) {
    int p = gemm_path();
    return p == 2 ? sk_gemm_int4_x8_vnni() : p == 1 ? sk_gemm_int4_x8_avx2() : NULL;
}

sk_gemm_int8_x8_fn sk_gemm_int8_x8_best(void) {
    int p = gemm_path();
    return p == 2 ? sk_gemm_int8_x8_vnni() : p == 1 ? sk_gemm_int8_x8_avx2() : NULL;
}
