#!/usr/bin/env python3
"""An independent SKM reader, written from Formats/SKM.md alone (stdlib + numpy; zstandard only
for compressed files). It checks the header and every tensor checksum, dequantizes every tensor,
and with --check-against re-quantizes the Hugging Face weights with numpy exactly as the spec
says and compares: the stored bytes must be identical and the dequantized values equal.

    python3 scripts/skm_reader.py FILE.skm [--check-against HF_DIR] [--json]
"""
import argparse, json, struct, sys, zlib
from pathlib import Path

import numpy as np

MAGIC = bytes([0x53, 0x4B, 0x4D, 0x00, 0x0D, 0x0A, 0x1A, 0x0A])
QTYPES = {0: "f32", 1: "f16", 2: "int8", 3: "int4", 4: "int4-sym", 5: "int5-sym"}


class SKMError(Exception):
    pass


class Reader:
    def __init__(self, buf, pos, end):
        self.b, self.pos, self.end = buf, pos, end

    def take(self, n):
        if n < 0 or self.pos + n > self.end:
            raise SKMError(f"header ends early at byte {self.pos}")
        v = self.b[self.pos:self.pos + n]
        self.pos += n
        return v

    def u(self, fmt):
        n = struct.calcsize(fmt)
        return struct.unpack("<" + fmt, self.take(n))[0]

    def s16(self):
        return self.take(self.u("H")).decode("utf-8")

    def value(self, tag=None):
        tag = self.u("B") if tag is None else tag
        if tag == 1: return bool(self.u("B"))
        if tag == 2: return self.u("q")
        if tag == 3: return self.u("d")
        if tag == 4: return self.take(self.u("I")).decode("utf-8")
        if tag == 5:
            et, n = self.u("B"), self.u("Q")
            return [self.value(et) for _ in range(n)]
        raise SKMError(f"unknown metadata type {tag}")


def block_bytes(q, g):
    return {0: 4, 1: 2, 2: 2 + g, 3: 4 + g // 2, 4: 2 + g // 2, 5: 2 + g // 2 + g // 8}[q]


def raw_size(q, g, shape):
    n = int(np.prod(shape)); cols = shape[-1]; rows = n // cols if cols else 0
    if q in (0, 1):
        return n * block_bytes(q, g)
    if g <= 0 or cols % g:
        raise SKMError("group does not divide the row")
    return rows * (cols // g) * block_bytes(q, g)


def open_skm(path):
    buf = Path(path).read_bytes()
    if len(buf) < 64 or buf[:8] != MAGIC:
        raise SKMError("not an SKM file (bad magic)")
    major, minor, bo, hsize, doff, dsize, mcount, tcount, align, flags, hcrc = struct.unpack_from("<HHIQQQIIIII", buf, 8)
    if major != 1: raise SKMError(f"SKM {major}.{minor} is not supported")
    if bo != 0x01020304: raise SKMError("not little-endian")
    if doff % 64 or doff < 64 + hsize or doff + dsize != len(buf): raise SKMError("bad sizes (truncated?)")
    if zlib.crc32(buf[64:64 + hsize], zlib.crc32(buf[:56])) != hcrc: raise SKMError("header checksum mismatch")
    r = Reader(buf, 64, 64 + hsize)
    meta = {}
    for _ in range(mcount):
        k = r.s16()
        meta[k] = r.value()
    tensors = []
    for _ in range(tcount):
        name = r.s16()
        q, comp, ndim, _ = r.u("B"), r.u("B"), r.u("B"), r.u("B")
        g = r.u("I")
        shape = [r.u("Q") for _ in range(ndim)]
        off, stored, raw, crc, _ = r.u("Q"), r.u("Q"), r.u("Q"), r.u("I"), r.u("I")
        if q not in QTYPES: raise SKMError(f"{name}: unknown qtype {q}")
        if raw != raw_size(q, g, shape): raise SKMError(f"{name}: raw_bytes {raw} disagrees with its type and shape")
        if off % 64 or off + stored > dsize: raise SKMError(f"{name}: outside the data section")
        if comp == 0 and stored != raw: raise SKMError(f"{name}: stored != raw")
        tensors.append(dict(name=name, qtype=q, compression=comp, group=g, shape=shape, offset=off, stored=stored, raw=raw, crc=crc))
    spans = sorted((t["offset"], t["offset"] + t["stored"], t["name"]) for t in tensors)
    for a, b in zip(spans, spans[1:]):
        if a[1] > b[0]: raise SKMError(f"{a[2]} and {b[2]} overlap")
    return buf, doff, meta, tensors


def stored_bytes(buf, doff, t):
    return buf[doff + t["offset"]: doff + t["offset"] + t["stored"]]


def raw_bytes(buf, doff, t):
    s = stored_bytes(buf, doff, t)
    if t["compression"] == 1:
        import zstandard
        return zstandard.ZstdDecompressor().decompress(s, max_output_size=t["raw"])
    return s


def dequantize(raw, t):
    q, g, shape = t["qtype"], t["group"], t["shape"]
    n = int(np.prod(shape))
    if q == 0: return np.frombuffer(raw, "<f4").reshape(shape)
    if q == 1: return np.frombuffer(raw, "<f2").astype(np.float32).reshape(shape)
    b = np.frombuffer(raw, np.uint8).reshape(-1, block_bytes(q, g))
    d = b[:, 0:2].copy().view("<f2").astype(np.float32)
    if q == 2:
        return (d * b[:, 2:].view(np.int8).astype(np.float32)).reshape(shape)
    if q == 5:
        nib = b[:, 2:2 + g // 2]
        low = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.int32)
        high = np.unpackbits(b[:, 2 + g // 2:], axis=1, bitorder="little").astype(np.int32)
        return (d * ((low | (high << 4)) - 16).astype(np.float32)).reshape(shape)
    off = 4 if q == 3 else 2
    nib = b[:, off:]
    codes = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.float32)
    if q == 3:
        m = b[:, 2:4].copy().view("<f2").astype(np.float32)
        return (d * codes + m).reshape(shape)
    return (d * (codes - 8)).reshape(shape)


# ---- numpy quantization, as the spec says (f64, sequential sums over j, rint = half-even) ----

def f16(v):
    return v.astype(np.float16)


def seqsum(a):
    s = np.zeros(a.shape[0])
    for j in range(a.shape[1]):
        s = s + a[:, j]
    return s


def quant_int8(x):
    amax = np.abs(x).max(axis=1)
    d = f16(amax / 127)
    dd = d.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(dd == 0, 0, np.clip(np.rint(x / dd), -127, 127))
    return np.concatenate([d.view(np.uint8).reshape(-1, 2), q.astype(np.int8).view(np.uint8)], axis=1)


def fit(x, L):
    n = float(x.shape[1])
    A, B, X, Y = seqsum(L), seqsum(L * L), seqsum(x), seqsum(x * L)
    D = n * B - A * A
    ok = D > 0
    Ds = np.where(ok, D, 1.0)
    d = (n * Y - A * X) / Ds
    m = (B * X - A * Y) / Ds
    return d, m, ok & (d > 0)


def err(x, L, d, m):
    return seqsum((d[:, None] * L + m[:, None] - x) ** 2)


def nibbles(q):
    h = q.shape[1] // 2
    return (q[:, :h] | (q[:, h:] << 4)).astype(np.uint8)


def quant_int4(x):
    """Blocks that round-to-nearest fits exactly (E = 0) cannot be beaten (strictly smaller
    error wins), so only the others are searched: same bytes, much less numpy work."""
    lo, hi = x.min(axis=1), x.max(axis=1)
    d0 = np.where(hi == lo, 1.0, (hi - lo) / 15)
    L0 = np.clip(np.rint((x - lo[:, None]) / d0[:, None]), 0, 15)
    exact = (hi == lo) | (err(x, L0, np.where(hi == lo, 0.0, d0), lo) == 0)
    if exact.all():
        return _quant_int4(x)
    out = np.empty((x.shape[0], 4 + x.shape[1] // 2), np.uint8)
    if exact.any():
        out[exact] = _quant_int4(x[exact], search=False)
    out[~exact] = _quant_int4(x[~exact])
    return out


def _quant_int4(x, search=True):
    lo, hi = x.min(axis=1), x.max(axis=1)
    flat = hi == lo
    rng = np.where(flat, 1.0, hi - lo)
    d = np.where(flat, 0.0, rng / 15)
    m = lo.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        L = np.clip(np.rint((x - lo[:, None]) / np.where(flat, 1.0, d)[:, None]), 0, 15)
    best = err(x, L, d, m)
    for anchor in ((0, 1) if search else ()):
        for k in range(21):
            s = (15 + 0.1 * (k - 10)) / rng
            if anchor == 0:
                L = np.clip(np.rint(s[:, None] * (x - lo[:, None])), 0, 15)
            else:
                L = np.clip(15 - np.rint(s[:, None] * (hi[:, None] - x)), 0, 15)
            dk, mk, ok = fit(x, L)
            e = err(x, L, dk, mk)
            win = ok & (e < best) & ~flat
            best, d, m = np.where(win, e, best), np.where(win, dk, d), np.where(win, mk, m)
    active = ~flat & search
    for _ in range(2):
        with np.errstate(divide="ignore", invalid="ignore"):
            L = np.clip(np.rint((x - m[:, None]) / np.where(d == 0, 1.0, d)[:, None]), 0, 15)
        dr, mr, ok = fit(x, L)
        e = err(x, L, dr, mr)
        win = active & ok & (e < best)
        active = win
        best, d, m = np.where(win, e, best), np.where(win, dr, d), np.where(win, mr, m)
    d16, m16 = f16(d), f16(m)
    dd, mm = d16.astype(np.float64)[:, None], m16.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(dd == 0, 0, np.clip(np.rint((x - mm) / dd), 0, 15)).astype(np.uint8)
    return np.concatenate([d16.view(np.uint8).reshape(-1, 2), m16.view(np.uint8).reshape(-1, 2), nibbles(q)], axis=1)


def sym_scale(x, n):
    """The symmetric search, codes in [-n, n - 1] (int4-sym: n = 8, int5-sym: n = 16)."""
    idx = np.argmax(np.abs(x), axis=1)  # first of the largest magnitudes
    v = x[np.arange(len(x)), idx]
    zero = v == 0
    vs = np.where(zero, 1.0, v)
    d = np.where(zero, 0.0, vs / -n)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.clip(np.rint(x / np.where(zero, 1.0, d)[:, None]), -n, n - 1)
    best = seqsum((d[:, None] * c - x) ** 2)

    def symfit(c):
        cc = seqsum(c * c)
        return seqsum(x * c) / np.where(cc > 0, cc, 1.0), cc > 0

    for k in range(21):
        s = -(n + 0.1 * (k - 10)) / vs
        c = np.clip(np.rint(s[:, None] * x), -n, n - 1)
        dk, ok = symfit(c)
        e = seqsum((dk[:, None] * c - x) ** 2)
        win = ok & (e < best) & ~zero
        best, d = np.where(win, e, best), np.where(win, dk, d)
    active = ~zero
    for _ in range(2):
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.clip(np.rint(x / np.where(d == 0, 1.0, d)[:, None]), -n, n - 1)
        dr, ok = symfit(c)
        e = seqsum((dr[:, None] * c - x) ** 2)
        win = active & ok & (e < best)
        active = win
        best, d = np.where(win, e, best), np.where(win, dr, d)
    return d


def quant_int4_sym(x):
    d16 = f16(sym_scale(x, 8))
    dd = d16.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(dd == 0, 8, np.clip(np.rint(x / dd), -8, 7) + 8).astype(np.uint8)
    return np.concatenate([d16.view(np.uint8).reshape(-1, 2), nibbles(q)], axis=1)


def quant_int5_sym(x):
    d16 = f16(sym_scale(x, 16))
    dd = d16.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(dd == 0, 16, np.clip(np.rint(x / dd), -16, 15) + 16).astype(np.uint8)
    high = np.packbits((q >> 4) & 1, axis=1, bitorder="little")
    return np.concatenate([d16.view(np.uint8).reshape(-1, 2), nibbles(q & 0x0F), high], axis=1)


def quantize(w, qtype, group):
    w = np.asarray(w, np.float32)
    if qtype == 0: return w.astype("<f4").tobytes()
    if qtype == 1: return w.astype("<f2").tobytes()
    x = w.reshape(-1, group).astype(np.float64)
    return {2: quant_int8, 3: quant_int4, 4: quant_int4_sym, 5: quant_int5_sym}[qtype](x).tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--check-against", help="Hugging Face model directory the file was made from")
    ap.add_argument("--compare-tensors", metavar="OTHER", help="another SKM file: are all tensors byte-identical (type, group, shape, raw bytes)?")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    buf, doff, meta, tensors = open_skm(a.file)
    if a.compare_tensors:
        obuf, odoff, _, other = open_skm(a.compare_tensors)
        by_name = {t["name"]: t for t in other}
        differ = [t["name"] for t in tensors if t["name"] not in by_name
                  or any(t[k] != by_name[t["name"]][k] for k in ("qtype", "group", "shape"))
                  or raw_bytes(buf, doff, t) != raw_bytes(obuf, odoff, by_name[t["name"]])]
        differ += [n for n in by_name if n not in {t["name"] for t in tensors}]
        if differ:
            print(f"{len(differ)} tensors differ: {', '.join(differ[:10])}")
            return 1
        print(f"{len(tensors)} tensors identical")
        return 0
    for t in tensors:
        if zlib.crc32(stored_bytes(buf, doff, t)) != t["crc"]:
            raise SKMError(f"{t['name']}: checksum mismatch")
    hf = None
    if a.check_against:
        from safetensors.numpy import load_file
        hf = load_file(str(Path(a.check_against) / "model.safetensors"))
    result = {"file": a.file, "tensors": len(tensors), "checksums": "ok", "dequantized": 0, "byte_identical": 0,
              "value_identical": 0, "mismatches": [], "types": {}}
    for t in tensors:
        raw = raw_bytes(buf, doff, t)
        y = dequantize(raw, t)
        assert np.isfinite(y).all(), t["name"]
        result["dequantized"] += 1
        key = QTYPES[t["qtype"]]
        result["types"][key] = result["types"].get(key, 0) + 1
        if hf is not None:
            mine = quantize(hf[t["name"]], t["qtype"], t["group"])
            if mine == bytes(raw):
                result["byte_identical"] += 1
            else:
                diff = np.frombuffer(mine, np.uint8) != np.frombuffer(raw, np.uint8)
                result["mismatches"].append({"name": t["name"], "bytes_differing": int(diff.sum())})
            ref = dequantize(mine, t)
            if np.array_equal(ref, y):
                result["value_identical"] += 1
    print(json.dumps(result, indent=None if a.json else 1))
    return 0 if not result["mismatches"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SKMError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
