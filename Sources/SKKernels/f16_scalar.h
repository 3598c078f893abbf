// One f16 value (little-endian, at any alignment) as f32 with F16C, for the x86 kernels that
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
#endif
#endif
