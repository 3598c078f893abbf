// Importance-weighted block quantization (int4, int4-sym): the searches of Formats/SKM.md with
// every squared error and least-squares fit weighted by w_j, the importance of the block's j-th
// column (an activation statistic, `skconv calibrate`): minimising Σ_j w_j (x̂_j − x_j)² is
// minimising the expected squared error of the layer's output when input j has mean square w_j.
// Same candidates, anchors and refinement rounds as the unweighted rule; the final codes are the
// nearest ones to the f16 scale and minimum (the weights cannot change which code is nearest).
// Scalar only: calibrated quantization is run once per model and favours simplicity.
#include "sk_kernels.h"
#include <math.h>
#include <string.h>

// No contraction into fused multiply-adds (as quant.c): every operation rounds, on every target.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define MAX_GROUP 256

static inline double rint_even_w(double v) { return nearbyint(v); }
static inline double clampw(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline void put16w(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static int fit_asym_w(const double *x, const double *w, const double *L, int g, double *d, double *m) {
    double W = 0, A = 0, B = 0, X = 0, Y = 0;
    for (int j = 0; j < g; j++) { W += w[j]; A += w[j] * L[j]; B += w[j] * L[j] * L[j]; X += w[j] * x[j]; Y += w[j] * x[j] * L[j]; }
    double D = W * B - A * A;
    if (!(D > 0)) return 0;
    double dk = (W * Y - A * X) / D, mk = (B * X - A * Y) / D;
    if (!(dk > 0)) return 0;
    *d = dk;
    *m = mk;
    return 1;
}

static double err_asym_w(const double *x, const double *w, const double *L, int g, double d, double m) {
    double e = 0;
    for (int j = 0; j < g; j++) { double r = d * L[j] + m - x[j]; e += w[j] * r * r; }
    return e;
}

static void search_int4_w(const double *x, const double *w, int g, double *dout, double *mout) {
    double lo = x[0], hi = x[0];
    for (int j = 1; j < g; j++) { lo = x[j] < lo ? x[j] : lo; hi = x[j] > hi ? x[j] : hi; }
    double d = 0, m = lo;
    if (hi != lo) {
        double L[MAX_GROUP];
        d = (hi - lo) / 15;
        for (int j = 0; j < g; j++) L[j] = clampw(rint_even_w((x[j] - lo) / d), 0, 15);
        double best = err_asym_w(x, w, L, g, d, m), range = hi - lo;
        for (int anchor = 0; anchor < 2; anchor++) {
            for (int k = 0; k <= 20; k++) {
                double s = (15 + 0.1 * (double)(k - 10)) / range, dk, mk;
                if (anchor == 0) for (int j = 0; j < g; j++) L[j] = clampw(rint_even_w(s * (x[j] - lo)), 0, 15);
                else for (int j = 0; j < g; j++) L[j] = clampw(15 - rint_even_w(s * (hi - x[j])), 0, 15);
                if (!fit_asym_w(x, w, L, g, &dk, &mk)) continue;
                double e = err_asym_w(x, w, L, g, dk, mk);
                if (e < best) { best = e; d = dk; m = mk; }
            }
        }
        for (int r = 0; r < 2; r++) {
            double dr, mr;
            for (int j = 0; j < g; j++) L[j] = clampw(rint_even_w((x[j] - m) / d), 0, 15);
            if (!fit_asym_w(x, w, L, g, &dr, &mr)) break;
            double e = err_asym_w(x, w, L, g, dr, mr);
            if (e < best) { best = e; d = dr; m = mr; } else break;
        }
    }
    *dout = d;
    *mout = m;
}

static int fit_sym_w(const double *x, const double *w, const double *c, int g, double *dk, double *e) {
    double xc = 0, cc = 0;
    for (int j = 0; j < g; j++) { xc += w[j] * x[j] * c[j]; cc += w[j] * c[j] * c[j]; }
    if (!(cc > 0)) return 0;
    *dk = xc / cc;
    *e = 0;
    for (int j = 0; j < g; j++) { double r = *dk * c[j] - x[j]; *e += w[j] * r * r; }
    return 1;
}

// The symmetric search with codes in [−n, n − 1] (n = 8: int4-sym, 16: int5-sym): the largest
// magnitude v anchors 21 scales −(n + 0.1·(k − 10))/v, each refitted by weighted least squares,
// then two refinement rounds; the first of the least errors wins.
static double search_sym_w(const double *x, const double *w, int g, int n) {
    double v = 0;
    for (int j = 0; j < g; j++) if (fabs(x[j]) > fabs(v)) v = x[j];
    if (v == 0) return 0;
    double c[MAX_GROUP], d = v / -n, best = 0, dk, e, lo = -n, hi = n - 1;
    for (int j = 0; j < g; j++) c[j] = clampw(rint_even_w(x[j] / d), lo, hi);
    for (int j = 0; j < g; j++) { double r = d * c[j] - x[j]; best += w[j] * r * r; }
    for (int k = 0; k <= 20; k++) {
        double s = -(n + 0.1 * (double)(k - 10)) / v;
        for (int j = 0; j < g; j++) c[j] = clampw(rint_even_w(s * x[j]), lo, hi);
        if (fit_sym_w(x, w, c, g, &dk, &e) && e < best) { best = e; d = dk; }
    }
    for (int r = 0; r < 2; r++) {
        for (int j = 0; j < g; j++) c[j] = clampw(rint_even_w(x[j] / d), lo, hi);
        if (!fit_sym_w(x, w, c, g, &dk, &e) || !(e < best)) break;
        best = e;
        d = dk;
    }
    return d;
}

int64_t sk_quantize_blocks_weighted(int type, const float *x, size_t nblocks, int group, const float *colWeights, size_t cols,
                                    uint8_t *out, double sums[2]) {
    if ((type != SK_INT4 && type != SK_INT4_SYM && type != SK_INT5_SYM) || group < 2 || group > MAX_GROUP || group % 2 != 0 || cols == 0 || cols % (size_t)group != 0)
        return -2;
    if (type == SK_INT5_SYM && group % 8 != 0) return -2;
    int64_t bad = sk_first_nonfinite(x, nblocks * (size_t)group);
    if (bad >= 0) return bad;
    size_t bb = (type == SK_INT4 ? 4 : 2) + (size_t)group / 2 + (type == SK_INT5_SYM ? (size_t)group / 8 : 0);
    double xs[MAX_GROUP], ws[MAX_GROUP];
    uint8_t q[MAX_GROUP];
    for (size_t b = 0; b < nblocks; b++) {
        const float *xb = x + b * (size_t)group;
        const float *wb = colWeights ? colWeights + (b * (size_t)group) % cols : NULL;
        uint8_t *ob = out + b * bb;
        for (int j = 0; j < group; j++) { xs[j] = xb[j]; ws[j] = colWeights ? wb[j] : 1.0; }
        double sse = 0, ssq = 0;
        if (type == SK_INT4) {
            double d, m;
            search_int4_w(xs, ws, group, &d, &m);
            uint16_t hd = sk_f64_to_f16(d), hm = sk_f64_to_f16(m);
            put16w(ob, hd); put16w(ob + 2, hm);
            float df = sk_f16_to_f32(hd), mf = sk_f16_to_f32(hm);
            for (int j = 0; j < group; j++) {
                double qj = df == 0 ? 0 : clampw(rint_even_w(((double)xb[j] - mf) / df), 0, 15);
                q[j] = (uint8_t)qj;
                double r = (double)(df * (float)qj + mf) - (double)xb[j];
                sse += r * r; ssq += (double)xb[j] * xb[j];
            }
            for (int j = 0; j < group / 2; j++) ob[4 + j] = (uint8_t)(q[j] | (q[j + group / 2] << 4));
        } else if (type == SK_INT5_SYM) {
            uint16_t hd = sk_f64_to_f16(search_sym_w(xs, ws, group, 16));
            put16w(ob, hd);
            float df = sk_f16_to_f32(hd);
            for (int j = 0; j < group; j++) {
                double cj = df == 0 ? 0 : clampw(rint_even_w((double)xb[j] / df), -16, 15);
                q[j] = (uint8_t)(cj + 16);
                double r = (double)(df * (float)cj) - (double)xb[j];
                sse += r * r; ssq += (double)xb[j] * xb[j];
            }
            for (int j = 0; j < group / 2; j++) ob[2 + j] = (uint8_t)((q[j] & 15) | ((q[j + group / 2] & 15) << 4));
            for (int j = 0; j < group / 8; j++) {
                uint8_t h = 0;
                for (int k = 0; k < 8; k++) h |= (uint8_t)(((q[8 * j + k] >> 4) & 1) << k);
                ob[2 + group / 2 + j] = h;
            }
        } else {
            uint16_t hd = sk_f64_to_f16(search_sym_w(xs, ws, group, 8));
            put16w(ob, hd);
            float df = sk_f16_to_f32(hd);
            for (int j = 0; j < group; j++) {
                double cj = df == 0 ? 0 : clampw(rint_even_w((double)xb[j] / df), -8, 7);
                q[j] = (uint8_t)(cj + 8);
                double r = (double)(df * (float)cj) - (double)xb[j];
                sse += r * r; ssq += (double)xb[j] * xb[j];
            }
            for (int j = 0; j < group / 2; j++) ob[2 + j] = (uint8_t)(q[j] | (q[j + group / 2] << 4));
        }
        sums[0] += sse;
        sums[1] += ssq;
    }
    return -1;
}

void sk_int5_sym_to_int8(const uint8_t *src, size_t nblocks, int group, uint8_t *dst) {
    size_t bb = 2 + (size_t)group / 2 + (size_t)group / 8;
    int h = group / 2;
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *s = src + b * bb;
        for (int j = 0; j < group; j++) {
            if (j % 32 == 0) { dst[0] = s[0]; dst[1] = s[1]; dst += 2; }
            int lo = j < h ? s[2 + j] & 15 : s[2 + j - h] >> 4;
            int hi = (s[2 + h + j / 8] >> (j % 8)) & 1;
            *dst++ = (uint8_t)(int8_t)((lo | (hi << 4)) - 16);
        }
    }
}
