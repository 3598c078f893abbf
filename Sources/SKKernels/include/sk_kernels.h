// SinkKit hot kernels: dot products between SKM weight rows and activations, plus activation
// quantization. Each operation has a portable scalar reference, an AVX2 path (x86-64, compiled
// with target attributes so the binary still runs on CPUs without AVX2) and a NEON path
// (aarch64). The path is chosen at run time from the CPU's features. Nothing here allocates
// or knows a model.
#ifndef SK_KERNELS_H
#define SK_KERNELS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// One block of 32 activations quantized to int8: x[i] ≈ d · qs[i]; isum = Σ qs[i].
typedef struct {
    float d;
    int32_t isum;
    int8_t qs[32];
} sk_act_q8;

// A set of kernels. `n` is the row length in elements (a multiple of 32, and of `group`).
// Weight rows use the SKM block layouts (Formats/SKM.md):
//   int8:     per 32 elements: f16 d, int8 q[32]                   x = d·q
//   int4:     per group:       f16 d, f16 m, u8 qs[group/2]        x = d·q + m
//   int4-sym: per group:       f16 d, u8 qs[group/2]               x = d·(q − 8)
// (byte j of qs holds element j in its low nibble, element j + group/2 in its high nibble.)
typedef struct {
    const char *name;
    float (*dot_f32)(const float *w, const float *x, int n);
    float (*dot_f16)(const uint16_t *w, const float *x, int n);
    float (*dot_int8)(const void *w, const sk_act_q8 *a, int n);
    float (*dot_int4)(const void *w, const sk_act_q8 *a, int n, int group);
    float (*dot_int4_sym)(const void *w, const sk_act_q8 *a, int n, int group);
    void (*quantize_act)(const float *x, sk_act_q8 *out, int n);
    // out[r] = dot(row r, a) for `rows` consecutive rows `row_bytes` apart, of block type
    // `type` (SK_INT8, SK_INT4, SK_INT4_SYM): one call per worker and matrix in generation,
    // where SIMD paths share each activation block across several rows.
    void (*gemv)(int type, const void *w, size_t row_bytes, int rows, const sk_act_q8 *a, int n, int group, float *out);
    // gemv over int4 / int4-sym weights (group 32) in the x8 layout (pack.c), rows a multiple of
    // 8; NULL where the path has no such kernel (the runtime then keeps the SKM row layout).
    void (*gemv_int4_x8)(int asym, const void *packed, int rows, const sk_act_q8 *a, int n, float *out);
    void (*gemv_int8_x8)(const void *packed, int rows, const sk_act_q8 *a, int n, float *out);
    // SwiGLU: g[i] = g[i] / (1 + e^(−g[i])) · u[i]. The SIMD paths use a polynomial e^x (Cephes'
    // expf reduction and coefficients, relative error ≲ 2e-7); the scalar path libm's expf.
    void (*silu_mul)(float *g, const float *u, int n);
    // Softmax numerators: x[i] = e^(x[i] − shift) (0 for −inf and below f32's range); returns Σ.
    float (*exp_shift_sum)(float *x, int n, float shift);
} sk_kernel_table;

enum { SK_INT8 = 0, SK_INT4 = 1, SK_INT4_SYM = 2, SK_INT5_SYM = 3 };

// gemv for tables whose rows have no multi-row kernel: one dot per row.
void sk_gemv_rows(const sk_kernel_table *t, int type, const void *w, size_t row_bytes, int rows, const sk_act_q8 *a, int n, int group, float *out);

const sk_kernel_table *sk_kernels_scalar(void);
// NULL when the CPU (or the build's architecture) lacks the instructions.
const sk_kernel_table *sk_kernels_avx2(void);
// The AVX2 table with AVX512-VNNI x8 generation kernels (vnni.c); NULL without VNNI.
const sk_kernel_table *sk_kernels_avx2_vnni(void);
// NEON: the dot-product (sdot) x8 kernels where HWCAP_ASIMDDP says the CPU has them (unless
// SK_NO_SDOT is set), else plain Advanced SIMD; the two tables by name for the tests.
const sk_kernel_table *sk_kernels_neon(void);
const sk_kernel_table *sk_kernels_neon_plain(void);
const sk_kernel_table *sk_kernels_neon_dotprod(void);
// The best table this CPU supports; SK_KERNELS=scalar|avx2|neon in the environment forces one.
const sk_kernel_table *sk_kernels_best(void);
// What SK_KERNELS forces, read once, for every SIMD choice in this library (kernel tables, VNNI
// GEMMs, the quantizer, f16 conversion, CRC-32): SK_FORCE_NONE when unset, unknown, or naming a
// path this CPU lacks (then the best path is taken, as sk_kernels_best does); SK_FORCE_SCALAR
// turns every SIMD path off; SK_FORCE_AVX2 keeps AVX2 (quantizer at 4 lanes, VNNI allowed);
// SK_FORCE_NEON keeps NEON (no VNNI, scalar quantizer).
enum { SK_FORCE_NONE = 0, SK_FORCE_SCALAR = 1, SK_FORCE_AVX2 = 2, SK_FORCE_NEON = 3 };
int sk_kernels_forced(void);

float sk_f16_to_f32(uint16_t h);

// The x8 layout (pack.c): bytes per block of 32 columns × 8 rows; packing from SKM rows (rows a
// multiple of 8, cols of 32); the scalar reference gemv; decoding 8-row groups to f32 rows with
// SKCore's arithmetic (prompt tiles).
size_t sk_x8_block_bytes(int asym);
void sk_pack_int4_x8(const uint8_t *src, size_t row_bytes, int rows, int cols, int asym, uint8_t *dst);
void sk_gemv_int4_x8_scalar(int asym, const void *packed, int rows, const sk_act_q8 *a, int n, float *out);
void sk_unpack_int4_x8(int asym, const void *packed, int rows, int cols, float *out);
// int8: SK_X8_INT8_BLOCK_BYTES per block of 32 columns × 8 rows (f16 d[8], then the codes 4 at a
// time per row: the same as eight SKM blocks).
enum { SK_X8_INT8_BLOCK_BYTES = 272 };
void sk_pack_int8_x8(const uint8_t *src, size_t row_bytes, int rows, int cols, uint8_t *dst);
void sk_gemv_int8_x8_scalar(const void *packed, int rows, const sk_act_q8 *a, int n, float *out);
void sk_unpack_int8_x8(const void *packed, int rows, int cols, float *out);
// One row (i = 0..7) of an 8-row x8 group of type SK_INT8 / SK_INT4 / SK_INT4_SYM, as the
// unpack functions decode it (embedding lookups on a packed tied matrix).
void sk_unpack_x8_row(int type, const void *packed, int cols, int i, float *out);

// Prompt GEMM over x8 weights: out[t·ldo + r] = row r · activation row t (tokens rows of n/32
// blocks each). AVX512-VNNI (vnni.c) and AVX2 (gemm_avx2.c); NULL where the CPU lacks the set.
// `_best`: VNNI unless SK_NO_VNNI, else AVX2; NULL on a forced scalar or NEON path.
typedef void (*sk_gemm_int4_x8_fn)(int asym, const void *packed, int rows, const sk_act_q8 *a, int tokens, int n, float *out, int ldo);
sk_gemm_int4_x8_fn sk_gemm_int4_x8_vnni(void);
sk_gemm_int4_x8_fn sk_gemm_int4_x8_best(void);
typedef void (*sk_gemm_int8_x8_fn)(const void *packed, int rows, const sk_act_q8 *a, int tokens, int n, float *out, int ldo);
sk_gemm_int8_x8_fn sk_gemm_int8_x8_vnni(void);
sk_gemm_int8_x8_fn sk_gemm_int8_x8_best(void);
sk_gemm_int4_x8_fn sk_gemm_int4_x8_avx2(void);
sk_gemm_int8_x8_fn sk_gemm_int8_x8_avx2(void);

// SHA-256 compression of `blocks` 64-byte blocks into the state h (big-endian words, FIPS 180-4);
// SHA-NI where the CPU has it, else the scalar path (both exported for the tests).
void sk_sha256_blocks(uint32_t h[8], const uint8_t *data, size_t blocks);
void sk_sha256_blocks_scalar(uint32_t h[8], const uint8_t *data, size_t blocks);
void sk_sha256_blocks_shani(uint32_t h[8], const uint8_t *data, size_t blocks);
int sk_sha256_has_shani(void);

// CRC-32 (zlib's: reflected 0xEDB88320, `crc` is the previous result, 0 to start) of n more
// bytes; carry-less multiply folding where the CPU has PCLMULQDQ, else slicing-by-8 (both
// exported for the tests).
uint32_t sk_crc32(uint32_t crc, const uint8_t *data, size_t n);
uint32_t sk_crc32_scalar(uint32_t crc, const uint8_t *data, size_t n);
uint32_t sk_crc32_clmul(uint32_t crc, const uint8_t *data, size_t n);
int sk_crc32_has_clmul(void);

// SKM block quantization (quant.c, Formats/SKM.md "How SinkKit quantizes"): `nblocks` consecutive
// blocks of `group` f32 values into consecutive blocks of `type` (SK_INT8 with group 32, SK_INT4,
// SK_INT4_SYM with an even group up to 256). Adds Σ (decoded − x)² to sums[0] and Σ x² to
// sums[1]. Returns -1; the index of the first non-finite input (nothing written); or -2 for bad
// arguments. The SIMD paths (`width` 4: AVX2, 8: AVX-512; the scalar path where the CPU lacks
// the set) write the scalar path's bytes; NEON builds use the scalar path. `sk_quantize_blocks`
// takes the widest the CPU has unless SK_KERNELS forces scalar/neon (scalar) or avx2 (width 4).
int64_t sk_quantize_blocks(int type, const float *x, size_t nblocks, int group, uint8_t *out, double sums[2]);
// Importance-weighted int4 / int4-sym (quant_weighted.c): the same searches with every error and fit
// weighted by colWeights[(block start) mod cols + j] (per input column of a `cols`-wide matrix).
// Returns -1, the index of a non-finite input, or -2 for bad arguments.
int64_t sk_quantize_blocks_weighted(int type, const float *x, size_t nblocks, int group, const float *colWeights, size_t cols,
                                    uint8_t *out, double sums[2]);
// int5-sym blocks (Formats/SKM.md): f16 d, then the low four bits of the 5-bit codes packed as
// int4-sym's, then their fifth bits, one bit per element, little-endian; x = d·(q − 16). Its
// search is quant_weighted.c's symmetric one with 16 levels each side; `sk_quantize_blocks` and
// its _scalar/_simd twins take SK_INT5_SYM and run it with unit weights (one scalar path).
// Expands blocks of `group` (32, 64, 128) into int8 blocks of 32 with the same scale and codes
// q − 16 (what the runtime's int8 kernels read).
void sk_int5_sym_to_int8(const uint8_t *src, size_t nblocks, int group, uint8_t *dst);
int64_t sk_quantize_blocks_scalar(int type, const float *x, size_t nblocks, int group, uint8_t *out, double sums[2]);
int64_t sk_quantize_blocks_simd(int width, int type, const float *x, size_t nblocks, int group, uint8_t *out, double sums[2]);
// 8 with AVX-512 (F, DQ, VL), 4 with AVX2, else 0.
int sk_quantize_simd_width(void);
// f16 <-> f32 in bulk (half.c; the f16 KV cache): f32 -> f16 to nearest, ties to even, overflow
// to ±inf; f16 -> f32 exact. `_n` takes F16C (x86-64) or NEON where present unless SK_KERNELS=scalar;
// `_simd` / `_scalar` are each path (the SIMD one only where `sk_half_simd()`), for the tests.
void sk_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void sk_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);
void sk_f16_to_f32_n_scalar(const uint16_t *src, float *dst, size_t n);
void sk_f32_to_f16_n_scalar(const float *src, uint16_t *dst, size_t n);
void sk_f16_to_f32_n_simd(const uint16_t *src, float *dst, size_t n);
void sk_f32_to_f16_n_simd(const float *src, uint16_t *dst, size_t n);
int sk_half_simd(void);
uint16_t sk_f32_to_f16_scalar(float f);
// Index of the first NaN or ±Inf among n floats, or -1.
int64_t sk_first_nonfinite(const float *x, size_t n);
// f64 → binary16 bits, to nearest, ties to even (one rounding, as Swift's Float16(Double)).
uint16_t sk_f64_to_f16(double v);

// GGUF tensors (ggml block types; the numbers are ggml's type ids): block geometry, and decoding
// `nblocks` blocks to f32 as ggml's reference dequantizers do (ggml_dequant.c). Both return 0
// for a type they do not handle.
enum { SK_GGML_F32 = 0, SK_GGML_F16 = 1, SK_GGML_Q4_0 = 2, SK_GGML_Q4_1 = 3, SK_GGML_Q5_0 = 6, SK_GGML_Q5_1 = 7,
       SK_GGML_Q8_0 = 8, SK_GGML_Q4_K = 12, SK_GGML_Q5_K = 13, SK_GGML_Q6_K = 14, SK_GGML_BF16 = 30 };
int sk_ggml_block_info(int type, int *block_elements, int *block_bytes);
int sk_ggml_dequantize(int type, const uint8_t *src, size_t nblocks, float *dst);

// The git commit the library was built from ("unknown" unless the build defined SK_COMMIT).
const char *sk_build_commit(void);

// int8 KV cache rows (kv_int8.c): blocks of `block` elements (32, or the whole vector), each an
// f16 scale and int8 codes (Q8_0's rule). dot: row · q; axpy: out += w · row. The _scalar
// functions are the reference; _simd the AVX2+FMA path (scalar where the CPU lacks it).
size_t sk_kv8_row_bytes(int hd, int block);
void sk_kv8_quantize(const float *x, uint8_t *row, int hd, int block);
void sk_kv8_dequantize(const uint8_t *row, float *out, int hd, int block);
float sk_kv8_dot(const uint8_t *row, const float *q, int hd, int block);
void sk_kv8_axpy(float *out, float w, const uint8_t *row, int hd, int block);
float sk_kv8_dot_scalar(const uint8_t *row, const float *q, int hd, int block);
void sk_kv8_axpy_scalar(float *out, float w, const uint8_t *row, int hd, int block);
float sk_kv8_dot_simd(const uint8_t *row, const float *q, int hd, int block);
void sk_kv8_axpy_simd(float *out, float w, const uint8_t *row, int hd, int block);
int sk_kv8_simd(void);
// A whole head's slots in one call: out[t] = scale · row(slots[t]) · q; out += Σ w[t] · row(slots[t]).
// f16 KV rows (kv_f16.c), a whole head's listed slots per call: out[t] = scale · q · k[slots[t]],
// and out += Σ_t w[t] · v[slots[t]]. SIMD (AVX2+F16C, NEON) where hd is a multiple of 8 and
// SK_KERNELS is not scalar; the scalar reference and each path exported for the tests.
void sk_kv16_scores(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd);
void sk_kv16_accumulate(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd);
void sk_kv16_scores_scalar(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd);
void sk_kv16_accumulate_scalar(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd);
void sk_kv16_scores_simd(const uint16_t *base, const long *slots, int count, const float *q, float scale, float *out, int hd);
void sk_kv16_accumulate_simd(float *out, const float *w, const uint16_t *base, const long *slots, int count, int hd);
int sk_kv16_simd(void);
void sk_kv8_scores(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, float scale, float *out, int hd, int block);
void sk_kv8_accumulate(float *out, const float *w, const uint8_t *base, size_t row_bytes, const long *slots, int count, int hd, int block);
// f32 KV decode, the g query heads of one KV head (q: g rows of hd floats) against the same
// slots: out[h·ostride + t] = dot_f32(key[slots[t]], q_h) · scale with the kernel table's dot_f32,
// bit for bit (kv_group.c); out[h·hd + d] += Σ_t w[h·wstride + t] · value[slots[t]][d], each
// product rounded before its sum (no fused multiply-add), slots in order (kv_f32.c; _scalar: the
// portable reference).
void sk_kv32_scores_group(const float *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd);
void sk_kv32_accumulate_group(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd);
void sk_kv32_accumulate_scalar(float *out, const float *w, size_t wstride, const float *base, const long *slots, int count, int g, int hd);
// GQA decode (kv_group.c): the g query heads of one KV head (q: g rows of hd floats) against the
// same slots in one pass over the rows: out[h·ostride + t] and out[h·hd …] += Σ_t w[h·wstride + t]·v,
// each head bit for bit what the per-head call above gives (AVX2 group kernels; elsewhere the
// per-head calls in a loop).
void sk_kv16_scores_group(const uint16_t *base, const long *slots, int count, const float *q, int g, float scale, float *out, size_t ostride, int hd);
void sk_kv16_accumulate_group(float *out, const float *w, size_t wstride, const uint16_t *base, const long *slots, int count, int g, int hd);
void sk_kv8_scores_group(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, int g, float scale,
                         float *out, size_t ostride, int hd, int block);
void sk_kv8_accumulate_group(float *out, const float *w, size_t wstride, const uint8_t *base, size_t row_bytes, const long *slots,
                             int count, int g, int hd, int block);
// int4 KV rows (same file): blocks of `block` (even) elements, an f16 scale max|x|/7 and 4-bit
// codes c (x ≈ d·(c − 8); element j in the low nibble of byte j/2 when even, high when odd). AVX2 and
// NEON paths (sk_kv4_dot/axpy dispatch by CPU) with the portable scalar reference (_scalar).
size_t sk_kv4_row_bytes(int hd, int block);
// The orthonormal Walsh-Hadamard transform of x (n a power of two) in place: x <- H x / sqrt(n).
// Its own inverse. int4 KV rows store H k and H v (outliers spread over the whole head, QuaRot's
// rotation): q . k = (H q) . (H k), and sum w v = H (sum w H v).
void sk_fwht(float *x, int n);
void sk_kv4_quantize(const float *x, uint8_t *row, int hd, int block);
void sk_kv4_dequantize(const uint8_t *row, float *out, int hd, int block);
float sk_kv4_dot(const uint8_t *row, const float *q, int hd, int block);
float sk_kv4_dot_scalar(const uint8_t *row, const float *q, int hd, int block);
void sk_kv4_axpy_scalar(float *out, float w, const uint8_t *row, int hd, int block);
float sk_kv4_dot_simd(const uint8_t *row, const float *q, int hd, int block);
void sk_kv4_axpy_simd(float *out, float w, const uint8_t *row, int hd, int block);
void sk_kv4_axpy(float *out, float w, const uint8_t *row, int hd, int block);
void sk_kv4_scores(const uint8_t *base, size_t row_bytes, const long *slots, int count, const float *q, float scale, float *out, int hd, int block);
void sk_kv4_accumulate(float *out, const float *w, const uint8_t *base, size_t row_bytes, const long *slots, int count, int hd, int block);

// KIVI int4 keys (kv_kivi.c): per channel over a group of slots, an f16 scale and minimum per
// channel (params: hd scales, then hd minimums; group g's at params + g·2·hd); a slot's row is
// hd/2 bytes of 4-bit codes (low nibble first) then a little-endian u32 group id, or
// SK_KIVI_PENDING | i for a key not yet sealed, stored as f16 at pending + i·hd.
#define SK_KIVI_PENDING 0x80000000u
// Seals n keys (rows: n × hd floats): writes one group's params and the n code rows (hd/2 bytes each, contiguous).
void sk_kivi_seal(const float *rows, int n, int hd, uint16_t *params, uint8_t *codes);
void sk_kivi_dequantize(const uint8_t *row, const uint16_t *params, const uint16_t *pending, float *out, int hd);
// Σ_j qd[j] · c_j over a row's codes (AVX2 / NEON where hd is a multiple of 16 / 8; _scalar: the reference).
float sk_kivi_dot_scalar(const uint8_t *codes, const float *qd, int hd);
float sk_kivi_dot_simd(const uint8_t *codes, const float *qd, int hd);
// out[t] = scale · q · k[slots[t]] (sealed or pending), a whole head's listed slots per call.
void sk_kivi_scores(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending, const long *slots, int count,
                    const float *q, float scale, float *out, int hd);
void sk_kivi_scores_scalar(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending, const long *slots,
                           int count, const float *q, float scale, float *out, int hd);
// GQA: the g query heads of one KV head (q: g rows of hd) against the same slots, out[h·ostride + t]
// each head's sk_kivi_scores bit for bit. Returns 0 (and writes nothing) where it has no kernel
// (AVX2 with hd 64 and g ≤ 16 only): the caller then calls sk_kivi_scores head by head.
int sk_kivi_scores_group(const uint8_t *base, size_t row_bytes, const uint16_t *params, const uint16_t *pending, const long *slots,
                         int count, const float *q, int g, float scale, float *out, size_t ostride, int hd);

#ifdef __cplusplus
}
#endif
#endif
