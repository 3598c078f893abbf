// The lane form of quant.c's searches, included once per instruction set (AVX2: 4 f64 lanes,
// AVX-512: 8, NEON: 2), with these defined by the includer:
//   L lanes; V an f64 vector of L lanes; M its lane mask; F / I an f32 / i32 vector of L lanes;
//   T the target attribute; FN(name) the per-set function name;
//   vset1 vzero vadd vsub vmul vdiv vmin vmax vround vabs vload vstore; mcmp(a, b, pred) → M;
//   mand mor mandnot(a, b) (b and not a) mnz(M) (any lane set) mbits(M) (lane l → bit l)
//   vsel(M, yes, no) vkeep(M, v) (v where set, +0 elsewhere); vfma(a, b, c) = a·b + c rounded once,
//   used only where a·b is exact in f64; NC1 candidates in flight in int4-sym's first phase (divides 21);
//   fload v2f f2v; v2i istore; h2f (an f16 bit pattern to f32); FN(load_lanes)(xb, g, X): X[j] = element j of the L blocks
//   at xb, xb + g, … (a transpose).
// Every lane does quant.c's scalar operations in the scalar order wherever the result decides a
// byte, so the bytes are the same; what differs is which candidates have their literal E summed
// (see sym_search). The kernel tests hold both searches to the scalar path byte for byte on
// near-tie blocks, and fail when δ is cut below the rounding bound (at g·2⁻⁵⁶).

// clampd exactly: max(lo, v) is v unless lo > v (so v on equality and for NaN), then min(hi, ·)
// likewise.
T static inline V FN(vclamp)(V v, V lo, V hi) { return vmin(hi, vmax(lo, v)); }

// The candidates of each lane that can still be the first of the least E: eligible (elig) and
// with est − δ (low) at most `limit`, as a bit set per lane (bit c for candidate c); returns the
// most any lane has (the rounds of the second phase).
T static inline int FN(survivors)(int count, const M *elig, double (*low)[L], V limit, uint64_t *need) {
    int rounds = 0;
    for (int l = 0; l < L; l++) need[l] = 0;
    for (int c = 0; c < count; c++) {
        int bits = mbits(mand(elig[c], mcmp(vload(low[c]), limit, _CMP_LE_OQ)));
        for (int l = 0; l < L; l++) need[l] |= (uint64_t)((bits >> l) & 1) << c;
    }
    for (int l = 0; l < L; l++) {
        int n = __builtin_popcountll(need[l]);
        rounds = n > rounds ? n : rounds;
    }
    return rounds;
}

// Σ x·c and Σ c² of int4-sym's scaled candidates k0 … k0 + NC1 − 1 (c = clamp(rint(s·x), −8, 7)).
// |s_k·x| ≤ |s_k·v| ≤ (8 + 0.1·(k − 10))·(1 + 2⁻⁵²), so the clamp at 7 can act only from k = 5
// (7.5) and the clamp at −8 only from k = 15 (8.5); below, min / max would return their input.
T static inline __attribute__((always_inline)) void FN(sym_sums)(const V *X, int g, V v, int k0, int clamp_hi, int clamp_lo, V *xc, V *cc) {
    const V lo = vset1(-8), hi = vset1(7);
    V s[NC1];
    for (int t = 0; t < NC1; t++) {
        s[t] = vdiv(vset1(-(8 + 0.1 * (double)(k0 + t - 10))), v);
        xc[t] = vzero();
        cc[t] = vzero();
    }
    for (int j = 0; j < g; j++)
        for (int t = 0; t < NC1; t++) {
            V c = vround(vmul(s[t], X[j]));
            if (clamp_lo) c = vmax(lo, c);
            if (clamp_hi) c = vmin(hi, c);
            xc[t] = vfma(X[j], c, xc[t]);
            cc[t] = vfma(c, c, cc[t]);
        }
}

// int4-sym's search for L blocks, X[j] holding element j of each; W and C are scratch for g codes.
//
// The spec picks the first candidate of least E = Σ (dk·c − x)², E evaluated in f64 in j order
// ("literal" E below). Evaluating that for all 21 scaled candidates is most of the work, and
// only the few that can win need it:
//  - Phase 1 takes each candidate's Σ x·c and Σ c² (the products of an f32 and a small integer are
//    exact in f64, so a fused multiply-add rounds as the spec's multiply-then-add does: dk is the
//    spec's), and its error from the least-squares identity est = Σ x² − Σ x·c · dk. The literal E
//    and est differ by at most δ = g·2⁻⁴⁰·Σ x² (rounding analysis: under (4g + 11)·2⁻⁵³·Σ x², as
//    E ≤ Σ x² and dk²·Σ c² ≤ Σ x² for a least-squares fit; δ is over 800 times that bound for any g).
//  - A candidate whose est − δ exceeds min(E of round-to-nearest, least est + δ) has a literal E
//    above the least literal E, so it never is the first of the least: it is dropped.
//  - |c_j| never decreases with k (|s| grows with k and rounding is monotone), so Σ c² equal to
//    the previous candidate's means the same codes, the same dk and E: a later twin never wins
//    (first kept on ties) and is dropped.
//  - Phase 2 evaluates the literal E of each lane's remaining candidates (usually one) in k order,
//    lane by lane through per-lane scales, exactly as the spec's scan over all of them would end.
// The refinement rounds take est the same way: a round whose codes equal the best least-squares
// candidate's has the same E (not smaller: stop), one whose est − δ ≥ best cannot win (stop);
// only the others take the literal E.
T static V FN(sym_search)(const V *X, int g, V *W, V *C) {
    const V lo = vset1(-8), hi = vset1(7);
    V v = vzero(), S = vzero();
    for (int j = 0; j < g; j++) v = vsel(mcmp(vabs(X[j]), vabs(v), _CMP_GT_OQ), X[j], v);
    for (int j = 0; j < g; j++) S = vfma(X[j], X[j], S);
    M active = mcmp(v, vzero(), _CMP_NEQ_OQ);
    V d = vdiv(v, vset1(-8)), best = vzero();
    for (int j = 0; j < g; j++) {
        V c = FN(vclamp)(vround(vdiv(X[j], d)), lo, hi);
        W[j] = c;
        V r = vsub(vmul(d, c), X[j]);
        best = vadd(best, vmul(r, r));
    }
    const V delta = vmul(S, vset1((double)g * 0x1p-40));

    // Phase 1: dk and est of the 21 scaled candidates.
    double dks[21][L], lows[21][L];
    M elig[21];
    V prev_cc = vset1(-1), limit = vset1(INFINITY);
    for (int k0 = 0; k0 <= 20; k0 += NC1) {
        V xc[NC1], cc[NC1];
        int last = k0 + NC1 - 1;
        if (last < 5) FN(sym_sums)(X, g, v, k0, 0, 0, xc, cc);
        else if (last < 15) FN(sym_sums)(X, g, v, k0, 1, 0, xc, cc);
        else FN(sym_sums)(X, g, v, k0, 1, 1, xc, cc);
        for (int t = 0; t < NC1; t++) {
            int k = k0 + t;
            M ok = mand(mand(active, mcmp(cc[t], vzero(), _CMP_GT_OQ)), mcmp(cc[t], prev_cc, _CMP_NEQ_OQ));
            prev_cc = cc[t];
            V dk = vdiv(xc[t], cc[t]), est = vsub(S, vmul(xc[t], dk));
            vstore(dks[k], dk);
            vstore(lows[k], vsub(est, delta));
            elig[k] = ok;
            limit = vsel(ok, vmin(limit, vadd(est, delta)), limit);
        }
    }
    uint64_t need[L];
    int rounds = FN(survivors)(21, elig, lows, vmin(limit, best), need);

    // Phase 2: the literal E of each lane's next remaining candidate, in k order.
    double vl[L];
    vstore(vl, v);
    M lsbest = mcmp(vzero(), vzero(), _CMP_NEQ_OQ);   // lanes whose best is a least-squares fit (none yet)
    for (int r = 0; r < rounds; r++) {
        double sl[L], dl[L], live[L];
        for (int l = 0; l < L; l++) {
            sl[l] = 0; dl[l] = 0; live[l] = 0;
            int k = next_candidate(&need[l]);
            if (k < 0) continue;
            sl[l] = -(8 + 0.1 * (double)(k - 10)) / vl[l];
            dl[l] = dks[k][l];
            live[l] = 1;
        }
        V s = vload(sl), dk = vload(dl), e = vzero();
        for (int j = 0; j < g; j++) {
            V c = FN(vclamp)(vround(vmul(s, X[j])), lo, hi);
            C[j] = c;
            V q = vsub(vmul(dk, c), X[j]);
            e = vadd(e, vmul(q, q));
        }
        M upd = mand(mcmp(vload(live), vzero(), _CMP_NEQ_OQ), mcmp(e, best, _CMP_LT_OQ));
        if (!mnz(upd)) continue;
        best = vsel(upd, e, best);
        d = vsel(upd, dk, d);
        lsbest = mor(lsbest, upd);
        for (int j = 0; j < g; j++) W[j] = vsel(upd, C[j], W[j]);
    }

    // Refinement.
    M live = active;
    for (int r = 0; r < 2 && mnz(live); r++) {
        V xc = vzero(), cc = vzero();
        M same = lsbest;
        for (int j = 0; j < g; j++) {
            V c = FN(vclamp)(vround(vdiv(X[j], d)), lo, hi);
            C[j] = c;
            xc = vfma(X[j], c, xc);
            cc = vfma(c, c, cc);
            same = mand(same, mcmp(c, W[j], _CMP_EQ_OQ));
        }
        V dk = vdiv(xc, cc), est = vsub(S, vmul(xc, dk));
        M cand = mand(mand(live, mcmp(cc, vzero(), _CMP_GT_OQ)), mcmp(vsub(est, delta), best, _CMP_LT_OQ));
        cand = mandnot(same, cand);
        if (!mnz(cand)) break;
        V e = vzero();
        for (int j = 0; j < g; j++) {
            V q = vsub(vmul(dk, C[j]), X[j]);
            e = vadd(e, vmul(q, q));
        }
        live = mand(cand, mcmp(e, best, _CMP_LT_OQ));
        best = vsel(live, e, best);
        d = vsel(live, dk, d);
        lsbest = mor(lsbest, live);
        if (r == 0 && mnz(live))
            for (int j = 0; j < g; j++) W[j] = vsel(live, C[j], W[j]);
    }
    return vkeep(active, d);   // +0 where v = 0
}

// int4's least-squares fit for code sums A = Σ L, B = Σ L², Y = Σ x·L (X = Σ x): dk, mk as the
// spec computes them, ok where D > 0 and dk > 0; est = E(dk, mk) from the expansion
// Σ x² − 2dk·Y − 2mk·X + dk²·B + 2dk·mk·A + mk²·n (an identity for any dk, mk), and its
// bound δ = g·2⁻⁴⁰·T, T = Σ x² + 30|dk|·Σ|x| + 2|mk|·Σ|x| + dk²·B + 2|dk·mk|·A + mk²·n: the
// literal E and est each differ from the exact E(dk, mk) by under (2g + 15)·2⁻⁵³·T (Y and X
// are off by at most g·2⁻⁵³·15·Σ|x| and g·2⁻⁵³·Σ|x|; E ≤ 2T).
T static inline void FN(asym_fit)(V S, V SA, V Xsum, V n, V A, V B, V Y, V *dk, V *mk, M *ok, V *est, V *delta) {
    V D = vsub(vmul(n, B), vmul(A, A));
    V d = vdiv(vsub(vmul(n, Y), vmul(A, Xsum)), D), m = vdiv(vsub(vmul(B, Xsum), vmul(A, Y)), D);
    *ok = mand(mcmp(D, vzero(), _CMP_GT_OQ), mcmp(d, vzero(), _CMP_GT_OQ));
    V two = vset1(2), dm = vmul(d, m);
    V e = vsub(S, vmul(two, vmul(d, Y)));
    e = vsub(e, vmul(two, vmul(m, Xsum)));
    e = vadd(e, vmul(vmul(d, d), B));
    e = vadd(e, vmul(two, vmul(dm, A)));
    e = vadd(e, vmul(vmul(m, m), n));
    V t = vadd(S, vmul(vset1(30), vmul(vabs(d), SA)));
    t = vadd(t, vmul(two, vmul(vabs(m), SA)));
    t = vadd(t, vmul(vmul(d, d), B));
    t = vadd(t, vmul(two, vmul(vabs(dm), A)));
    t = vadd(t, vmul(vmul(m, m), n));
    *dk = d;
    *mk = m;
    *est = e;
    *delta = vmul(t, vmul(n, vset1(0x1p-40)));
}

// Σ L, Σ L², Σ x·L of int4's scaled candidates c0 … c0 + NC − 1 (one anchor: c < 21 at the
// minimum, L = clamp(rint(s·(x − lo)), 0, 15); else at the maximum, L = clamp(15 − rint(s·(hi − x)),
// 0, 15)), with P[j] = x − lo or hi − x. s·P ≥ 0 and s·P ≤ s·range ≤ (15 + 0.1·(k − 10))·(1 + 2⁻⁵²),
// so only k ≥ 15 (15.5) can reach 16: below, the clamps would return their input.
T static inline __attribute__((always_inline)) void FN(asym_sums)(const V *X, const V *P, int g, V range, int c0, int clamp, V *A, V *B, V *Y) {
    const V zero = vzero(), fifteen = vset1(15);
    const int upper = c0 >= 21;
    V s[NC];
    for (int t = 0; t < NC; t++) {
        s[t] = vdiv(vset1(15 + 0.1 * (double)((c0 + t) % 21 - 10)), range);
        A[t] = zero;
        B[t] = zero;
        Y[t] = zero;
    }
    for (int j = 0; j < g; j++)
        for (int t = 0; t < NC; t++) {
            V l = vround(vmul(s[t], P[j]));
            if (upper) l = vsub(fifteen, l);
            if (clamp) l = upper ? vmax(zero, l) : vmin(fifteen, l);
            A[t] = vadd(A[t], l);
            B[t] = vfma(l, l, B[t]);
            Y[t] = vfma(X[j], l, Y[t]);
        }
}

// int4's search for L blocks; W, C, PL, PH are scratch for g vectors each. The same two phases
// as int4-sym's (see sym_search): all 42 anchored candidates' sums and est first (Σ L never
// decreases with k at the minimum's anchor and never increases at the maximum's, so an equal Σ L
// means the previous candidate's codes: dropped), then the literal E of each lane's remaining
// candidates in order, then the refinement with the same shortcuts.
T static void FN(asym_search)(const V *X, int g, V *W, V *C, V *PL, V *PH, V *dout, V *mout) {
    const V zero = vzero(), fifteen = vset1(15), n = vset1((double)g);
    V lo = X[0], hi = X[0], Xsum = zero, S = zero, SA = zero;
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
        W[j] = l;
        V r = vsub(vadd(vmul(d, l), m), X[j]);
        best = vadd(best, vmul(r, r));
    }
    // No candidate can beat an exact fit (a strictly smaller error wins): lanes already on a
    // 4-bit grid skip the search and the refinement.
    M search = mand(active, mcmp(best, zero, _CMP_NEQ_OQ));
    if (mnz(search)) {
        for (int j = 0; j < g; j++) {
            PL[j] = vsub(X[j], lo);
            PH[j] = vsub(hi, X[j]);
            S = vfma(X[j], X[j], S);
            SA = vadd(SA, vabs(X[j]));
        }
        // Phase 1.
        double dks[42][L], mks[42][L], lows[42][L];
        M elig[42];
        V prevA = vset1(-1), limit = vset1(INFINITY);
        for (int c0 = 0; c0 < 42; c0 += NC) {
            V A[NC], B[NC], Y[NC];
            int clamp = (c0 % 21) + NC - 1 >= 15;
            const V *P = c0 < 21 ? PL : PH;
            if (clamp) FN(asym_sums)(X, P, g, range, c0, 1, A, B, Y);
            else FN(asym_sums)(X, P, g, range, c0, 0, A, B, Y);
            if (c0 == 21) prevA = vset1(-1);
            for (int t = 0; t < NC; t++) {
                int c = c0 + t;
                V dk, mk, est, delta;
                M ok;
                FN(asym_fit)(S, SA, Xsum, n, A[t], B[t], Y[t], &dk, &mk, &ok, &est, &delta);
                ok = mand(mand(search, ok), mcmp(A[t], prevA, _CMP_NEQ_OQ));
                prevA = A[t];
                vstore(dks[c], dk);
                vstore(mks[c], mk);
                vstore(lows[c], vsub(est, delta));
                elig[c] = ok;
                limit = vsel(ok, vmin(limit, vadd(est, delta)), limit);
            }
        }
        uint64_t need[L];
        int rounds = FN(survivors)(42, elig, lows, vmin(limit, best), need);
        // Phase 2: the literal E of each lane's next remaining candidate.
        double rl[L];
        vstore(rl, range);
        M lsbest = mcmp(zero, zero, _CMP_NEQ_OQ);
        for (int r = 0; r < rounds; r++) {
            double sl[L], dl[L], ml[L], up[L], live[L];
            for (int l = 0; l < L; l++) {
                sl[l] = 0; dl[l] = 0; ml[l] = 0; up[l] = 0; live[l] = 0;
                int c = next_candidate(&need[l]);
                if (c < 0) continue;
                sl[l] = (15 + 0.1 * (double)(c % 21 - 10)) / rl[l];
                dl[l] = dks[c][l];
                ml[l] = mks[c][l];
                up[l] = c >= 21;
                live[l] = 1;
            }
            V s = vload(sl), dk = vload(dl), mk = vload(ml), e = zero;
            M upper = mcmp(vload(up), zero, _CMP_NEQ_OQ);
            for (int j = 0; j < g; j++) {
                V t = vround(vmul(s, vsel(upper, PH[j], PL[j])));
                V l = FN(vclamp)(vsel(upper, vsub(fifteen, t), t), zero, fifteen);
                C[j] = l;
                V q = vsub(vadd(vmul(dk, l), mk), X[j]);
                e = vadd(e, vmul(q, q));
            }
            M upd = mand(mcmp(vload(live), zero, _CMP_NEQ_OQ), mcmp(e, best, _CMP_LT_OQ));
            if (!mnz(upd)) continue;
            best = vsel(upd, e, best);
            d = vsel(upd, dk, d);
            m = vsel(upd, mk, m);
            lsbest = mor(lsbest, upd);
            for (int j = 0; j < g; j++) W[j] = vsel(upd, C[j], W[j]);
        }
        // Refinement.
        M live = search;
        for (int r = 0; r < 2 && mnz(live); r++) {
            V A = zero, B = zero, Y = zero;
            M same = lsbest;
            for (int j = 0; j < g; j++) {
                V l = FN(vclamp)(vround(vdiv(vsub(X[j], m), d)), zero, fifteen);
                C[j] = l;
                A = vadd(A, l);
                B = vfma(l, l, B);
                Y = vfma(X[j], l, Y);
                same = mand(same, mcmp(l, W[j], _CMP_EQ_OQ));
            }
            V dk, mk, est, delta;
            M ok;
            FN(asym_fit)(S, SA, Xsum, n, A, B, Y, &dk, &mk, &ok, &est, &delta);
            M cand = mandnot(same, mand(mand(live, ok), mcmp(vsub(est, delta), best, _CMP_LT_OQ)));
            if (!mnz(cand)) break;
            V e = zero;
            for (int j = 0; j < g; j++) {
                V q = vsub(vadd(vmul(dk, C[j]), mk), X[j]);
                e = vadd(e, vmul(q, q));
            }
            live = mand(cand, mcmp(e, best, _CMP_LT_OQ));
            best = vsel(live, e, best);
            d = vsel(live, dk, d);
            m = vsel(live, mk, m);
            lsbest = mor(lsbest, live);
            if (r == 0 && mnz(live))
                for (int j = 0; j < g; j++) W[j] = vsel(live, C[j], W[j]);
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
        df[l] = h2f(hd);
        mf[l] = 0;
        if (asym) {
            uint16_t hm = sk_f64_to_f16(m[l]);
            put16(out + l * bb + 2, hm);
            mf[l] = h2f(hm);
        }
    }
    const V dd = f2v(fload(df)), mm = f2v(fload(mf)), zero = vzero();
    const V lo = asym ? zero : vset1(-8), hi = vset1(asym ? 15 : 7);
    const M nonzero = mcmp(dd, zero, _CMP_NEQ_OQ);
    V sse = zero, ssq = zero;
    int32_t q[MAX_GROUP][L];
    for (int j = 0; j < g; j++) {
        V c = vkeep(nonzero, FN(vclamp)(vround(vdiv(vsub(X[j], mm), dd)), lo, hi));
        istore(q[j], v2i(c));
        // The decoded value f32(d)·f32(q) + f32(m) in f32: d·c is exact (an f16 times a 4-bit
        // integer), and so is d·c + m in f64, so one rounding to f32 gives it (none for int4-sym).
        V dec = vadd(vmul(dd, c), mm);
        if (asym) dec = f2v(v2f(dec));
        V r = vsub(dec, X[j]);
        sse = vadd(sse, vmul(r, r));
        ssq = vfma(X[j], X[j], ssq);
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
    V *X = aligned_alloc(64, sizeof(V) * (size_t)group * 5);
    if (!X) return quantize_scalar(type, x, nblocks, group, out, sums);
    V *C = X + group;
    size_t b = 0;
    for (; b + L <= nblocks; b += L) {
        const float *xb = x + b * group;
        FN(load_lanes)(xb, group, X);
        double d[L], m[L];
        V dv, mv = vzero();
        if (type == SK_INT4) FN(asym_search)(X, group, C, C + group, C + 2 * group, C + 3 * group, &dv, &mv);
        else dv = FN(sym_search)(X, group, C, C + group);
        vstore(d, dv);
        vstore(m, mv);
        FN(encode)(type == SK_INT4, X, group, d, m, out + b * bb, bb, sums);
    }
    free(X);
    return quantize_scalar(type, x + b * group, nblocks - b, group, out + b * bb, sums);
}
