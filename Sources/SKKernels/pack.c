// The x8 layout of int4 / int4-sym weights (group 32), built in memory at load time from the
// SKM row layout: rows in groups of 8, and per block of 32 columns
//
//     f16 d[8]            the 8 rows' scales
//     f16 m[8]            (int4 only) the 8 rows' minima
//     u8  q[4][8][4]      for p = 0..3, row i = 0..7, e = 0..3: the code of element 4p+e in the
//                         low nibble and of element 16+4p+e in the high nibble
//
// so one 32-byte load gives, for 8 rows at once, 4 consecutive codes each (and, in the high
// nibbles, the 4 codes 16 further on): the AVX2 kernel multiplies them with one broadcast 4-byte
// group of activations and keeps one int32 lane per row, and the 8 scales load as one vector.
// The scalar functions here are the reference the SIMD kernel is tested against.
#include "sk_kernels.h"
#include <string.h>

size_t sk_x8_block_bytes(int asym) { return (asym ? 32 : 16) + 128; }

void sk_pack_int4_x8(const uint8_t *src, size_t row_bytes, int rows, int cols, int asym, uint8_t *dst) {
    const int nb = cols / 32, sbytes = asym ? 20 : 18, qoff = asym ? 4 : 2;
    const size_t bb = sk_x8_block_bytes(asym);
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        for (int b = 0; b < nb; b++, dst += bb) {
            uint8_t *q = dst + (asym ? 32 : 16);
            for (int i = 0; i < 8; i++) {
                const uint8_t *blk = src + (size_t)(r0 + i) * row_bytes + (size_t)b * sbytes;
                memcpy(dst + 2 * i, blk, 2);
                if (asym) memcpy(dst + 16 + 2 * i, blk + 2, 2);
                // SKM: byte j holds element j (low nibble) and j + 16 (high nibble)
                for (int p = 0; p < 4; p++)
                    for (int e = 0; e < 4; e++) q[32 * p + 4 * i + e] = blk[qoff + 4 * p + e];
            }
        }
    }
}

// The SKM codes happen to pair elements j and j + 16 in one byte already, so the x8 byte for
// (p, row, e) is the SKM byte 4p + e of that row's block: packing only moves bytes.

void sk_gemv_int4_x8_scalar(int asym, const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32;
    const size_t bb = sk_x8_block_bytes(asym);
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        float s[8] = {0};
        for (int b = 0; b < nb; b++, w += bb) {
            const uint8_t *q = w + (asym ? 32 : 16);
            for (int i = 0; i < 8; i++) {
                int32_t acc = 0;
                for (int p = 0; p < 4; p++) {
                    for (int e = 0; e < 4; e++) {
                        uint8_t byte = q[32 * p + 4 * i + e];
                        acc += (byte & 15) * a[b].qs[4 * p + e] + (byte >> 4) * a[b].qs[16 + 4 * p + e];
                    }
                }
                uint16_t dh, mh;
                memcpy(&dh, w + 2 * i, 2);
                float d = sk_f16_to_f32(dh);
                if (asym) {
                    memcpy(&mh, w + 16 + 2 * i, 2);
                    s[i] += d * a[b].d * (float)acc + sk_f16_to_f32(mh) * a[b].d * (float)a[b].isum;
                } else {
                    s[i] += d * a[b].d * (float)(acc - 8 * a[b].isum);
                }
            }
        }
        for (int i = 0; i < 8; i++) out[r0 + i] = s[i];
    }
}

void sk_unpack_int4_x8(int asym, const void *packed, int rows, int cols, float *out) {
    const size_t gb = sk_x8_block_bytes(asym) * (size_t)(cols / 32);
    for (int r = 0; r < rows; r++)
        sk_unpack_x8_row(asym ? SK_INT4 : SK_INT4_SYM, (const uint8_t *)packed + (size_t)(r / 8) * gb, cols, r % 8, out + (size_t)r * cols);
}

// int8 in the x8 layout: per 8 rows and block of 32 columns, f16 d[8], then for p = 0..7,
// row i = 0..7, e = 0..3: the int8 code of element 4p+e (256 bytes; SK_X8_INT8_BLOCK_BYTES = 272
// per block, the same as eight SKM blocks).
void sk_pack_int8_x8(const uint8_t *src, size_t row_bytes, int rows, int cols, uint8_t *dst) {
    const int nb = cols / 32;
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        for (int b = 0; b < nb; b++, dst += SK_X8_INT8_BLOCK_BYTES) {
            for (int i = 0; i < 8; i++) {
                const uint8_t *blk = src + (size_t)(r0 + i) * row_bytes + (size_t)b * 34;
                memcpy(dst + 2 * i, blk, 2);
                for (int p = 0; p < 8; p++) memcpy(dst + 16 + 32 * p + 4 * i, blk + 2 + 4 * p, 4);
            }
        }
    }
}

void sk_gemv_int8_x8_scalar(const void *packed, int rows, const sk_act_q8 *a, int n, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = n / 32;
    for (int r0 = 0; r0 + 8 <= rows; r0 += 8) {
        float s[8] = {0};
        for (int b = 0; b < nb; b++, w += SK_X8_INT8_BLOCK_BYTES) {
            for (int i = 0; i < 8; i++) {
                int32_t acc = 0;
                for (int p = 0; p < 8; p++)
                    for (int e = 0; e < 4; e++) acc += (int8_t)w[16 + 32 * p + 4 * i + e] * a[b].qs[4 * p + e];
                uint16_t dh;
                memcpy(&dh, w + 2 * i, 2);
                s[i] += sk_f16_to_f32(dh) * a[b].d * (float)acc;
            }
        }
        for (int i = 0; i < 8; i++) out[r0 + i] = s[i];
    }
}

void sk_unpack_int8_x8(const void *packed, int rows, int cols, float *out) {
    const size_t gb = (size_t)SK_X8_INT8_BLOCK_BYTES * (size_t)(cols / 32);
    for (int r = 0; r < rows; r++)
        sk_unpack_x8_row(SK_INT8, (const uint8_t *)packed + (size_t)(r / 8) * gb, cols, r % 8, out + (size_t)r * cols);
}

// Row i (0-7) of one 8-row x8 group (`packed` at the group's first block) as f32, with SKCore's
// Dequantize arithmetic (d·q + m, d·(q − 8), d·q): a token embedding lookup on a packed tied
// matrix, and row by row the unpack functions above.
void sk_unpack_x8_row(int type, const void *packed, int cols, int i, float *out) {
    const uint8_t *w = (const uint8_t *)packed;
    const int nb = cols / 32, asym = type == SK_INT4;
    if (type == SK_INT8) {
        for (int b = 0; b < nb; b++, w += SK_X8_INT8_BLOCK_BYTES) {
            uint16_t dh;
            memcpy(&dh, w + 2 * i, 2);
            float d = sk_f16_to_f32(dh), *o = out + 32 * b;
            for (int p = 0; p < 8; p++)
                for (int e = 0; e < 4; e++) o[4 * p + e] = d * (float)(int8_t)w[16 + 32 * p + 4 * i + e];
        }
        return;
    }
    const size_t bb = sk_x8_block_bytes(asym);
    for (int b = 0; b < nb; b++, w += bb) {
        const uint8_t *q = w + (asym ? 32 : 16);
        uint16_t dh, mh = 0;
        memcpy(&dh, w + 2 * i, 2);
        if (asym) memcpy(&mh, w + 16 + 2 * i, 2);
        float d = sk_f16_to_f32(dh), m = sk_f16_to_f32(mh), *o = out + 32 * b;
        for (int p = 0; p < 4; p++) {
            for (int e = 0; e < 4; e++) {
                uint8_t byte = q[32 * p + 4 * i + e];
                if (asym) {
                    o[4 * p + e] = d * (float)(byte & 15) + m;
                    o[16 + 4 * p + e] = d * (float)(byte >> 4) + m;
                } else {
                    o[4 * p + e] = d * (float)((byte & 15) - 8);
                    o[16 + 4 * p + e] = d * (float)((byte >> 4) - 8);
                }
            }
        }
    }
}
