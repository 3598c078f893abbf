// Prompt processing over x8-layout weights (pack.c) with AVX2 integer arithmetic, for CPUs
// without AVX512-VNNI: the same structure as vnni.c's GEMMs (per group of 8 rows the codes of
// all blocks are unpacked once into an L1-resident buffer, then every activation row is
// multiplied with them, four tokens at a time) with vpmaddubsw + vpmaddwd where VNNI has one
// vpdpbusd. int4: codes 0..15 are unsigned already, and the 16 products a 16-bit lane gathers
// per block stay below 2¹⁵ (16 · 15 · 127 = 30,480). int8: |w| (unsigned, ≤ 128) times the
// activations carrying w's sign, widened after every pair of products (2 · 128 · 127 = 32,512).
#include "sk_kernels.h"
#include "x8_codes.h"
#include <stdlib.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define SK_AVX2G __attribute__((target("avx2,fma,f16c")))

// Σ of one block for one token: codes c[0..7] (u8) × the broadcast 4-byte activation groups.
SK_AVX2G static inline __m256i block_int4(const __m256i *c, const int32_t *g) {
    __m256i s16 = _mm256_maddubs_epi16(c[0], _mm256_set1_epi32(g[0]));
    for (int p = 1; p < 8; p++) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(c[p], _mm256_set1_epi32(g[p])));
    return _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
}

SK_AVX2G static void gemm_int4_x8_avx2(int asym, const void *packed, int rows, const sk_act_q8 *a, int tokens, int n, float *out, int ldo) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32, qoff = asym ? 32 : 16;
    const size_t bb = (size_t)qoff + 128;
    __m256i *codes = aligned_alloc(64, (size_t)nb * 8 * sizeof(__m256i));
    float *scales = aligned_alloc(64, (size_t)nb * 16 * sizeof(float));
    if (!codes || !scales) { free(codes); free(scales); return; }
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8, w += bb * nb) {
        sk_x8_int4_group_codes(asym, w, nb, codes, scales);
        int t = 0;
        for (; t + 4 <= tokens; t += 4) {
            const sk_act_q8 *at[4] = {a + (size_t)t * nb, a + (size_t)(t + 1) * nb, a + (size_t)(t + 2) * nb, a + (size_t)(t + 3) * nb};
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int b = 0; b < nb; b++) {
                const __m256i *c = codes + 8 * b;
                __m256 d = _mm256_load_ps(scales + 16 * b);
                for (int k = 0; k < 4; k++) {
                    __m256i s = block_int4(c, (const int32_t *)at[k][b].qs);
                    if (!asym) s = _mm256_sub_epi32(s, _mm256_set1_epi32(8 * at[k][b].isum));
                    acc[k] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(at[k][b].d)), _mm256_cvtepi32_ps(s), acc[k]);
                    if (asym) acc[k] = _mm256_fmadd_ps(_mm256_load_ps(scales + 16 * b + 8), _mm256_set1_ps(at[k][b].d * (float)at[k][b].isum), acc[k]);
                }
            }
            for (int k = 0; k < 4; k++) _mm256_storeu_ps(out + (size_t)(t + k) * ldo + r0, acc[k]);
        }
        for (; t < tokens; t++) {
            const sk_act_q8 *at = a + (size_t)t * nb;
            __m256 acc = _mm256_setzero_ps();
            for (int b = 0; b < nb; b++) {
                __m256i s = block_int4(codes + 8 * b, (const int32_t *)at[b].qs);
                if (!asym) s = _mm256_sub_epi32(s, _mm256_set1_epi32(8 * at[b].isum));
                acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_load_ps(scales + 16 * b), _mm256_set1_ps(at[b].d)), _mm256_cvtepi32_ps(s), acc);
                if (asym) acc = _mm256_fmadd_ps(_mm256_load_ps(scales + 16 * b + 8), _mm256_set1_ps(at[b].d * (float)at[b].isum), acc);
            }
            _mm256_storeu_ps(out + (size_t)t * ldo + r0, acc);
        }
    }
    free(codes);
    free(scales);
}

// One int8 block for one token: |w| (mag) × the activation groups given w's signs (codes).
SK_AVX2G static inline __m256i block_int8(const __m256i *mag, const __m256i *sgn, const int32_t *g) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(mag[0], _mm256_sign_epi8(_mm256_set1_epi32(g[0]), sgn[0])), ones);
    for (int p = 1; p < 8; p++)
        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(mag[p], _mm256_sign_epi8(_mm256_set1_epi32(g[p]), sgn[p])), ones));
    return s;
}

SK_AVX2G static void gemm_int8_x8_avx2(const void *packed, int rows, const sk_act_q8 *a, int tokens, int n, float *out, int ldo) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32;
    __m256i *mag = aligned_alloc(64, (size_t)nb * 16 * sizeof(__m256i));
    float *scales = aligned_alloc(64, (size_t)nb * 8 * sizeof(float));
    if (!mag || !scales) { free(mag); free(scales); return; }
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8, w += SK_X8_INT8_BLOCK_BYTES * (size_t)nb) {
        for (int b = 0; b < nb; b++) {
            for (int p = 0; p < 8; p++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(w + SK_X8_INT8_BLOCK_BYTES * b + 16 + 32 * p));
                mag[16 * b + p] = _mm256_sign_epi8(v, v);   // |w| (−128 stays 0x80: 128 as u8)
                mag[16 * b + 8 + p] = v;
            }
            _mm256_store_ps(scales + 8 * b, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + SK_X8_INT8_BLOCK_BYTES * b))));
        }
        int t = 0;
        for (; t + 4 <= tokens; t += 4) {
            const sk_act_q8 *at[4] = {a + (size_t)t * nb, a + (size_t)(t + 1) * nb, a + (size_t)(t + 2) * nb, a + (size_t)(t + 3) * nb};
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int b = 0; b < nb; b++) {
                __m256 d = _mm256_load_ps(scales + 8 * b);
                for (int k = 0; k < 4; k++) {
                    __m256i s = block_int8(mag + 16 * b, mag + 16 * b + 8, (const int32_t *)at[k][b].qs);
                    acc[k] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(at[k][b].d)), _mm256_cvtepi32_ps(s), acc[k]);
                }
            }
            for (int k = 0; k < 4; k++) _mm256_storeu_ps(out + (size_t)(t + k) * ldo + r0, acc[k]);
        }
        for (; t < tokens; t++) {
            const sk_act_q8 *at = a + (size_t)t * nb;
            __m256 acc = _mm256_setzero_ps();
            for (int b = 0; b < nb; b++) {
                __m256i s = block_int8(mag + 16 * b, mag + 16 * b + 8, (const int32_t *)at[b].qs);
                acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_load_ps(scales + 8 * b), _mm256_set1_ps(at[b].d)), _mm256_cvtepi32_ps(s), acc);
            }
            _mm256_storeu_ps(out + (size_t)t * ldo + r0, acc);
        }
    }
    free(mag);
    free(scales);
}

sk_gemm_int4_x8_fn sk_gemm_int4_x8_avx2(void) { return sk_kernels_avx2() ? gemm_int4_x8_avx2 : NULL; }
sk_gemm_int8_x8_fn sk_gemm_int8_x8_avx2(void) { return sk_kernels_avx2() ? gemm_int8_x8_avx2 : NULL; }
#else
sk_gemm_int4_x8_fn sk_gemm_int4_x8_avx2(void) { return NULL; }
sk_gemm_int8_x8_fn sk_gemm_int8_x8_avx2(void) { return NULL; }
#endif
