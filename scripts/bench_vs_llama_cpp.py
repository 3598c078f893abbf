#!/usr/bin/env python3
"""SinkKit vs llama.cpp on the same machine, model, bit width and thread count, side by side.

Builds (once, cached) llama.cpp from the sources vendored in the llama-cpp-python sdist on PyPI
(Release, native, as issue 6's table), reuses the SmolLM2 GGUF files that
scripts/llama_cpp_reference.py makes from the same dequantized weights, quantizes the matching
SKM files with skconv, and runs, interleaved, `reps` times each:

  pp512   prompt processing of 512 tokens (llama-bench -p 512 / skrun bench --prompt-tokens 512)
  tg128   generation of 128 tokens after a short prompt (llama-bench -n 128 / skrun bench)
  ttft    time to first token: wall time of a process that loads the model, reads a short real
          prompt and emits one token (llama-completion -n 1 / skrun generate -n 1)
  rss     peak RSS of the tg128 process (both at a 136-token context; wait4's ru_maxrss)

at 1 and 2 threads; prints medians and SinkKit / llama.cpp ratios; measures the machine's
streaming read bandwidth in the same run (scripts/bandwidth.c) and reports generation's weight
bytes per second against it; times `skconv quantize` against `llama-quantize` (time, peak RSS),
on the real weights and on the same weights moved off the Q4_1 grid they were released on (0.1%
Gaussian noise, seeded: what a fine-tuned F32/BF16 checkpoint looks like; the searched int4
quantizers do their full work only there).
Writes docs/measurements/bench.json and bench.md (and the README's performance block with
--update-readme).

    python3 scripts/bench_vs_llama_cpp.py [--reps 5] [--threads 1,2] [--update-readme]
    python3 scripts/bench_vs_llama_cpp.py --smoke     # CI: tiny sizes, 1 rep, llama.cpp only if built
"""
import argparse, json, os, platform, shutil, statistics, subprocess, sys, tarfile, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
GGUF = CACHE / "gguf"
HF = CACHE / "smollm2-135m-instruct"
LLAMA_VERSION = "0.3.36"
LLAMA_SRC = CACHE / "llama.cpp" / f"llama_cpp_python-{LLAMA_VERSION}" / "vendor" / "llama.cpp"
LLAMA_BIN = LLAMA_SRC / "build" / "bin"
OUT = ROOT / "docs" / "measurements"
OFFGRID = CACHE / "bench" / "offgrid"

# (label, GGUF type, SKM type): the same bit width on both sides.
PAIRS = [("f32", "F32", "f32"), ("8-bit", "Q8_0", "int8"), ("4-bit sym", "Q4_0", "int4-sym"), ("4-bit asym", "Q4_1", "int4")]
PROMPT = ("The history of the printing press begins in the fifteenth century, when Johannes Gutenberg "
          "combined movable metal type, oil-based ink and a wooden press adapted from wine making.")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Runs cmd; returns (stdout, wall seconds, peak RSS bytes of that process)."""
    t = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    out, err = p.communicate()  # reaps the child; its rusage is read below via wait4 semantics
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{err[-2000:]}")
    return out, wall, p.maxrss


class _Popen(subprocess.Popen):
    """Popen whose wait records the child's own ru_maxrss (os.wait4), not the max over children."""
    maxrss = 0

    def _try_wait(self, wait_flags):
        try:
            pid, sts, ru = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return (self.pid, 0)
        if pid == self.pid:
            self.maxrss = ru.ru_maxrss * 1024
        return (pid, sts)


subprocess.Popen = _Popen


def sk_bin(name):
    d = os.environ.get("SINKKIT_BIN_DIR") or subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    return str(Path(d) / name)


# --avx2-only: llama.cpp built without AVX-512 (its own build directory) and SinkKit held to its
# AVX2 kernels (SK_KERNELS=avx2, SK_NO_VNNI=1), the instruction set edge boxes have
AVX2_FLAGS = ["-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON",
              "-DGGML_AVX512=OFF", "-DGGML_AVX512_VBMI=OFF", "-DGGML_AVX512_VNNI=OFF", "-DGGML_AVX512_BF16=OFF", "-DGGML_AVX_VNNI=OFF"]
ISA = {"avx2_only": False}


def blas_core(avx2_only):
    """SinkKit's prompt attention and merges run OpenBLAS's sgemm, whose kernels ("core") are chosen
    when it loads: by its own CPU detection unless OPENBLAS_CORETYPE names one. Our benchmark box's
    environment sets OPENBLAS_CORETYPE=Haswell (AVX2) on an AVX-512 CPU; native runs drop it (OpenBLAS
    then detects the CPU, as on a user's machine), AVX2-only runs set Haswell, like SK_KERNELS=avx2
    for our own kernels. llama.cpp is built without BLAS: the variable does not touch it."""
    if avx2_only:
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    else:
        os.environ.pop("OPENBLAS_CORETYPE", None)


def ensure_llama(build):
    bdir = LLAMA_SRC / ("build-avx2" if ISA["avx2_only"] else "build")
    tools = {t: bdir / "bin" / t for t in ("llama-bench", "llama-quantize", "llama-completion")}
    if all(p.exists() for p in tools.values()):
        return tools
    if not build:
        return None
    if not LLAMA_SRC.exists():
        d = CACHE / "llama.cpp"
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", f"llama_cpp_python=={LLAMA_VERSION}", "-d", d], check=True)
        with tarfile.open(d / f"llama_cpp_python-{LLAMA_VERSION}.tar.gz") as t:
            t.extractall(d)
    log(f"building llama.cpp (Release, {'AVX2 only' if ISA['avx2_only'] else 'native'}; several minutes)…")
    isa = AVX2_FLAGS if ISA["avx2_only"] else ["-DGGML_NATIVE=ON"]
    subprocess.run(["cmake", "-S", LLAMA_SRC, "-B", bdir, "-DCMAKE_BUILD_TYPE=Release", *isa, "-DLLAMA_CURL=OFF",
                    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_OPENSSL=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", bdir, "-j", str(os.cpu_count()), "--target", *tools], check=True, stdout=subprocess.DEVNULL)
    return tools


def ensure_ggufs(tools, types):
    """The SmolLM2 GGUFs (F32 from the same dequantized weights, then llama-quantize), made with the
    gguf package and the built llama-quantize: no llama-cpp-python module needed."""
    GGUF.mkdir(parents=True, exist_ok=True)
    f32 = GGUF / "smollm2-135m-f32.gguf"
    if not f32.exists():
        sys.path.insert(0, str(ROOT / "scripts"))
        import llama_cpp_reference, make_smollm2
        llama_cpp_reference.write_f32_gguf(make_smollm2.gguf_path(), f32)
    for t in types:
        g = GGUF / f"smollm2-135m-{t.lower()}.gguf"
        if t != "F32" and not g.exists():
            subprocess.run([tools["llama-quantize"], f32, g, t], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ensure_skm(skm_type, out_dir, conversions):
    path = out_dir / f"smollm2-{skm_type}.skm"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.skm")
    if tmp.exists():
        tmp.unlink()
    _, wall, rss = run([sk_bin("skconv"), "quantize", "--model", HF, "--type", skm_type, "--output", tmp])
    tmp.rename(path)
    conversions.append({"tool": "skconv quantize", "type": skm_type, "seconds": wall, "peak_rss_bytes": rss, "bytes": path.stat().st_size})
    return path


def llama_bench(tools, gguf, threads, pp, tg):
    cmd = [tools["llama-bench"], "-m", gguf, "-t", threads, "-r", 1, "-o", "json", "--no-warmup"]
    cmd += ["-p", pp, "-n", 0] if pp else ["-p", 0, "-n", tg]
    out, wall, rss = run(cmd)
    r = json.loads(out)[0]
    return r["avg_ts"], rss


def sk_bench(skm, threads, pp, tg):
    out, wall, rss = run([sk_bin("skrun"), "bench", skm, "--threads", threads, "--prompt-tokens", pp or 8, "--gen-tokens", 0 if pp else tg, "--json"])
    d = json.loads(out)
    return (d["prompt_tokens_per_s"] if pp else d["gen_tokens_per_s"]), rss


def llama_ttft(tools, gguf, threads):
    _, wall, _ = run([tools["llama-completion"], "-m", gguf, "-t", threads, "-p", PROMPT, "-n", 1, "-no-cnv", "--no-warmup", "--temp", 0, "-c", 256])
    return wall


def sk_ttft(skm, threads):
    _, wall, _ = run([sk_bin("skrun"), "generate", skm, "--threads", threads, "-p", PROMPT, "-n", 1, "--temperature", 0, "--ctx", 256])
    return wall


def bandwidth(threads, smoke):
    exe = CACHE / "bench" / "bandwidth"
    exe.parent.mkdir(parents=True, exist_ok=True)
    src = ROOT / "scripts" / "bandwidth.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["cc", "-O3", "-march=native", "-pthread", src, "-o", exe], check=True)
    out, _, _ = run([exe, threads, 64 if smoke else 512])
    return float(out.split()[0])


def ensure_offgrid():
    """SmolLM2's weights plus seeded Gaussian noise of 0.1% of each matrix's standard deviation, as
    an F32 GGUF and as the Hugging Face checkpoint with the same values (q/k rows unpermuted as
    scripts/make_smollm2.py does; config and tokenizer copied). Made once, cached."""
    hf, gg = OFFGRID / "hf", OFFGRID / "f32.gguf"
    if (OFFGRID / ".complete").exists():
        return hf, gg
    import gguf
    import numpy as np
    from safetensors.numpy import save_file
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_smollm2
    log("making the off-grid F32 checkpoint and GGUF (once)")
    shutil.rmtree(OFFGRID, ignore_errors=True)
    hf.mkdir(parents=True)
    r = gguf.GGUFReader(str(GGUF / "smollm2-135m-f32.gguf"))
    rng = np.random.default_rng(6)
    noisy = {}
    for t in r.tensors:
        a = np.array(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])
        if a.ndim == 2:
            a = (a + rng.standard_normal(a.shape, dtype=np.float32) * np.float32(1e-3 * float(a.std()))).astype(np.float32)
        noisy[t.name] = a
    w = gguf.GGUFWriter(str(gg), arch=r.fields["general.architecture"].contents())
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        vtype = f.types[0]
        sub = f.types[1] if vtype == gguf.GGUFValueType.ARRAY and len(f.types) > 1 else None
        w.add_key_value(k, f.contents(), vtype, sub_type=sub)
    for t in r.tensors:
        w.add_tensor(t.name, noisy[t.name])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    meta = {k: make_smollm2.field(r, k) for k in r.fields}
    save_file(make_smollm2.hf_tensors(meta, noisy), str(hf / "model.safetensors"), metadata={"format": "pt"})
    for f in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(HF / f, hf / f)
    (OFFGRID / ".complete").write_text("1\n")
    return hf, gg


def quantize_llama(tools, gguf_type, work, source="real", src=None):
    src, dst = src or GGUF / "smollm2-135m-f32.gguf", work / f"q-{gguf_type}.gguf"
    _, wall, rss = run([tools["llama-quantize"], src, dst, gguf_type])
    size = dst.stat().st_size
    dst.unlink()
    return {"tool": "llama-quantize", "type": gguf_type, "source": source, "seconds": wall, "peak_rss_bytes": rss, "bytes": size}


def quantize_sk(skm_type, work, source="real", model=None):
    dst = work / f"q-{skm_type}.skm"
    _, wall, rss = run([sk_bin("skconv"), "quantize", "--model", model or HF, "--type", skm_type, "--output", dst])
    size = dst.stat().st_size
    dst.unlink()
    return {"tool": "skconv quantize", "type": skm_type, "source": source, "seconds": wall, "peak_rss_bytes": rss, "bytes": size}


def med(xs):
    return statistics.median(xs) if xs else None


def table(res):
    bw = res["bandwidth_gb_s"]
    lines = [f"SmolLM2-135M-Instruct, {res['machine']}; medians of {res['reps']} interleaved runs; ratio = SinkKit / llama.cpp "
             f"(higher is better for tok/s, lower for RSS and TTFT). llama.cpp {LLAMA_VERSION} (vendored in llama-cpp-python), "
             + ("Release, AVX2 only (GGML_NATIVE=OFF, AVX-512 off); SinkKit held to AVX2 (SK_KERNELS=avx2, SK_NO_VNNI=1, OPENBLAS_CORETYPE=Haswell). " if ISA["avx2_only"] else "Release, native (OpenBLAS's own core detection). ")
             + "Streaming read bandwidth: " + ", ".join(f"{t} thr {v:.1f} GB/s" for t, v in bw.items()) + ".", "",
             f"| bits | llama.cpp / SinkKit | threads | pp{res['pp']} tok/s | ratio | tg{res['tg']} tok/s | ratio | tg weight GB/s (% of read bw) | TTFT s | ratio | peak RSS MB (tg) | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        def pair(k, fmt):
            a, b = r["llama"].get(k), r["sinkkit"].get(k)
            if b is None:
                return "–", "–"
            if a is None:
                return f"– / {fmt.format(b)}", "–"
            return f"{fmt.format(a)} / {fmt.format(b)}", f"{b / a:.2f}×"
        pp, ppr = pair("pp", "{:.0f}")
        tg, tgr = pair("tg", "{:.1f}")
        tt, ttr = pair("ttft", "{:.2f}")
        rs, rsr = pair("rss_mb", "{:.0f}")
        roof = []
        for side in ("llama", "sinkkit"):
            g = r[side].get("tg_weight_gb_s")
            roof.append("–" if g is None else f"{g:.1f} ({100 * g / bw[str(r['threads'])]:.0f}%)")
        lines.append(f"| {r['label']} | {r['gguf']} / {r['skm']} | {r['threads']} | {pp} | {ppr} | {tg} | {tgr} | {' / '.join(roof)} | {tt} | {ttr} | {rs} | {rsr} |")
    if res.get("conversion"):
        lines += ["", "| quantize from F32 | llama-quantize / skconv quantize | seconds | ratio | peak RSS MB | ratio | file MB |",
                  "|---|---|---|---|---|---|---|"]
        conv = {(c["tool"], c["type"], c.get("source", "real")): c for c in res["conversion"]}
        for source in ("real", "off-grid"):
            for _, gt, st in PAIRS:
                b = conv.get(("skconv quantize", st, source))
                if b is None:
                    continue
                a = conv.get(("llama-quantize", gt, source))
                what = "real weights (on the Q4_1 grid)" if source == "real" else "off the grid (+0.1% noise)"
                if a is None:
                    lines.append(f"| {what} | – / {st} | – / {b['seconds']:.2f} | – | – / {b['peak_rss_bytes'] / 1e6:.0f} | – | {b['bytes'] / 1e6:.1f} |")
                    continue
                lines.append(f"| {what} | {gt} / {st} | {a['seconds']:.2f} / {b['seconds']:.2f} | {b['seconds'] / a['seconds']:.2f}× | "
                             f"{a['peak_rss_bytes'] / 1e6:.0f} / {b['peak_rss_bytes'] / 1e6:.0f} | {b['peak_rss_bytes'] / a['peak_rss_bytes']:.2f}× | "
                             f"{a['bytes'] / 1e6:.1f} / {b['bytes'] / 1e6:.1f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--pairs", default=",".join(p[2] for p in PAIRS), help="SKM types to compare")
    ap.add_argument("--smoke", action="store_true", help="quick check that the harness works (CI): pp 64, tg 16, 1 rep, 1 thread, int8; llama.cpp only if already built")
    ap.add_argument("--no-build", action="store_true", help="never build llama.cpp")
    ap.add_argument("--no-conversion", action="store_true")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--update-readme", action="store_true")
    ap.add_argument("--make-offgrid", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--avx2-only", action="store_true", help="both sides restricted to AVX2 (llama.cpp built without AVX-512 into build-avx2)")
    a = ap.parse_args()
    if a.avx2_only:
        ISA["avx2_only"] = True
        os.environ["SK_KERNELS"] = "avx2"
        os.environ["SK_NO_VNNI"] = "1"
    blas_core(a.avx2_only)
    if a.make_offgrid:
        ensure_offgrid()
        return
    pp, tg = (64, 16) if a.smoke else (512, 128)
    reps = 1 if a.smoke else a.reps
    threads = [1] if a.smoke else [int(t) for t in a.threads.split(",")]
    wanted = ["int8"] if a.smoke else a.pairs.split(",")
    pairs = [p for p in PAIRS if p[2] in wanted]
    tools = ensure_llama(build=not (a.smoke or a.no_build))
    if tools is None:
        log("llama.cpp is not built: SinkKit side only")
    else:
        ensure_ggufs(tools, [p[1] for p in pairs])
    skm_dir = CACHE / "bench"
    skm_dir.mkdir(parents=True, exist_ok=True)
    conversions = []
    skms = {p[2]: ensure_skm(p[2], skm_dir, conversions) for p in pairs}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor() or "cpu")
    res = {"machine": f"{cpu}, {platform.machine()}, {os.cpu_count()} cores", "reps": reps, "pp": pp, "tg": tg,
           "bandwidth_gb_s": {}, "rows": [], "conversion": []}
    for t in threads:
        res["bandwidth_gb_s"][str(t)] = bandwidth(t, a.smoke)
        log(f"read bandwidth, {t} thread(s): {res['bandwidth_gb_s'][str(t)]:.1f} GB/s")
        for label, gt, st in pairs:
            gguf = GGUF / f"smollm2-135m-{gt.lower()}.gguf"
            m = {"llama": {"pp": [], "tg": [], "ttft": [], "rss": []}, "sinkkit": {"pp": [], "tg": [], "ttft": [], "rss": []}}
            for rep in range(reps):
                order = ["llama", "sinkkit"] if rep % 2 == 0 else ["sinkkit", "llama"]
                for side in order:
                    if side == "llama" and tools is None:
                        continue
                    if side == "llama":
                        v, _ = llama_bench(tools, gguf, t, pp, tg)
                        m[side]["pp"].append(v)
                        v, rss = llama_bench(tools, gguf, t, 0, tg)
                        m[side]["tg"].append(v)
                        m[side]["rss"].append(rss)
                        m[side]["ttft"].append(llama_ttft(tools, gguf, t))
                    else:
                        v, _ = sk_bench(skms[st], t, pp, tg)
                        m[side]["pp"].append(v)
                        v, rss = sk_bench(skms[st], t, 0, tg)
                        m[side]["tg"].append(v)
                        m[side]["rss"].append(rss)
                        m[side]["ttft"].append(sk_ttft(skms[st], t))
            row = {"label": label, "gguf": gt, "skm": st, "threads": t, "llama": {}, "sinkkit": {}, "raw": m}
            for side, path in (("llama", gguf), ("sinkkit", skms[st])):
                if not m[side]["pp"]:
                    continue
                s = row[side]
                s["pp"], s["tg"], s["ttft"] = med(m[side]["pp"]), med(m[side]["tg"]), med(m[side]["ttft"])
                s["rss_mb"] = med(m[side]["rss"]) / 1e6
                s["file_mb"] = path.stat().st_size / 1e6
                # tied embeddings: generation reads every weight once per token (the head reads the
                # whole embedding matrix), so weight bytes per token ≈ the file size
                s["tg_weight_gb_s"] = s["tg"] * path.stat().st_size / 1e9
            res["rows"].append(row)
            sk, ll = row["sinkkit"], row["llama"]
            msg = f"{label:10s} t={t}: pp {sk['pp']:.0f} tok/s, tg {sk['tg']:.1f} tok/s, ttft {sk['ttft']:.2f} s, rss {sk['rss_mb']:.0f} MB"
            if ll:
                msg += (f" | llama.cpp pp {ll['pp']:.0f}, tg {ll['tg']:.1f}, ttft {ll['ttft']:.2f}, rss {ll['rss_mb']:.0f}"
                        f" | ratios pp {sk['pp'] / ll['pp']:.2f} tg {sk['tg'] / ll['tg']:.2f} ttft {sk['ttft'] / ll['ttft']:.2f} rss {sk['rss_mb'] / ll['rss_mb']:.2f}")
            log(msg)
    if not (a.smoke or a.no_conversion):
        with tempfile.TemporaryDirectory(dir=CACHE) as work:
            work = Path(work)
            sources = [("real", HF, GGUF / "smollm2-135m-f32.gguf")]
            if tools:
                # made in a child process: Linux carries a process's peak RSS into the children it
                # forks, so a bench process grown by numpy would inflate every later peak RSS
                if not (OFFGRID / ".complete").exists():
                    subprocess.run([sys.executable, __file__, "--make-offgrid"], check=True)
                off_hf, off_gguf = ensure_offgrid()
                sources.append(("off-grid", off_hf, off_gguf))
            for source, model, src in sources:
                for label, gt, st in pairs:
                    if gt == "F32":
                        continue
                    for rep in range(max(1, min(reps, 3))):
                        if tools:
                            res["conversion"].append(quantize_llama(tools, gt, work, source, src))
                        res["conversion"].append(quantize_sk(st, work, source, model))
        # medians per tool, type and source
        by = {}
        for c in res["conversion"]:
            by.setdefault((c["tool"], c["type"], c["source"]), []).append(c)
        res["conversion"] = [{"tool": k[0], "type": k[1], "source": k[2], "seconds": med([c["seconds"] for c in v]),
                              "peak_rss_bytes": med([c["peak_rss_bytes"] for c in v]), "bytes": v[0]["bytes"]} for k, v in by.items()]
        for c in res["conversion"]:
            log(f"{c['tool']} {c['type']} ({c['source']}): {c['seconds']:.2f} s, peak RSS {c['peak_rss_bytes'] / 1e6:.0f} MB")
    md = table(res)
    print(md)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "bench-avx2" if ISA["avx2_only"] else "bench"   # the AVX2-only run keeps its own files
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / f"{stem}.md").write_text(md)
    if a.update_readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        i, j = text.index(start) + len(start), text.index(end)
        readme.write_text(text[:i] + "\n" + md + text[j:])


if __name__ == "__main__":
    main()
