// Portable scalar reference kernels: the definition every SIMD path is tested against.
#include "sk_kernels.h"
#include <math.h>
#include <string.h>

float sk_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) { bits = sign; }
        else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; exp--; }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (mant << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static float dot_f32(const float *w, const float *x, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

static float dot_f16(const uint16_t *w, const float *x, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += sk_f16_to_f32(w[i]) * x[i];
    return s;
}

static void quantize_act(const float *x, sk_act_q8 *out, int n) {
    for (int b = 0; b < n / 32; b++) {
        const float *v = x + 32 * b;
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            int q = (int)lrintf(v[i] * id);
            out[b].qs[i] = (int8_t)q;
            sum += q;
        }
        out[b].d = d;
        out[b].isum = sum;
    }
}

static float dot_int8(const void *wv, const sk_act_q8 *a, int n) {
    const uint8_t *w = (const uint8_t *)wv;
    float s = 0;
    for (int b = 0; b < n / 32; b++, w += 34) {
        int32_t acc = 0;
        for (int i = 0; i < 32; i++) acc += (int8_t)w[2 + i] * a[b].qs[i];
        s += sk_f16_to_f32(load_u16(w)) * a[b].d * (float)acc;
    }
    return s;
}

// Σ over one weight group of q_j · a_j per activation block, scaled by each block's d,
// and Σ d_a · isum: the two sums the int4 formulas need.
static void int4_group_sums(const uint8_t *qs, const sk_act_q8 *a, int group, float *sum_qa, float *sum_a) {
    int half = group / 2;
    float sq = 0, sa = 0;
    for (int k = 0; k < group / 32; k++) {
        int32_t acc = 0;
        for (int i = 0; i < 32; i++) {
            int j = 32 * k + i;
            int q = j < half ? (qs[j] & 0x0f) : (qs[j - half] >> 4);
            acc += q * a[k].qs[i];
        }
        sq += a[k].d * (float)acc;
        sa += a[k].d * (float)a[k].isum;
    }
    *sum_qa = sq;
    *sum_a = sa;
}

static float dot_int4(const void *wv, const sk_act_q8 *a, int n, int group) {
    const uint8_t *w = (const uint8_t *)wv;
    float s = 0;
    for (int g = 0; g < n / group; g++, w += 4 + group / 2, a += group / 32) {
        float sq, sa;
        int4_group_sums(w + 4, a, group, &sq, &sa);
        s += sk_f16_to_f32(load_u16(w)) * sq + sk_f16_to_f32(load_u16(w + 2)) * sa;
    }
    return s;
}

static float dot_int4_sym(const void *wv, const sk_act_q8 *a, int n, int group) {
    const uint8_t *w = (const uint8_t *)wv;
    float s = 0;
    for (int g = 0; g < n / group; g++, w += 2 + group / 2, a += group / 32) {
        float sq, sa;
        int4_group_sums(w + 2, a, group, &sq, &sa);
        s += sk_f16_to_f32(load_u16(w)) * (sq - 8.0f * sa);
    }
    return s;
}

static void gemv(int type, const void *w, size_t row_bytes, int rows, const sk_act_q8 *a, int n, int group, float *out) {
    sk_gemv_rows(sk_kernels_scalar(), type, w, row_bytes, rows, a, n, group, out);
}

static void silu_mul(float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static float exp_shift_sum(float *x, int n, float shift) {
    float sum = 0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - shift); sum += x[i]; }
    return sum;
}


static const sk_kernel_table scalar_table = {
    "scalar", dot_f32, dot_f16, dot_int8, dot_int4, dot_int4_sym, quantize_act, gemv, NULL, NULL, silu_mul, exp_shift_sum,
};

const sk_kernel_table *sk_kernels_scalar(void) { return &scalar_table; }
