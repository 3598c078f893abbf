// int8 KV cache rows: a key or value vector of `hd` floats as blocks of `block` elements (32, or
// the whole vector when hd is not a multiple of 32), each an f16 scale d and `block` int8 codes:
// d = f16(max|x| / 127), q = round-half-away(x / d) clamped to [-127, 127], x ≈ f32(d) · q
// (Q8_0's rule on a KV row). Read by attention directly: the dot product with an f32 query and the
// weighted accumulation into an f32 output decode the codes on the fly. An AVX2+FMA path and the
// portable scalar path (the reference; tests check the SIMD path against it).
#include "sk_kernels.h"
#include <math.h>
#include <string.h>

static inline float h2f(const uint8_t *p) { return sk_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

// Writes a block's f16 scale d = f16(max|x| / qmax) at o[0..1] and returns 1 / f32(d) (0 for a zero block).
static float put_scale(const float *xb, int block, float qmax, uint8_t *o) {
    float amax = 0;
    for (int i = 0; i < block; i++) { float a = fabsf(xb[i]); if (a > amax) amax = a; }
    uint16_t dh = sk_f32_to_f16_scalar(amax / qmax);
    float d = sk_f16_to_f32(dh);
    o[0] = (uint8_t)(dh & 0xff); o[1] = (uint8_t)(dh >> 8);
    return d > 0 ? 1.0f / d : 0.0f;
}

size_t sk_kv8_row_bytes(int hd, int block) { return (size_t)(hd / block) * (size_t)(2 + block); }

void sk_kv8_quantize(const float *x, uint8_t *row, int hd, int block) {
    for (int b = 0; b < hd / block; b++) {
        const float *xb = x + b * block;
        uint8_t *o = row + b * (2 + block);
        float inv = put_scale(xb, block, 127.0f, o);
        for (int i = 0; i < block; i++) {
            float v = roundf(xb[i] * inv);
            if (v > 127) v = 127;
            if (v < -127) v = -127;
            o[2 + i] = (uint8_t)(int8_t)v;
        }
    }
}

void sk_kv8_dequantize(const uint8_t *row, float *out, int hd, int block) {
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block);
        float d = h2f(p);
        for (int i = 0; i < block; i++) out[b * block + i] = d * (float)(int8_t)p[2 + i];
    }
}

float sk_kv8_dot_scalar(const uint8_t *row, const float *q, int hd, int block) {
    float acc = 0;
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block);
        float s = 0;
        for (int i = 0; i < block; i++) s += (float)(int8_t)p[2 + i] * q[b * block + i];
        acc += h2f(p) * s;
    }
    return acc;
}

void sk_kv8_axpy_scalar(float *out, float w, const uint8_t *row, int hd, int block) {
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block);
        float wd = w * h2f(p);
        for (int i = 0; i < block; i++) out[b * block + i] += wd * (float)(int8_t)p[2 + i];
    }
}


// int4 KV rows: blocks of `block` elements (32, or the whole vector), each an f16 scale d and
// block/2 bytes of 4-bit codes (element j low nibble of byte j/2 when j is even, high when odd):
// d = f16(max|x| / 7), q = round-half-away(x / d) clamped to [-8, 7], stored q + 8; x ≈ d · (c − 8).
void sk_fwht(float *x, int n) {
    for (int h = 1; h < n; h *= 2) {
        for (int i = 0; i < n; i += 2 * h) {
            for (int j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
        }
    }
    float s = 1.0f / sqrtf((float)n);
    for (int i = 0; i < n; i++) x[i] *= s;
}

size_t sk_kv4_row_bytes(int hd, int block) { return (size_t)(hd / block) * (size_t)(2 + block / 2); }

void sk_kv4_quantize(const float *x, uint8_t *row, int hd, int block) {
    for (int b = 0; b < hd / block; b++) {
        const float *xb = x + b * block;
        uint8_t *o = row + b * (2 + block / 2);
        float inv = put_scale(xb, block, 7.0f, o);
        for (int i = 0; i < block; i += 2) {
            float v0 = roundf(xb[i] * inv), v1 = roundf(xb[i + 1] * inv);
            v0 = v0 > 7 ? 7 : v0 < -8 ? -8 : v0;
            v1 = v1 > 7 ? 7 : v1 < -8 ? -8 : v1;
            o[2 + i / 2] = (uint8_t)((int)v0 + 8) | (uint8_t)(((int)v1 + 8) << 4);
        }
    }
}

void sk_kv4_dequantize(const uint8_t *row, float *out, int hd, int block) {
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block / 2);
        float d = h2f(p);
        for (int i = 0; i < block; i += 2) {
            out[b * block + i] = d * (float)((p[2 + i / 2] & 15) - 8);
            out[b * block + i + 1] = d * (float)((p[2 + i / 2] >> 4) - 8);
        }
    }
}

float sk_kv4_dot_scalar(const uint8_t *row, const float *q, int hd, int block) {
    float acc = 0;
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block / 2);
        const float *qb = q + b * block;
        float s = 0;
        for (int i = 0; i < block; i += 2) s += (float)((p[2 + i / 2] & 15) - 8) * qb[i] + (float)((p[2 + i / 2] >> 4) - 8) * qb[i + 1];
        acc += h2f(p) * s;
    }
    return acc;
}

void sk_kv4_axpy_scalar(float *out, float w, const uint8_t *row, int hd, int block) {
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block / 2);
        float wd = w * h2f(p);
        for (int i = 0; i < block; i += 2) {
            out[b * block + i] += wd * (float)((p[2 + i / 2] & 15) - 8);
            out[b * block + i + 1] += wd * (float)((p[2 + i / 2] >> 4) - 8);
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#include "f16_scalar.h"
#define SK_KV_AVX2 __attribute__((target("avx2,fma,f16c")))

static SK_KV_AVX2 inline __m256 load8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static SK_KV_AVX2 float dot_avx2(const uint8_t *row, const float *q, int hd, int block) {
    if (block % 8) return sk_kv8_dot_scalar(row, q, hd, block);
    // one vector accumulator over the whole row (scaled per block), one horizontal sum at the end
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block);
        const float *qb = q + b * block;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int i = 0;
        for (; i + 16 <= block; i += 16) {
            s0 = _mm256_fmadd_ps(load8(p + 2 + i), _mm256_loadu_ps(qb + i), s0);
            s1 = _mm256_fmadd_ps(load8(p + 2 + i + 8), _mm256_loadu_ps(qb + i + 8), s1);
        }
        for (; i < block; i += 8) s0 = _mm256_fmadd_ps(load8(p + 2 + i), _mm256_loadu_ps(qb + i), s0);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sk_f16c_at(p)), _mm256_add_ps(s0, s1), acc);
    }
    return sk_hsum8(acc);
}

static SK_KV_AVX2 void axpy_avx2(float *out, float w, const uint8_t *row, int hd, int block) {
    if (block % 8) { sk_kv8_axpy_scalar(out, w, row, hd, block); return; }
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block);
        __m256 wd = _mm256_set1_ps(w * sk_f16c_at(p));
        for (int i = 0; i < block; i += 8) {
            float *o = out + b * block + i;
            _mm256_storeu_ps(o, _mm256_fmadd_ps(wd, load8(p + 2 + i), _mm256_loadu_ps(o)));
        }
    }
}


// Two rows at a time (independent dependency chains keep both FMA ports busy).
static SK_KV_AVX2 void scores_avx2(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, float scale,
                                   float *out, int hd, int block) {
    int t = 0;
    if (block % 8 == 0) {
        for (; t + 2 <= count; t += 2) {
            const uint8_t *ra = base + (size_t)slots[t] * row_bytes, *rb = base + (size_t)slots[t + 1] * row_bytes;
            __m256 acc_a = _mm256_setzero_ps(), acc_b = _mm256_setzero_ps();
            for (int b = 0; b < hd / block; b++) {
                const uint8_t *pa = ra + b * (2 + block), *pb = rb + b * (2 + block);
                const float *qb = q + b * block;
                __m256 sa = _mm256_setzero_ps(), sb = _mm256_setzero_ps();
                for (int i = 0; i < block; i += 8) {
                    __m256 qv = _mm256_loadu_ps(qb + i);
                    sa = _mm256_fmadd_ps(load8(pa + 2 + i), qv, sa);
                    sb = _mm256_fmadd_ps(load8(pb + 2 + i), qv, sb);
                }
                acc_a = _mm256_fmadd_ps(_mm256_set1_ps(sk_f16c_at(pa)), sa, acc_a);
                acc_b = _mm256_fmadd_ps(_mm256_set1_ps(sk_f16c_at(pb)), sb, acc_b);
            }
            out[t] = sk_hsum8(acc_a) * scale;
            out[t + 1] = sk_hsum8(acc_b) * scale;
        }
    }
    for (; t < count; t++) out[t] = dot_avx2(base + (size_t)slots[t] * row_bytes, q, hd, block) * scale;
}
static int use_avx2(void) {
    static int v = -1;
    if (v < 0) v = sk_kernels_forced() != SK_FORCE_SCALAR && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return v;
}
float sk_kv8_dot_simd(const uint8_t *row, const float *q, int hd, int block) { return dot_avx2(row, q, hd, block); }
void sk_kv8_axpy_simd(float *out, float w, const uint8_t *row, int hd, int block) { axpy_avx2(out, w, row, hd, block); }
int sk_kv8_simd(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"); }
float sk_kv8_dot(const uint8_t *row, const float *q, int hd, int block) {
    return use_avx2() ? dot_avx2(row, q, hd, block) : sk_kv8_dot_scalar(row, q, hd, block);
}
void sk_kv8_axpy(float *out, float w, const uint8_t *row, int hd, int block) {
    if (use_avx2()) axpy_avx2(out, w, row, hd, block); else sk_kv8_axpy_scalar(out, w, row, hd, block);
}
void sk_kv8_scores(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, float scale, float *out, int hd, int block) {
    if (use_avx2()) { scores_avx2(base, row_bytes, slots, count, q, scale, out, hd, block); return; }
    for (int t = 0; t < count; t++) out[t] = sk_kv8_dot_scalar(base + (size_t)slots[t] * row_bytes, q, hd, block) * scale;
}

// int4: eight codes (4 bytes, element j in the low nibble of byte j/2 when even, high when odd) as floats c − 8.
static SK_KV_AVX2 inline __m256 load4x8(const uint8_t *p) {
    int32_t w;
    memcpy(&w, p, 4);
    __m128i b = _mm_cvtsi32_si128(w);
    b = _mm_unpacklo_epi8(b, b);                                   // b0 b0 b1 b1 b2 b2 b3 b3
    __m256i v = _mm256_srlv_epi32(_mm256_cvtepu8_epi32(b), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
    v = _mm256_sub_epi32(_mm256_and_si256(v, _mm256_set1_epi32(15)), _mm256_set1_epi32(8));
    return _mm256_cvtepi32_ps(v);
}

static SK_KV_AVX2 float dot4_avx2(const uint8_t *row, const float *q, int hd, int block) {
    if (block % 8) return sk_kv4_dot_scalar(row, q, hd, block);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block / 2);
        const float *qb = q + b * block;
        __m256 s = _mm256_setzero_ps();
        for (int i = 0; i < block; i += 8) s = _mm256_fmadd_ps(load4x8(p + 2 + i / 2), _mm256_loadu_ps(qb + i), s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sk_f16c_at(p)), s, acc);
    }
    return sk_hsum8(acc);
}

static SK_KV_AVX2 void axpy4_avx2(float *out, float w, const uint8_t *row, int hd, int block) {
    if (block % 8) { sk_kv4_axpy_scalar(out, w, row, hd, block); return; }
    for (int b = 0; b < hd / block; b++) {
        const uint8_t *p = row + b * (2 + block / 2);
        __m256 wd = _mm256_set1_ps(w * sk_f16c_at(p));
        for (int i = 0; i < block; i += 8) {
            float *o = out + b * block + i;
            _mm256_storeu_ps(o, _mm256_fmadd_ps(wd, load4x8(p + 2 + i / 2), _mm256_loadu_ps(o)));
        }
    }
}

// Values of `bits`-bit codes (8 or 4: a constant at each call, so one copy each), blocks of 32:
// the output in chunks of 64 dimensions (two blocks, eight accumulators) held in registers over
// all the slots, as kv_f16.c does; each element's multiply-adds those of the row axpy slot by
// slot, in the same order (bit for bit). The rest of a row (one block of 32), or other shapes,
// one axpy per slot.
static SK_KV_AVX2 inline __attribute__((always_inline)) void accumulate_blocks(int bits, float *out, const float *w, const uint8_t *base,
                                                                              size_t row_bytes, const long *slots, int count, int hd, int block) {
    const int bb = 2 + 32 * bits / 8;   // bytes of a block of 32
    int d = 0;
    if (block == 32) {
        for (; d + 64 <= hd; d += 64) {
            __m256 o[8];
            for (int k = 0; k < 8; k++) o[k] = _mm256_loadu_ps(out + d + 8 * k);
            for (int t = 0; t < count; t++) {
                const uint8_t *p = base + (size_t)slots[t] * row_bytes + (size_t)(d / 32) * bb;
                __m256 w0 = _mm256_set1_ps(w[t] * sk_f16c_at(p)), w1 = _mm256_set1_ps(w[t] * sk_f16c_at(p + bb));
                for (int k = 0; k < 4; k++) o[k] = _mm256_fmadd_ps(w0, bits == 8 ? load8(p + 2 + 8 * k) : load4x8(p + 2 + 4 * k), o[k]);
                for (int k = 0; k < 4; k++)
                    o[4 + k] = _mm256_fmadd_ps(w1, bits == 8 ? load8(p + bb + 2 + 8 * k) : load4x8(p + bb + 2 + 4 * k), o[4 + k]);
            }
            for (int k = 0; k < 8; k++) _mm256_storeu_ps(out + d + 8 * k, o[k]);
        }
    }
    if (d == hd) return;
    for (int t = 0; t < count; t++) {
        const uint8_t *p = base + (size_t)slots[t] * row_bytes + (size_t)(d / block) * (size_t)(2 + block * bits / 8);
        if (bits == 8) axpy_avx2(out + d, w[t], p, hd - d, block); else axpy4_avx2(out + d, w[t], p, hd - d, block);
    }
}

static SK_KV_AVX2 void accumulate8_avx2(float *out, const float *w, const uint8_t *base, size_t row_bytes, const long *slots, int count,
                                        int hd, int block) {
    accumulate_blocks(8, out, w, base, row_bytes, slots, count, hd, block);
}
static SK_KV_AVX2 void accumulate4_avx2(float *out, const float *w, const uint8_t *base, size_t row_bytes, const long *slots, int count,
                                        int hd, int block) {
    accumulate_blocks(4, out, w, base, row_bytes, slots, count, hd, block);
}
void sk_kv8_accumulate(float *out, const float *w, const uint8_t *base, size_t row_bytes, const long *slots, int count, int hd, int block) {
    if (use_avx2()) { accumulate8_avx2(out, w, base, row_bytes, slots, count, hd, block); return; }
    for (int t = 0; t < count; t++) sk_kv8_axpy_scalar(out, w[t], base + (size_t)slots[t] * row_bytes, hd, block);
}
float sk_kv4_dot_simd(const uint8_t *row, const float *q, int hd, int block) { return dot4_avx2(row, q, hd, block); }
void sk_kv4_axpy_simd(float *out, float w, const uint8_t *row, int hd, int block) { axpy4_avx2(out, w, row, hd, block); }
float sk_kv4_dot(const uint8_t *row, const float *q, int hd, int block) {
    return use_avx2() ? dot4_avx2(row, q, hd, block) : sk_kv4_dot_scalar(row, q, hd, block);
}
void sk_kv4_axpy(float *out, float w, const uint8_t *row, int hd, int block) {
    if (use_avx2()) axpy4_avx2(out, w, row, hd, block); else sk_kv4_axpy_scalar(out, w, row, hd, block);
}
#elif defined(__aarch64__)
// NEON: codes widened to f32 (8 -> 16 -> 32 bits), fused multiply-add; blocks not a multiple of 8 use the scalar loops.
#include <arm_neon.h>

static inline float32x4x2_t widen8(int8x8_t c) {
    int16x8_t h = vmovl_s8(c);
    float32x4x2_t r = {{vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))), vcvtq_f32_s32(vmovl_s16(vget_high_s16(h)))}};
    return r;
}
// int4: eight codes from 4 bytes as c − 8 (low nibble first).
static inline int8x8_t codes4x8(const uint8_t *p) {
    uint8_t b[8];
    for (int k = 0; k < 4; k++) { b[2 * k] = p[k] & 15; b[2 * k + 1] = p[k] >> 4; }
    return vsub_s8(vreinterpret_s8_u8(vld1_u8(b)), vdup_n_s8(8));
}
static inline int8x8_t codes8x8(const uint8_t *p) { return vld1_s8((const int8_t *)p); }

#define SK_KV_NEON_DOT(name, codes, rowbytes, step, scalar)                                        \
    static float name(const uint8_t *row, const float *q, int hd, int block) {                     \
        if (block % 8) return scalar(row, q, hd, block);                                           \
        float acc = 0;                                                                             \
        for (int b = 0; b < hd / block; b++) {                                                     \
            const uint8_t *p = row + b * (rowbytes);                                               \
            const float *qb = q + b * block;                                                       \
            float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);                                  \
            for (int i = 0; i < block; i += 8) {                                                   \
                float32x4x2_t c = widen8(codes(p + 2 + i / (step)));                               \
                s0 = vfmaq_f32(s0, c.val[0], vld1q_f32(qb + i));                                   \
                s1 = vfmaq_f32(s1, c.val[1], vld1q_f32(qb + i + 4));                               \
            }                                                                                      \
            acc += h2f(p) * vaddvq_f32(vaddq_f32(s0, s1));                                         \
        }                                                                                          \
        return acc;                                                                                \
    }
#define SK_KV_NEON_AXPY(name, codes, rowbytes, step, scalar)                                       \
    static void name(float *out, float w, const uint8_t *row, int hd, int block) {                 \
        if (block % 8) { scalar(out, w, row, hd, block); return; }                                 \
        for (int b = 0; b < hd / block; b++) {                                                     \
            const uint8_t *p = row + b * (rowbytes);                                               \
            float32x4_t wd = vdupq_n_f32(w * h2f(p));                                              \
            for (int i = 0; i < block; i += 8) {                                                   \
                float32x4x2_t c = widen8(codes(p + 2 + i / (step)));                               \
                float *o = out + b * block + i;                                                    \
                vst1q_f32(o, vfmaq_f32(vld1q_f32(o), wd, c.val[0]));                               \
                vst1q_f32(o + 4, vfmaq_f32(vld1q_f32(o + 4), wd, c.val[1]));                       \
            }                                                                                      \
        }                                                                                          \
    }
SK_KV_NEON_DOT(dot8_neon, codes8x8, 2 + block, 1, sk_kv8_dot_scalar)
SK_KV_NEON_AXPY(axpy8_neon, codes8x8, 2 + block, 1, sk_kv8_axpy_scalar)
SK_KV_NEON_DOT(dot4_neon, codes4x8, 2 + block / 2, 2, sk_kv4_dot_scalar)
SK_KV_NEON_AXPY(axpy4_neon, codes4x8, 2 + block / 2, 2, sk_kv4_axpy_scalar)

static int use_neon(void) { return sk_kernels_forced() != SK_FORCE_SCALAR; }
int sk_kv8_simd(void) { return 1; }
float sk_kv8_dot_simd(const uint8_t *row, const float *q, int hd, int block) { return dot8_neon(row, q, hd, block); }
void sk_kv8_axpy_simd(float *out, float w, const uint8_t *row, int hd, int block) { axpy8_neon(out, w, row, hd, block); }
float sk_kv8_dot(const uint8_t *row, const float *q, int hd, int block) {
    return use_neon() ? dot8_neon(row, q, hd, block) : sk_kv8_dot_scalar(row, q, hd, block);
}
void sk_kv8_axpy(float *out, float w, const uint8_t *row, int hd, int block) {
    if (use_neon()) axpy8_neon(out, w, row, hd, block); else sk_kv8_axpy_scalar(out, w, row, hd, block);
}
float sk_kv4_dot_simd(const uint8_t *row, const float *q, int hd, int block) { return dot4_neon(row, q, hd, block); }
void sk_kv4_axpy_simd(float *out, float w, const uint8_t *row, int hd, int block) { axpy4_neon(out, w, row, hd, block); }
float sk_kv4_dot(const uint8_t *row, const float *q, int hd, int block) {
    return use_neon() ? dot4_neon(row, q, hd, block) : sk_kv4_dot_scalar(row, q, hd, block);
}
void sk_kv4_axpy(float *out, float w, const uint8_t *row, int hd, int block) {
    if (use_neon()) axpy4_neon(out, w, row, hd, block); else sk_kv4_axpy_scalar(out, w, row, hd, block);
}
#else
// No SIMD path on this architecture: the scalar loops.
float sk_kv8_dot_simd(const uint8_t *row, const float *q, int hd, int block) { return sk_kv8_dot_scalar(row, q, hd, block); }
void sk_kv8_axpy_simd(float *out, float w, const uint8_t *row, int hd, int block) { sk_kv8_axpy_scalar(out, w, row, hd, block); }
int sk_kv8_simd(void) { return 0; }
float sk_kv8_dot(const uint8_t *row, const float *q, int hd, int block) { return sk_kv8_dot_scalar(row, q, hd, block); }
void sk_kv8_axpy(float *out, float w, const uint8_t *row, int hd, int block) { sk_kv8_axpy_scalar(out, w, row, hd, block); }
float sk_kv4_dot_simd(const uint8_t *row, const float *q, int hd, int block) { return sk_kv4_dot_scalar(row, q, hd, block); }
void sk_kv4_axpy_simd(float *out, float w, const uint8_t *row, int hd, int block) { sk_kv4_axpy_scalar(out, w, row, hd, block); }
float sk_kv4_dot(const uint8_t *row, const float *q, int hd, int block) { return sk_kv4_dot_scalar(row, q, hd, block); }
void sk_kv4_axpy(float *out, float w, const uint8_t *row, int hd, int block) { sk_kv4_axpy_scalar(out, w, row, hd, block); }
#endif

#if !defined(__x86_64__)
// int8 batched calls off x86 (x86 has its two-rows-at-a-time AVX2 version): the row kernels above.
void sk_kv8_scores(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, float scale, float *out, int hd, int block) {
    for (int t = 0; t < count; t++) out[t] = sk_kv8_dot(base + (size_t)slots[t] * row_bytes, q, hd, block) * scale;
}
void sk_kv8_accumulate(float *out, const float *w, const uint8_t *base, size_t row_bytes, const long *slots, int count, int hd, int block) {
    for (int t = 0; t < count; t++) sk_kv8_axpy(out, w[t], base + (size_t)slots[t] * row_bytes, hd, block);
}
#endif

// int4 batched calls: the row kernels above (AVX2, NEON or scalar by the CPU); on x86 the values
// through accumulate4_avx2.
void sk_kv4_scores(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, float scale, float *out, int hd, int block) {
    for (int t = 0; t < count; t++) out[t] = sk_kv4_dot(base + (size_t)slots[t] * row_bytes, q, hd, block) * scale;
}
void sk_kv4_accumulate(float *out, const float *w, const uint8_t *base, size_t row_bytes, const long *slots, int count, int hd, int block) {
#if defined(__x86_64__)
    if (use_avx2()) { accumulate4_avx2(out, w, base, row_bytes, slots, count, hd, block); return; }
#endif
    for (int t = 0; t < count; t++) sk_kv4_axpy(out, w[t], base + (size_t)slots[t] * row_bytes, hd, block);
}
