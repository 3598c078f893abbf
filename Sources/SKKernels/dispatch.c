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
