#include "sk_kernels.h"
#include <stdlib.h>
#include <string.h>

const sk_kernel_table *sk_kernels_best(void) {
    static const sk_kernel_table *chosen = NULL;
    if (chosen) return chosen;
    const char *force = getenv("SK_KERNELS");
    const sk_kernel_table *t = NULL;
    if (force && strcmp(force, "scalar") == 0) t = sk_kernels_scalar();
    else if (force && strcmp(force, "avx2") == 0) t = sk_kernels_avx2();
    else if (force && strcmp(force, "neon") == 0) t = sk_kernels_neon();
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
