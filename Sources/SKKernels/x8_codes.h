// Shared by the prompt GEMMs over x8 int4 / int4-sym weights (gemm_avx2.c, vnni.c): one 8-row
// group's codes unpacked for reuse across tokens — per block, codes[8b + p] holds 4 codes of each
// row for p = 0..3 (low nibbles) and p = 4..7 (high nibbles), and scales[16b ..] the 8 rows' d
// (then m for int4). AVX2 + F16C; callable from the VNNI functions (a superset of the set).
#ifndef SK_X8_CODES_H
#define SK_X8_CODES_H
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <stdint.h>

__attribute__((target("avx2,fma,f16c")))
static inline void sk_x8_int4_group_codes(int asym, const uint8_t *w, int nb, __m256i *codes, float *scales) {
    const int qoff = asym ? 32 : 16;
    const size_t bb = (size_t)qoff + 128;
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + bb * b;
        for (int p = 0; p < 4; p++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(blk + qoff + 32 * p));
            codes[8 * b + p] = _mm256_and_si256(v, low);
            codes[8 * b + 4 + p] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        }
        _mm256_store_ps(scales + 16 * b, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk)));
        if (asym) _mm256_store_ps(scales + 16 * b + 8, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16))));
    }
}
#endif
#endif
