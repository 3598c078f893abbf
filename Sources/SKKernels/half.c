// Bulk f16 <-> f32 conversion (the f16 KV cache): F16C on x86-64 where the CPU has it, NEON's
// vcvt on aarch64, else the portable scalar path. f32 -> f16 rounds to nearest, ties to even (as
// F16C with _MM_FROUND_TO_NEAREST_INT and NEON's default mode do), overflow to ±inf, NaN kept
// quiet; f16 -> f32 is exact. Every path gives the scalar path's bits.
#include "sk_kernels.h"
#include <stdlib.h>
#include <string.h>

// Every f32 is exact in f64, so quant.c's f64 rounding serves; NaNs keep their payload's top
// bits, quieted, as F16C and NEON do.
uint16_t sk_f32_to_f16_scalar(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t m = x & 0x7fffff;
    if ((x & 0x7f800000) == 0x7f800000 && m) return (uint16_t)(((x >> 16) & 0x8000) | 0x7e00 | (m >> 13));
    return sk_f64_to_f16((double)f);
}

void sk_f16_to_f32_n_scalar(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = sk_f16_to_f32(src[i]);
}
void sk_f32_to_f16_n_scalar(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = sk_f32_to_f16_scalar(src[i]);
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define SK_F16C __attribute__((target("avx2,f16c")))
SK_F16C static void f16_to_f32_f16c(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = sk_f16_to_f32(src[i]);
}
SK_F16C static void f32_to_f16_f16c(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) dst[i] = sk_f32_to_f16_scalar(src[i]);
}
static int has_f16c(void) { return sk_kernels_avx2() != NULL; }
#elif defined(__aarch64__)
#include <arm_neon.h>
static void f16_to_f32_f16c(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    for (; i < n; i++) dst[i] = sk_f16_to_f32(src[i]);
}
static void f32_to_f16_f16c(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++) dst[i] = sk_f32_to_f16_scalar(src[i]);
}
static int has_f16c(void) { return 1; }
#else
static void f16_to_f32_f16c(const uint16_t *src, float *dst, size_t n) { sk_f16_to_f32_n_scalar(src, dst, n); }
static void f32_to_f16_f16c(const float *src, uint16_t *dst, size_t n) { sk_f32_to_f16_n_scalar(src, dst, n); }
static int has_f16c(void) { return 0; }
#endif

int sk_half_simd(void) { return has_f16c(); }
void sk_f16_to_f32_n_simd(const uint16_t *src, float *dst, size_t n) { f16_to_f32_f16c(src, dst, n); }
void sk_f32_to_f16_n_simd(const float *src, uint16_t *dst, size_t n) { f32_to_f16_f16c(src, dst, n); }

static int use_simd(void) {
    static int v = -1;
    if (v < 0) {
        v = sk_kernels_forced() == SK_FORCE_SCALAR ? 0 : has_f16c();
    }
    return v;
}
void sk_f16_to_f32_n(const uint16_t *src, float *dst, size_t n) {
    if (use_simd()) f16_to_f32_f16c(src, dst, n); else sk_f16_to_f32_n_scalar(src, dst, n);
}
void sk_f32_to_f16_n(const float *src, uint16_t *dst, size_t n) {
    if (use_simd()) f32_to_f16_f16c(src, dst, n); else sk_f32_to_f16_n_scalar(src, dst, n);
}
