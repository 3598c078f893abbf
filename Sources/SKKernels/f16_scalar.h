// Shared x86 helpers. One f16 value (little-endian, at any alignment) as f32 with F16C, for the x86 kernels that
// read a block scale inside a loop. Through a general register on purpose: left to itself clang
// loads it with a vpinsrw, which merges into whatever its destination register last held, and it
// picks a loop accumulator: a false dependency that chains each iteration to the previous one's
// FMA (int8 KV values ran at a third of their speed). The empty asm hides the value's origin, so
// the move is a vmovd, which writes the whole register.
#ifndef SK_F16_SCALAR_H
#define SK_F16_SCALAR_H
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <stdint.h>

__attribute__((target("avx2,fma,f16c"), always_inline))
static inline float sk_f16c_at(const uint8_t *p) {
    int v = p[0] | (p[1] << 8);
    __asm__("" : "+r"(v));
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(v)));
}

// The horizontal sum every AVX2 kernel ends with (its order is part of their results: the kernel
// tests compare several of them bit for bit).
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline float sk_hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
#endif
#endif
