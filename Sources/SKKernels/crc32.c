// CRC-32 as zlib, gzip and PNG compute it (reflected polynomial 0xEDB88320, register inverted on
// entry and exit), the SKM format's checksum. The scalar path is slicing-by-8; on x86-64 with
// PCLMULQDQ, 64-byte strides are folded with carry-less multiplies (four 128-bit lanes, then one;
// the fold constants x^k mod P of Intel's "Fast CRC Computation Using PCLMULQDQ" as the Linux
// kernel's crc32-pclmul uses them) and the last 128 bits plus the tail go through the table,
// register 0: after folding, that value is congruent to the message read so far.
#include "sk_kernels.h"
#include <stdlib.h>
#include <string.h>

static uint32_t table[8][256];
static int table_ready = 0;

static void make_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[0][i] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++) table[k][i] = (table[k - 1][i] >> 8) ^ table[0][table[k - 1][i] & 0xff];
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

// The register (not inverted) after `n` more bytes.
static uint32_t update_raw(uint32_t c, const uint8_t *p, size_t n) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) make_table();   // idempotent: racing threads write the same values
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24) ^ c;
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24]
          ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    }
    for (; n > 0; p++, n--) c = table[0][(c ^ *p) & 0xff] ^ (c >> 8);
    return c;
}

uint32_t sk_crc32_scalar(uint32_t crc, const uint8_t *p, size_t n) { return ~update_raw(~crc, p, n); }

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define SK_CLMUL __attribute__((target("pclmul,sse4.1")))

SK_CLMUL static inline __m128i fold(__m128i x, __m128i k, __m128i next) {
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

SK_CLMUL uint32_t sk_crc32_clmul(uint32_t crc, const uint8_t *p, size_t n) {
    if (n < 64) return sk_crc32_scalar(crc, p, n);
    const __m128i k4 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);   // x^(4·128+32) and x^(4·128−32), reflected
    const __m128i k1 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);   // the same for one 128-bit lane
    __m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32)), x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)~crc));
    p += 64;
    n -= 64;
    for (; n >= 64; p += 64, n -= 64) {
        x0 = fold(x0, k4, _mm_loadu_si128((const __m128i *)p));
        x1 = fold(x1, k4, _mm_loadu_si128((const __m128i *)(p + 16)));
        x2 = fold(x2, k4, _mm_loadu_si128((const __m128i *)(p + 32)));
        x3 = fold(x3, k4, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    x0 = fold(x0, k1, x1);
    x0 = fold(x0, k1, x2);
    x0 = fold(x0, k1, x3);
    for (; n >= 16; p += 16, n -= 16) x0 = fold(x0, k1, _mm_loadu_si128((const __m128i *)p));
    uint8_t rest[16];
    _mm_storeu_si128((__m128i *)rest, x0);
    return ~update_raw(update_raw(0, rest, 16), p, n);
}

int sk_crc32_has_clmul(void) {
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    return ((c >> 1) & 1) && ((c >> 19) & 1);   // PCLMULQDQ, SSE4.1
}
#else
uint32_t sk_crc32_clmul(uint32_t crc, const uint8_t *p, size_t n) { return sk_crc32_scalar(crc, p, n); }
int sk_crc32_has_clmul(void) { return 0; }
#endif

uint32_t sk_crc32(uint32_t crc, const uint8_t *p, size_t n) {
    static int path = -1;   // -1 unknown, 0 scalar, 1 carry-less multiply
    if (path < 0) {
        path = sk_kernels_forced() == SK_FORCE_SCALAR ? 0 : sk_crc32_has_clmul();
    }
    return path ? sk_crc32_clmul(crc, p, n) : sk_crc32_scalar(crc, p, n);
}
