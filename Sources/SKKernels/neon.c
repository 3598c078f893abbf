// NEON kernels for aarch64 (the same sums as scalar.c, in SIMD order). Advanced SIMD is part of
// the aarch64 baseline, so no run-time check is needed beyond the architecture itself.
#include "sk_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>

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

// One dot per row (a multi-row NEON kernel is future work).
static void gemv(int type, const void *w, size_t row_bytes, int rows, const sk_act_q8 *a, int n, int group, float *out) {
    sk_gemv_rows(&neon_table, type, w, row_bytes, rows, a, n, group, out);
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

static void axpy_f16(float *y, float a, const uint16_t *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))), a));
    for (; i < n; i++) y[i] += a * sk_f16_to_f32(x[i]);
}

static const sk_kernel_table neon_table = {
    "neon", dot_f32, dot_f16, dot_int8, dot_int4, dot_int4_sym, quantize_act, gemv, NULL, NULL, silu_mul, exp_shift_sum, axpy_f16,
};

const sk_kernel_table *sk_kernels_neon(void) { return &neon_table; }
#else
const sk_kernel_table *sk_kernels_neon(void) { return NULL; }
#endif
