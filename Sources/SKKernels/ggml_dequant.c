// Decoding of GGUF tensors (ggml's block types) to f32, written from the block layouts of the
// GGUF format (ggml-common.h): the arithmetic and its order are ggml's reference dequantizers'
// (f32, the scale times the integer code, minus/plus the minimum), so the values are the ones
// llama.cpp computes. Checked against the `gguf` Python package's dequantization.
#include "sk_kernels.h"
#include <string.h>

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static inline float h2f(const uint8_t *p) { return sk_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }
static inline uint32_t u32le(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

int sk_ggml_block_info(int type, int *block_elements, int *block_bytes) {
    int e = 0, b = 0;
    switch (type) {
    case SK_GGML_F32: e = 1; b = 4; break;
    case SK_GGML_F16: e = 1; b = 2; break;
    case SK_GGML_BF16: e = 1; b = 2; break;
    case SK_GGML_Q4_0: e = 32; b = 18; break;
    case SK_GGML_Q4_1: e = 32; b = 20; break;
    case SK_GGML_Q5_0: e = 32; b = 22; break;
    case SK_GGML_Q5_1: e = 32; b = 24; break;
    case SK_GGML_Q8_0: e = 32; b = 34; break;
    case SK_GGML_Q4_K: e = 256; b = 144; break;
    case SK_GGML_Q5_K: e = 256; b = 176; break;
    case SK_GGML_Q6_K: e = 256; b = 210; break;
    default: return 0;
    }
    *block_elements = e;
    *block_bytes = b;
    return 1;
}

int sk_ggml_dequantize(int type, const uint8_t *x, size_t nblocks, float *y) {
    switch (type) {
    case SK_GGML_F32:
        memcpy(y, x, nblocks * 4);
        return 1;
    case SK_GGML_F16:
        for (size_t i = 0; i < nblocks; i++) y[i] = h2f(x + 2 * i);
        return 1;
    case SK_GGML_BF16:
        for (size_t i = 0; i < nblocks; i++) {
            uint32_t u = ((uint32_t)x[2 * i] | ((uint32_t)x[2 * i + 1] << 8)) << 16;
            memcpy(y + i, &u, 4);
        }
        return 1;
    case SK_GGML_Q4_0:
        for (size_t b = 0; b < nblocks; b++, x += 18, y += 32) {
            float d = h2f(x);
            for (int j = 0; j < 16; j++) {
                y[j] = (float)((x[2 + j] & 0x0F) - 8) * d;
                y[j + 16] = (float)((x[2 + j] >> 4) - 8) * d;
            }
        }
        return 1;
    case SK_GGML_Q4_1:
        for (size_t b = 0; b < nblocks; b++, x += 20, y += 32) {
            float d = h2f(x), m = h2f(x + 2);
            for (int j = 0; j < 16; j++) {
                y[j] = (float)(x[4 + j] & 0x0F) * d + m;
                y[j + 16] = (float)(x[4 + j] >> 4) * d + m;
            }
        }
        return 1;
    case SK_GGML_Q5_0:
        for (size_t b = 0; b < nblocks; b++, x += 22, y += 32) {
            float d = h2f(x);
            uint32_t qh = u32le(x + 2);
            for (int j = 0; j < 16; j++) {
                int h0 = (int)(((qh >> j) << 4) & 0x10), h1 = (int)((qh >> (j + 12)) & 0x10);
                y[j] = (float)(((x[6 + j] & 0x0F) | h0) - 16) * d;
                y[j + 16] = (float)(((x[6 + j] >> 4) | h1) - 16) * d;
            }
        }
        return 1;
    case SK_GGML_Q5_1:
        for (size_t b = 0; b < nblocks; b++, x += 24, y += 32) {
            float d = h2f(x), m = h2f(x + 2);
            uint32_t qh = u32le(x + 4);
            for (int j = 0; j < 16; j++) {
                int h0 = (int)(((qh >> j) << 4) & 0x10), h1 = (int)((qh >> (j + 12)) & 0x10);
                y[j] = (float)((x[8 + j] & 0x0F) | h0) * d + m;
                y[j + 16] = (float)((x[8 + j] >> 4) | h1) * d + m;
            }
        }
        return 1;
    case SK_GGML_Q8_0:
        for (size_t b = 0; b < nblocks; b++, x += 34, y += 32) {
            float d = h2f(x);
            for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)x[2 + j] * d;
        }
        return 1;
    case SK_GGML_Q4_K:
        for (size_t b = 0; b < nblocks; b++, x += 144) {
            float d = h2f(x), dmin = h2f(x + 2);
            const uint8_t *scales = x + 4, *q = x + 16;
            int is = 0;
            for (int j = 0; j < 256; j += 64) {
                uint8_t sc, m;
                get_scale_min_k4(is, scales, &sc, &m);
                float d1 = d * sc, m1 = dmin * m;
                get_scale_min_k4(is + 1, scales, &sc, &m);
                float d2 = d * sc, m2 = dmin * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
                q += 32;
                is += 2;
            }
        }
        return 1;
    case SK_GGML_Q5_K:
        for (size_t b = 0; b < nblocks; b++, x += 176) {
            float d = h2f(x), dmin = h2f(x + 2);
            const uint8_t *scales = x + 4, *qh = x + 16, *ql = x + 48;
            int is = 0;
            uint8_t u1 = 1, u2 = 2;
            for (int j = 0; j < 256; j += 64) {
                uint8_t sc, m;
                get_scale_min_k4(is, scales, &sc, &m);
                float d1 = d * sc, m1 = dmin * m;
                get_scale_min_k4(is + 1, scales, &sc, &m);
                float d2 = d * sc, m2 = dmin * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
                ql += 32;
                is += 2;
                u1 = (uint8_t)(u1 << 2);
                u2 = (uint8_t)(u2 << 2);
            }
        }
        return 1;
    case SK_GGML_Q6_K:
        for (size_t b = 0; b < nblocks; b++, x += 210) {
            const uint8_t *ql = x, *qh = x + 128;
            const int8_t *sc = (const int8_t *)(x + 192);
            float d = h2f(x + 208);
            for (int n = 0; n < 256; n += 128) {
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[is + 0] * q1;
                    y[l + 32] = d * sc[is + 2] * q2;
                    y[l + 64] = d * sc[is + 4] * q3;
                    y[l + 96] = d * sc[is + 6] * q4;
                }
                y += 128;
                ql += 64;
                qh += 32;
                sc += 8;
            }
        }
        return 1;
    default:
        return 0;
    }
}
