// NEON kernels for aarch64 (the same sums as scalar.c, in SIMD order). Advanced SIMD is part of
// the aarch64 baseline, so no run-time check is needed beyond the architecture itself; the x8
// generation kernels have a second form for the dot-product extension, checked at run time.
#include "sk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

static inline float h16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return sk_f16_to_f32(v);
}

// Σ of 16 u8/s8 × s8 products into int32 lanes.
static inline int32x4_t dot16(int8x16_t a, int8x16_t b, int32x4_t acc) {
    int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    int16x8_t hi = vmull_s8(vget_high_s8(a), vget_high_s8(b));
    return vpadalq_s16(vpadalq_s16(acc, lo), hi);
}

static float dot_f32(const float *w, const float *x, int n) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}

static float dot_f16(const uint16_t *w, const float *x, int n) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(w + i));
        a0 = vfmaq_f32(a0, vcvt_f32_f16(vget_low_f16(h)), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, vcvt_high_f32_f16(h), vld1q_f32(x + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += sk_f16_to_f32(w[i]) * x[i];
    return s;
}

static void quantize_act(const float *x, sk_act_q8 *out, int n) {
    for (int b = 0; b < n / 32; b++) {
        const float *v = x + 32 * b;
        float32x4_t m = vdupq_n_f32(0);
        for (int i = 0; i < 32; i += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(v + i)));
        float amax = vmaxvq_f32(m);
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i += 4) {
            int32x4_t q = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(v + i), id));  // round half to even
            sum += vaddvq_s32(q);
            int16x4_t q16 = vmovn_s32(q);
            int8x8_t q8 = vmovn_s16(vcombine_s16(q16, q16));
            vst1_lane_s32((int32_t *)(out[b].qs + i), vreinterpret_s32_s8(q8), 0);
        }
        out[b].d = d;
        out[b].isum = sum;
    }
}

static float dot_int8(const void *wv, const sk_act_q8 *a, int n) {
    const uint8_t *w = (const uint8_t *)wv;
    float s = 0;
    for (int b = 0; b < n / 32; b++, w += 34) {
        int32x4_t acc = vdupq_n_s32(0);
        acc = dot16(vld1q_s8((const int8_t *)w + 2), vld1q_s8(a[b].qs), acc);
        acc = dot16(vld1q_s8((const int8_t *)w + 18), vld1q_s8(a[b].qs + 16), acc);
        s += h16(w) * a[b].d * (float)vaddvq_s32(acc);
    }
    return s;
}

static inline float int4_dot(const uint8_t *w, const sk_act_q8 *a, int n, int group, int asym) {
    const int bytes = (asym ? 4 : 2) + group / 2, half = group / 2;
    const uint8x16_t low = vdupq_n_u8(0x0f);
    float s = 0;
    for (int g = 0; g < n / group; g++, w += bytes, a += group / 32) {
        const uint8_t *qs = w + (asym ? 4 : 2);
        float d = h16(w), m = asym ? h16(w + 2) : -8.0f * d, sq = 0, sa = 0;
        // elements [16c, 16c + 16) of the group: low nibbles of bytes [16c, ...) for the first
        // half, high nibbles of bytes [16c − half, ...) for the second
        for (int k = 0; k < group / 32; k++) {
            int32x4_t acc = vdupq_n_s32(0);
            for (int c = 2 * k; c < 2 * k + 2; c++) {
                int e = 16 * c;
                uint8x16_t q = e < half ? vandq_u8(vld1q_u8(qs + e), low) : vshrq_n_u8(vld1q_u8(qs + e - half), 4);
                acc = dot16(vreinterpretq_s8_u8(q), vld1q_s8(a[k].qs + (e - 32 * k)), acc);
            }
            sq += a[k].d * (float)vaddvq_s32(acc);
            sa += a[k].d * (float)a[k].isum;
        }
        s += d * sq + m * sa;
    }
    return s;
}

static float dot_int4(const void *w, const sk_act_q8 *a, int n, int group) { return int4_dot((const uint8_t *)w, a, n, group, 1); }
static float dot_int4_sym(const void *w, const sk_act_q8 *a, int n, int group) { return int4_dot((const uint8_t *)w, a, n, group, 0); }

static const sk_kernel_table neon_table;

// Row-layout weights (the prompt-side fallback and rows not in groups of 8): one dot per row.
static void gemv(int type, const void *w, size_t row_bytes, int rows, const sk_act_q8 *a, int n, int group, float *out) {
    sk_gemv_rows(&neon_table, type, w, row_bytes, rows, a, n, group, out);
}

// ---- x8 layout (pack.c) ------------------------------------------------------------------------
// In every 32-byte chunk of an x8 block, bytes 0-15 hold 4 codes of rows 0-3 and bytes 16-31 of
// rows 4-7 (row i at bytes 4i..4i+3), so a 16-byte register is "4 rows × 4 consecutive codes".
// Two kernels per type: plain Advanced SIMD (vmull/vmlal into int16, pairwise widening adds) and
// the dot-product extension (`sdot` by lane: lane i of the accumulator gains row i's 4 codes ·
// one 4-byte activation group), chosen at run time from HWCAP_ASIMDDP.

// The 8 rows' f16 scales (or minima) as two f32 vectors.
static inline void load_h8(const uint8_t *p, float32x4_t *lo, float32x4_t *hi) {
    float16x8_t h = vreinterpretq_f16_u16(vld1q_u16((const uint16_t *)p));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
}

// Lanes [r0 e0+e1, r0 e2+e3, r1 e0+e1, r1 e2+e3] and the same for r2, r3 → [r0, r1, r2, r3].
static inline int32x4_t rows4(int32x4_t a01, int32x4_t a23) { return vpaddq_s32(a01, a23); }

// The block's float update shared by every int4 x8 kernel: s0 / s1 the int32 sums of rows 0-3 /
// 4-7 (Σ code · activation), d and m the block's scales and minima.
static inline void int4_x8_update(int asym, const uint8_t *w, const sk_act_q8 *a, int32x4_t s0, int32x4_t s1,
                                  float32x4_t *acc0, float32x4_t *acc1) {
    float32x4_t d0, d1;
    load_h8(w, &d0, &d1);
    if (!asym) {
        int32x4_t c = vdupq_n_s32(8 * a->isum);
        s0 = vsubq_s32(s0, c);
        s1 = vsubq_s32(s1, c);
    }
    *acc0 = vfmaq_f32(*acc0, vmulq_n_f32(d0, a->d), vcvtq_f32_s32(s0));
    *acc1 = vfmaq_f32(*acc1, vmulq_n_f32(d1, a->d), vcvtq_f32_s32(s1));
    if (asym) {
        float32x4_t m0, m1;
        load_h8(w + 16, &m0, &m1);
        float ms = a->d * (float)a->isum;
        *acc0 = vfmaq_n_f32(*acc0, m0, ms);
        *acc1 = vfmaq_n_f32(*acc1, m1, ms);
    }
}

// Plain NEON int4: codes ≤ 15 and |activation| ≤ 127, so the 8 products a lane of the int16
// accumulators gathers per block stay below 2¹⁵ (8 · 15 · 127 = 15,240).
static void gemv_int4_x8(int asym, const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32, qoff = asym ? 32 : 16;
    const size_t bb = (size_t)qoff + 128;
    const uint8x16_t low = vdupq_n_u8(0x0f);
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
        for (int b = 0; b < nb; b++, w += bb) {
            const uint8_t *q = w + qoff;
            int32x4_t x0 = vreinterpretq_s32_s8(vld1q_s8(a[b].qs)), x1 = vreinterpretq_s32_s8(vld1q_s8(a[b].qs + 16));
            int16x8_t h0 = vdupq_n_s16(0), h1 = h0, h2 = h0, h3 = h0;   // rows 0-1, 2-3, 4-5, 6-7
#define SK_INT4_P(P)                                                                                     \
            {                                                                                            \
                uint8x16_t v0 = vld1q_u8(q + 32 * P), v1 = vld1q_u8(q + 32 * P + 16);                    \
                int8x16_t gl = vreinterpretq_s8_s32(vdupq_laneq_s32(x0, P));                             \
                int8x16_t gh = vreinterpretq_s8_s32(vdupq_laneq_s32(x1, P));                             \
                int8x16_t l0 = vreinterpretq_s8_u8(vandq_u8(v0, low)), u0 = vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)); \
                int8x16_t l1 = vreinterpretq_s8_u8(vandq_u8(v1, low)), u1 = vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)); \
                h0 = vmlal_s8(h0, vget_low_s8(l0), vget_low_s8(gl));                                     \
                h1 = vmlal_high_s8(h1, l0, gl);                                                          \
                h2 = vmlal_s8(h2, vget_low_s8(l1), vget_low_s8(gl));                                     \
                h3 = vmlal_high_s8(h3, l1, gl);                                                          \
                h0 = vmlal_s8(h0, vget_low_s8(u0), vget_low_s8(gh));                                     \
                h1 = vmlal_high_s8(h1, u0, gh);                                                          \
                h2 = vmlal_s8(h2, vget_low_s8(u1), vget_low_s8(gh));                                     \
                h3 = vmlal_high_s8(h3, u1, gh);                                                          \
            }
            SK_INT4_P(0) SK_INT4_P(1) SK_INT4_P(2) SK_INT4_P(3)
#undef SK_INT4_P
            int32x4_t s0 = rows4(vpaddlq_s16(h0), vpaddlq_s16(h1)), s1 = rows4(vpaddlq_s16(h2), vpaddlq_s16(h3));
            int4_x8_update(asym, w, &a[b], s0, s1, &acc0, &acc1);
        }
        vst1q_f32(out + r0, acc0);
        vst1q_f32(out + r0 + 4, acc1);
    }
}

// Plain NEON int8: a product is at most 128 · 127, so two of them still fit int16 and vpadal
// widens each pair into the int32 accumulators at once.
static void gemv_int8_x8(const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32;
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
        for (int b = 0; b < nb; b++, w += SK_X8_INT8_BLOCK_BYTES) {
            const int8_t *q = (const int8_t *)w + 16;
            int32x4_t x0 = vreinterpretq_s32_s8(vld1q_s8(a[b].qs)), x1 = vreinterpretq_s32_s8(vld1q_s8(a[b].qs + 16));
            int32x4_t p0 = vdupq_n_s32(0), p1 = p0, p2 = p0, p3 = p0;
#define SK_INT8_P(P, X, L)                                                                               \
            {                                                                                            \
                int8x16_t v0 = vld1q_s8(q + 32 * P), v1 = vld1q_s8(q + 32 * P + 16);                     \
                int8x16_t g = vreinterpretq_s8_s32(vdupq_laneq_s32(X, L));                               \
                p0 = vpadalq_s16(p0, vmull_s8(vget_low_s8(v0), vget_low_s8(g)));                         \
                p1 = vpadalq_s16(p1, vmull_high_s8(v0, g));                                              \
                p2 = vpadalq_s16(p2, vmull_s8(vget_low_s8(v1), vget_low_s8(g)));                         \
                p3 = vpadalq_s16(p3, vmull_high_s8(v1, g));                                              \
            }
            SK_INT8_P(0, x0, 0) SK_INT8_P(1, x0, 1) SK_INT8_P(2, x0, 2) SK_INT8_P(3, x0, 3)
            SK_INT8_P(4, x1, 0) SK_INT8_P(5, x1, 1) SK_INT8_P(6, x1, 2) SK_INT8_P(7, x1, 3)
#undef SK_INT8_P
            float32x4_t d0, d1;
            load_h8(w, &d0, &d1);
            acc0 = vfmaq_f32(acc0, vmulq_n_f32(d0, a[b].d), vcvtq_f32_s32(rows4(p0, p1)));
            acc1 = vfmaq_f32(acc1, vmulq_n_f32(d1, a[b].d), vcvtq_f32_s32(rows4(p2, p3)));
        }
        vst1q_f32(out + r0, acc0);
        vst1q_f32(out + r0 + 4, acc1);
    }
}

// The dot-product extension (Armv8.2 DotProd; Cortex-A76 / Raspberry Pi 5 and later), compiled
// with a target attribute so an armv8-a build still contains it and calls it only after HWCAP
// says so.
#if defined(__clang__)
#define SK_DOTPROD __attribute__((target("dotprod")))
#else
#define SK_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

SK_DOTPROD static void gemv_int4_x8_sdot(int asym, const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32, qoff = asym ? 32 : 16;
    const size_t bb = (size_t)qoff + 128;
    const uint8x16_t low = vdupq_n_u8(0x0f);
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
        for (int b = 0; b < nb; b++, w += bb) {
            const uint8_t *q = w + qoff;
            int8x16_t x0 = vld1q_s8(a[b].qs), x1 = vld1q_s8(a[b].qs + 16);
            // two chains per row set (low and high nibbles) so sdot's latency overlaps
            int32x4_t s0 = vdupq_n_s32(0), s1 = s0, t0 = s0, t1 = s0;
#define SK_SDOT4_P(P)                                                                                    \
            {                                                                                            \
                uint8x16_t v0 = vld1q_u8(q + 32 * P), v1 = vld1q_u8(q + 32 * P + 16);                    \
                s0 = vdotq_laneq_s32(s0, vreinterpretq_s8_u8(vandq_u8(v0, low)), x0, P);                 \
                s1 = vdotq_laneq_s32(s1, vreinterpretq_s8_u8(vandq_u8(v1, low)), x0, P);                 \
                t0 = vdotq_laneq_s32(t0, vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), x1, P);                 \
                t1 = vdotq_laneq_s32(t1, vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)), x1, P);                 \
            }
            SK_SDOT4_P(0) SK_SDOT4_P(1) SK_SDOT4_P(2) SK_SDOT4_P(3)
#undef SK_SDOT4_P
            int4_x8_update(asym, w, &a[b], vaddq_s32(s0, t0), vaddq_s32(s1, t1), &acc0, &acc1);
        }
        vst1q_f32(out + r0, acc0);
        vst1q_f32(out + r0 + 4, acc1);
    }
}

SK_DOTPROD static void gemv_int8_x8_sdot(const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32;
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
        for (int b = 0; b < nb; b++, w += SK_X8_INT8_BLOCK_BYTES) {
            const int8_t *q = (const int8_t *)w + 16;
            int8x16_t x0 = vld1q_s8(a[b].qs), x1 = vld1q_s8(a[b].qs + 16);
            int32x4_t s0 = vdupq_n_s32(0), s1 = s0, t0 = s0, t1 = s0;
#define SK_SDOT8_P(P, X, L, A, B)                                                                        \
            {                                                                                            \
                A = vdotq_laneq_s32(A, vld1q_s8(q + 32 * P), X, L);                                      \
                B = vdotq_laneq_s32(B, vld1q_s8(q + 32 * P + 16), X, L);                                 \
            }
            SK_SDOT8_P(0, x0, 0, s0, s1) SK_SDOT8_P(1, x0, 1, t0, t1) SK_SDOT8_P(2, x0, 2, s0, s1) SK_SDOT8_P(3, x0, 3, t0, t1)
            SK_SDOT8_P(4, x1, 0, s0, s1) SK_SDOT8_P(5, x1, 1, t0, t1) SK_SDOT8_P(6, x1, 2, s0, s1) SK_SDOT8_P(7, x1, 3, t0, t1)
#undef SK_SDOT8_P
            float32x4_t d0, d1;
            load_h8(w, &d0, &d1);
            acc0 = vfmaq_f32(acc0, vmulq_n_f32(d0, a[b].d), vcvtq_f32_s32(vaddq_s32(s0, t0)));
            acc1 = vfmaq_f32(acc1, vmulq_n_f32(d1, a[b].d), vcvtq_f32_s32(vaddq_s32(s1, t1)));
        }
        vst1q_f32(out + r0, acc0);
        vst1q_f32(out + r0 + 4, acc1);
    }
}

// e^x on 4 floats, as exp8 in avx2.c (Cephes expf reduction and polynomial).
static inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t lo = vdupq_n_f32(-87.33654475f), hi = vdupq_n_f32(88.3762626647949f);
    uint32x4_t under = vcltq_f32(x, lo);
    x = vminq_f32(vmaxq_f32(x, lo), hi);
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
}

static void silu_mul(float *g, const float *u, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t a = vld1q_f32(g + i);
        float32x4_t s = vdivq_f32(a, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(a))));
        vst1q_f32(g + i, vmulq_f32(s, vld1q_f32(u + i)));
    }
    if (i < n) {   // the tail through the same vector code
        float gt[4] = {0}, ut[4] = {0};
        memcpy(gt, g + i, sizeof(float) * (size_t)(n - i));
        memcpy(ut, u + i, sizeof(float) * (size_t)(n - i));
        silu_mul(gt, ut, 4);
        memcpy(g + i, gt, sizeof(float) * (size_t)(n - i));
    }
}

static float exp_shift_sum(float *x, int n, float shift) {
    int i = 0;
    float32x4_t acc = vdupq_n_f32(0);
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), vdupq_n_f32(shift)));
        vst1q_f32(x + i, e);
        acc = vaddq_f32(acc, e);
    }
    if (i < n) {
        float t[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(t), vdupq_n_f32(shift)));
        vst1q_f32(t, e);
        memcpy(x + i, t, sizeof(float) * (size_t)(n - i));
        acc = vaddq_f32(acc, e);
    }
    return vaddvq_f32(acc);
}


static const sk_kernel_table neon_table = {
    "neon", dot_f32, dot_f16, dot_int8, dot_int4, dot_int4_sym, quantize_act, gemv, gemv_int4_x8, gemv_int8_x8, silu_mul, exp_shift_sum,
};
static const sk_kernel_table neon_dotprod_table = {
    "neon+dotprod", dot_f32, dot_f16, dot_int8, dot_int4, dot_int4_sym, quantize_act, gemv, gemv_int4_x8_sdot, gemv_int8_x8_sdot, silu_mul, exp_shift_sum,
};

const sk_kernel_table *sk_kernels_neon_plain(void) { return &neon_table; }
const sk_kernel_table *sk_kernels_neon_dotprod(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? &neon_dotprod_table : NULL;
#elif defined(__APPLE__)
    return &neon_dotprod_table;   // every Apple arm64 CPU has it (A11 and later)
#else
    return NULL;
#endif
}
// The dot-product kernels where the CPU has them (SK_NO_SDOT=1 for an A/B run), else plain NEON.
const sk_kernel_table *sk_kernels_neon(void) {
    const sk_kernel_table *t = getenv("SK_NO_SDOT") ? NULL : sk_kernels_neon_dotprod();
    return t ? t : &neon_table;
}
#else
const sk_kernel_table *sk_kernels_neon(void) { return NULL; }
const sk_kernel_table *sk_kernels_neon_plain(void) { return NULL; }
const sk_kernel_table *sk_kernels_neon_dotprod(void) { return NULL; }
#endif
