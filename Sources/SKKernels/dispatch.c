#include "sk_kernels.h"
#include <stdlib.h>
#include <string.h>

int sk_kernels_forced(void) {
    static int forced = -1;
    if (forced < 0) {
        const char *f = getenv("SK_KERNELS");
        int v = SK_FORCE_NONE;
        if (f && strcmp(f, "scalar") == 0) v = SK_FORCE_SCALAR;
        else if (f && strcmp(f, "avx2") == 0 && sk_kernels_avx2()) v = SK_FORCE_AVX2;
        else if (f && strcmp(f, "neon") == 0 && sk_kernels_neon()) v = SK_FORCE_NEON;
        forced = v;
    }
    return forced;
}

const sk_kernel_table *sk_kernels_best(void) {
    static const sk_kernel_table *chosen = NULL;
    if (chosen) return chosen;
    const sk_kernel_table *t = NULL;
    switch (sk_kernels_forced()) {
    case SK_FORCE_SCALAR: t = sk_kernels_scalar(); break;
    case SK_FORCE_AVX2: t = sk_kernels_avx2(); break;
    case SK_FORCE_NEON: t = sk_kernels_neon(); break;
    default: break;
    }
    // unforced: VNNI generation kernels where the CPU has them (SK_NO_VNNI=1 for an A/B run)
    if (!t && sk_kernels_forced() == SK_FORCE_NONE && !getenv("SK_NO_VNNI")) t = sk_kernels_avx2_vnni();
    if (!t) t = sk_kernels_avx2();
    if (!t) t = sk_kernels_neon();
    if (!t) t = sk_kernels_scalar();
    chosen = t;
    return t;
}

void sk_gemv_rows(const sk_kernel_table *t, int type, const void *w, size_t row_bytes, int rows, const sk_act_q8 *a, int n, int group, float *out) {
    const uint8_t *p = (const uint8_t *)w;
    for (int r = 0; r < rows; r++, p += row_bytes) {
        switch (type) {
        case SK_INT8: out[r] = t->dot_int8(p, a, n); break;
        case SK_INT4: out[r] = t->dot_int4(p, a, n, group); break;
        default: out[r] = t->dot_int4_sym(p, a, n, group); break;
        }
    }
}
