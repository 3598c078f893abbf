// The lane form of quant.c's searches, included once per instruction set (AVX2: 4 f64 lanes,
// AVX-512: 8), with these defined by the includer:
//   L lanes; V an f64 vector of L lanes; M its lane mask; F / I an f32 / i32 vector of L lanes;
//   T the target attribute; FN(name) the per-set function name;
//   vset1 vzero vadd vsub vmul vdiv vmin vmax vround vabs vload vstore; mcmp(a, b, pred) → M;
//   mand mnz(M) (any lane set) vsel(M, yes, no) vkeep(M, v) (v where set, +0 elsewhere);
//   fload fmul fadd v2f f2v; v2i istore.
// Every lane does quant.c's scalar operations in the scalar order, so the bytes are the same.

// clampd exactly: max(lo, v) is v unless lo > v (so v on equality and for NaN), then min(hi, ·)
// likewise.
T static inline V FN(vclamp)(V v, V lo, V hi) { return vmin(hi, vmax(lo, v)); }

// int4-sym: for nc code vectors C[t·g + j], dk = Σ x·c / Σ c² (ok where Σ c² > 0) and E.
T static inline void FN(sym_eval)(const V *X, int g, const V *C, int nc, V *dk, M *ok, V *e) {
    V xc[NC], cc[NC];
    for (int t = 0; t < nc; t++) { xc[t] = vzero(); cc[t] = vzero(); }
    for (int j = 0; j < g; j++)
        for (int t = 0; t < nc; t++) {
            V c = C[t * g + j];
            xc[t] = vadd(xc[t], vmul(X[j], c));
            cc[t] = vadd(cc[t], vmul(c, c));
        }
    for (int t = 0; t < nc; t++) {
        ok[t] = mcmp(cc[t], vzero(), _CMP_GT_OQ);
        dk[t] = vdiv(xc[t], cc[t]);
        e[t] = vzero();
    }
    for (int j = 0; j < g; j++)
        for (int t = 0; t < nc; t++) {
            V r = vsub(vmul(dk[t], C[t * g + j]), X[j]);
            e[t] = vadd(e[t], vmul(r, r));
        }
}

// int4-sym's search for L blocks, X[j] holding element j of each; C is scratch for NC·g codes.
T static V FN(sym_search)(const V *X, int g, V *C) {
    const V lo = vset1(-8), hi = vset1(7);
    V v = vzero();
    for (int j = 0; j < g; j++) v = vsel(mcmp(vabs(X[j]), vabs(v), _CMP_GT_OQ), X[j], v);
    M active = mcmp(v, vzero(), _CMP_NEQ_OQ);
    V d = vdiv(v, vset1(-8)), best = vzero();
    for (int j = 0; j < g; j++) {
        V c = FN(vclamp)(vround(vdiv(X[j], d)), lo, hi);
        V r = vsub(vmul(d, c), X[j]);
        best = vadd(best, vmul(r, r));
    }
    for (int k0 = 0; k0 <= 20; k0 += NC) {
        int nc = 21 - k0 < NC ? 21 - k0 : NC;
        V dk[NC], e[NC];
        M ok[NC];
        for (int t = 0; t < nc; t++) {
            V s = vdiv(vset1(-(8 + 0.1 * (double)(k0 + t - 10))), v);
            for (int j = 0; j < g; j++) C[t * g + j] = FN(vclamp)(vround(vmul(s, X[j])), lo, hi);
        }
        if (nc == NC) FN(sym_eval)(X, g, C, NC, dk, ok, e);
        else FN(sym_eval)(X, g, C, nc, dk, ok, e);
        for (int t = 0; t < nc; t++) {
            M upd = mand(mand(active, ok[t]), mcmp(e[t], best, _CMP_LT_OQ));
            best = vsel(upd, e[t], best);
            d = vsel(upd, dk[t], d);
        }
    }
    M live = active;
    for (int r = 0; r < 2; r++) {
        V dk, e;
        M ok;
        for (int j = 0; j < g; j++) C[j] = FN(vclamp)(vround(vdiv(X[j], d)), lo, hi);
        FN(sym_eval)(X, g, C, 1, &dk, &ok, &e);
        live = mand(mand(live, ok), mcmp(e, best, _CMP_LT_OQ));
        best = vsel(live, e, best);
        d = vsel(live, dk, d);
    }
    return vkeep(active, d);   // +0 where v = 0
}

// int4: least-squares (d, m) for nc code vectors (ok where D > 0 and d > 0) and E.
T static inline void FN(asym_eval)(const V *X, int g, V Xsum, const V *Lc, int nc, V *dk, V *mk, M *ok, V *e) {
    V A[NC], B[NC], Y[NC];
    for (int t = 0; t < nc; t++) { A[t] = vzero(); B[t] = A[t]; Y[t] = A[t]; }
    for (int j = 0; j < g; j++)
        for (int t = 0; t < nc; t++) {
            V l = Lc[t * g + j];
            A[t] = vadd(A[t], l);
            B[t] = vadd(B[t], vmul(l, l));
            Y[t] = vadd(Y[t], vmul(X[j], l));
        }
    V n = vset1((double)g);
    for (int t = 0; t < nc; t++) {
        V D = vsub(vmul(n, B[t]), vmul(A[t], A[t]));
        dk[t] = vdiv(vsub(vmul(n, Y[t]), vmul(A[t], Xsum)), D);
        mk[t] = vdiv(vsub(vmul(B[t], Xsum), vmul(A[t], Y[t])), D);
        ok[t] = mand(mcmp(D, vzero(), _CMP_GT_OQ), mcmp(dk[t], vzero(), _CMP_GT_OQ));
        e[t] = vzero();
    }
    for (int j = 0; j < g; j++)
        for (int t = 0; t < nc; t++) {
            V r = vsub(vadd(vmul(dk[t], Lc[t * g + j]), mk[t]), X[j]);
            e[t] = vadd(e[t], vmul(r, r));
        }
}

// int4's search for L blocks (see sym_search); Lc is scratch for NC·g codes.
T static void FN(asym_search)(const V *X, int g, V *Lc, V *dout, V *mout) {
    const V zero = vzero(), fifteen = vset1(15);
    V lo = X[0], hi = X[0], Xsum = zero;
    for (int j = 1; j < g; j++) {
        lo = vsel(mcmp(X[j], lo, _CMP_LT_OQ), X[j], lo);
        hi = vsel(mcmp(X[j], hi, _CMP_GT_OQ), X[j], hi);
    }
    for (int j = 0; j < g; j++) Xsum = vadd(Xsum, X[j]);
    M active = mcmp(hi, lo, _CMP_NEQ_OQ);
    V range = vsub(hi, lo);
    V d = vdiv(range, fifteen), m = lo, best = zero;
    for (int j = 0; j < g; j++) {
        V l = FN(vclamp)(vround(vdiv(vsub(X[j], lo), d)), zero, fifteen);
        V r = vsub(vadd(vmul(d, l), m), X[j]);
        best = vadd(best, vmul(r, r));
    }
    M search = mand(active, mcmp(best, zero, _CMP_NEQ_OQ));
    if (mnz(search)) {
        for (int c0 = 0; c0 < 42; c0 += NC) {      // anchored at the minimum (c < 21), then at the maximum
            V dk[NC], mk[NC], e[NC];
            M ok[NC];
            for (int t = 0; t < NC; t++) {
                int c = c0 + t, k = c % 21;
                V s = vdiv(vset1(15 + 0.1 * (double)(k - 10)), range);
                if (c < 21)
                    for (int j = 0; j < g; j++) Lc[t * g + j] = FN(vclamp)(vround(vmul(s, vsub(X[j], lo))), zero, fifteen);
                else
                    for (int j = 0; j < g; j++) Lc[t * g + j] = FN(vclamp)(vsub(fifteen, vround(vmul(s, vsub(hi, X[j])))), zero, fifteen);
            }
            FN(asym_eval)(X, g, Xsum, Lc, NC, dk, mk, ok, e);
            for (int t = 0; t < NC; t++) {
                M upd = mand(mand(search, ok[t]), mcmp(e[t], best, _CMP_LT_OQ));
                best = vsel(upd, e[t], best);
                d = vsel(upd, dk[t], d);
                m = vsel(upd, mk[t], m);
            }
        }
        M live = search;
        for (int r = 0; r < 2; r++) {
            V dk, mk, e;
            M ok;
            for (int j = 0; j < g; j++) Lc[j] = FN(vclamp)(vround(vdiv(vsub(X[j], m), d)), zero, fifteen);
            FN(asym_eval)(X, g, Xsum, Lc, 1, &dk, &mk, &ok, &e);
            live = mand(mand(live, ok), mcmp(e, best, _CMP_LT_OQ));
            best = vsel(live, e, best);
            d = vsel(live, dk, d);
            m = vsel(live, mk, m);
        }
    }
    *dout = vkeep(active, d);   // +0 where hi = lo (m stays lo)
    *mout = m;
}

// encode_int4 / encode_int4_sym for the L lanes' blocks at once (the same codes; the error sums
// in another order).
T static void FN(encode)(int asym, const V *X, int g, const double *d, const double *m, uint8_t *out, size_t bb, double *sums) {
    float df[L], mf[L];
    for (int l = 0; l < L; l++) {
        uint16_t hd = sk_f64_to_f16(d[l]);
        put16(out + l * bb, hd);
        df[l] = _cvtsh_ss(hd);
        mf[l] = 0;
        if (asym) {
            uint16_t hm = sk_f64_to_f16(m[l]);
            put16(out + l * bb + 2, hm);
            mf[l] = _cvtsh_ss(hm);
        }
    }
    const F d4 = fload(df), m4 = fload(mf);
    const V dd = f2v(d4), mm = f2v(m4), zero = vzero();
    const V lo = asym ? zero : vset1(-8), hi = vset1(asym ? 15 : 7);
    const M nonzero = mcmp(dd, zero, _CMP_NEQ_OQ);
    V sse = zero, ssq = zero;
    int32_t q[MAX_GROUP][L];
    for (int j = 0; j < g; j++) {
        V c = vkeep(nonzero, FN(vclamp)(vround(vdiv(vsub(X[j], mm), dd)), lo, hi));
        istore(q[j], v2i(c));
        V r = vsub(f2v(fadd(fmul(d4, v2f(c)), m4)), X[j]);
        sse = vadd(sse, vmul(r, r));
        ssq = vadd(ssq, vmul(X[j], X[j]));
    }
    int off = asym ? 0 : 8, at = asym ? 4 : 2;
    for (int l = 0; l < L; l++)
        for (int j = 0; j < g / 2; j++)
            out[l * bb + at + j] = (uint8_t)((q[j][l] + off) | ((q[j + g / 2][l] + off) << 4));
    double a[L], b[L];
    vstore(a, sse);
    vstore(b, ssq);
    for (int l = 0; l < L; l++) { sums[0] += a[l]; sums[1] += b[l]; }
}

// The searched types, L blocks at a time; the remaining blocks on the scalar path.
T static int64_t FN(quantize_lanes)(int type, const float *x, size_t nblocks, int group, uint8_t *out, double *sums) {
    size_t bb = (size_t)(type == SK_INT4 ? 4 : 2) + (size_t)group / 2;
    V *X = aligned_alloc(64, sizeof(V) * (size_t)group * (NC + 1));
    if (!X) return quantize_scalar(type, x, nblocks, group, out, sums);
    V *C = X + group;
    size_t b = 0;
    double lane[L];
    for (; b + L <= nblocks; b += L) {
        const float *xb = x + b * group;
        for (int j = 0; j < group; j++) {
            for (int l = 0; l < L; l++) lane[l] = xb[l * group + j];
            X[j] = vload(lane);
        }
        double d[L], m[L];
        V dv, mv = vzero();
        if (type == SK_INT4) FN(asym_search)(X, group, C, &dv, &mv);
        else dv = FN(sym_search)(X, group, C);
        vstore(d, dv);
        vstore(m, mv);
        FN(encode)(type == SK_INT4, X, group, d, m, out + b * bb, bb, sums);
    }
    free(X);
    return quantize_scalar(type, x + b * group, nblocks - b, group, out + b * bb, sums);
}
