"""FlatQuant vs QuaRot vs RTN: perplexity at W4A4KV4, W4A16 and W8A8, flatness profiles, costs.

    python bench/flatquant.py                                      # both models (tiny first); resumable
    python bench/flatquant.py --model smollm2 --max-minutes 18     # one model; stop starting work after 18 min
    python bench/flatquant.py --report                             # docs/results/flatquant.md from both

Every method sees the same calibration windows (the pipeline's ``calibration_windows``: Tiny
Shakespeare for SmolLM2, tiny-calib for the embedded model; disjoint from the evaluation text)
and is scored by the built-in ``perplexity`` evaluator on the same windows (WikiText-2 test for
SmolLM2, tiny-eval for tiny). Each finished measurement is cached in
``$SPLICE_CACHE/bench/flatquant/<model>/results.json``; FlatQuant's per-block calibration is
checkpointed, so a run stopped by ``--max-minutes`` (or killed) resumes where it stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from splice.builtins.perplexity import Perplexity
from splice.builtins.rtn import RTN
from splice.kinds.evaluator import EvalContext
from splice.model import load
from splice.pipeline import calibration_windows
from splice.recipe import CalibrationSpec, Recipe
from splice_flatquant import FlatQuant
from splice_flatquant.calibration import block_sites
from splice_quarot import QuaRot

from bench import models

RESULTS = ROOT / "docs" / "results"
TITLE = "FlatQuant vs QuaRot vs RTN: W4A4KV4 / W4A16 / W8A8 perplexity, flatness, costs (SmolLM2-135M, tiny)"
ESTIMATE_MIN = 175  # the measurement time of the stored results (docs/results/flatquant.md), shared machine
ORDER = 40

SETTINGS = {  # name -> (w, a, kv)
    "W4A4KV4": (4, 4, 4),
    "W4A16": (4, 16, 16),
    "W8A8": (8, 8, 16),
}

# Per model: calibration (windows x tokens), FlatQuant epochs, evaluation corpus and windows.
PROFILES = {
    # SmolLM2: ~25 min of CPU time of one core for FlatQuant's W4A4KV4 calibration of 30 blocks (80 steps of
    # 4 x 256 tokens at ~0.55 s each, measured); the same 64 windows for GPTQ
    "smollm2": {"calib_samples": 64, "calib_len": 256, "epochs": 5, "epochs_other": 1, "batch_size": 4,
                "eval_corpus": "wikitext2",
                "eval_context": 512, "eval_windows": 16, "kl_windows": 2, "flat_block": 14},
    "tiny": {"calib_samples": 128, "calib_len": 128, "epochs": 15, "epochs_other": 15, "batch_size": 4,
             "eval_corpus": "tiny-eval",
             "eval_context": 512, "eval_windows": 40, "kl_windows": 8, "flat_block": 2},
}


def cache_dir(model: str) -> Path:
    d = models.cache_dir() / "bench" / "flatquant" / model
    d.mkdir(parents=True, exist_ok=True)
    return d


def load_model(model: str):
    return load(str(models.smollm2())) if model == "smollm2" else load("tiny")


def method_for(name: str, setting: str, prof: dict, ckpt: Path):
    w, a, kv = SETTINGS[setting]
    if name == "rtn":
        return RTN({"w_bits": w, "a_bits": a, "kv_bits": kv})
    if name in ("quarot", "quarot-rtn"):
        # QuaRot's 0.9 activation clipping is its 4-bit setting; at 8 bits it only adds error
        return QuaRot({"w_bits": w, "a_bits": a, "k_bits": kv, "v_bits": kv, "a_clip_ratio": 1.0 if a == 8 else 0.9,
                       "w_method": "gptq" if name == "quarot" else "rtn"})
    if name in ("flatquant", "flatquant-gptq"):  # the same calibrated transforms (checkpoints), then RTN or GPTQ
        epochs = prof["epochs"] if setting == "W4A4KV4" else prof["epochs_other"]
        return FlatQuant({"w_bits": w, "a_bits": a, "k_bits": kv, "v_bits": kv, "epochs": epochs,
                          "batch_size": prof["batch_size"], "checkpoint_dir": str(ckpt),
                          "w_method": "gptq" if name == "flatquant-gptq" else "rtn"})
    raise ValueError(name)


class Bench:
    def __init__(self, model: str, deadline: float | None) -> None:
        self.model, self.prof, self.deadline = model, PROFILES[model], deadline
        self.dir = cache_dir(model)
        self.file = self.dir / "results.json"
        self.results = json.loads(self.file.read_text()) if self.file.exists() else {}
        self._lm = None
        self._calib = None

    @property
    def lm(self):
        if self._lm is None:
            self._lm = load_model(self.model)
        return self._lm

    @property
    def calib(self) -> torch.Tensor:
        if self._calib is None:
            spec = CalibrationSpec(samples=self.prof["calib_samples"], seq_len=self.prof["calib_len"], seed=0)
            self._calib = calibration_windows(self.lm, Recipe(model=self.model, calibration=spec))
        return self._calib

    def save(self) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.results, indent=2))
        tmp.replace(self.file)

    def ppl(self, lm) -> dict:
        p = self.prof
        rep = Perplexity({"corpus": p["eval_corpus"], "context": p["eval_context"], "max_windows": p["eval_windows"],
                          "batch_size": 4}).evaluate(lm, EvalContext(base=self.lm))
        return {"ppl": rep.metrics["perplexity"].value, "windows": rep.details.get("windows"),
                "context": p["eval_context"], "corpus": rep.details.get("corpus"), "kl": self.kl(lm)}

    @torch.no_grad()
    def kl(self, lm) -> float:
        """Mean per-token KL(FP || quantized) on the first ``kl_windows`` evaluation windows."""
        from splice.builtins.perplexity import corpus_ids
        from splice.data.packing import windows

        p = self.prof
        if getattr(self, "_ref", None) is None:
            ids = windows(corpus_ids(self.lm, p["eval_corpus"]), p["eval_context"], p["kl_windows"])
            self._kl_ids = ids
            self._ref = torch.cat([torch.log_softmax(self.lm.model(ids[i:i + 1]).logits, -1)
                                   for i in range(len(ids))])
        lp = torch.cat([torch.log_softmax(lm.model(self._kl_ids[i:i + 1]).logits, -1)
                        for i in range(len(self._kl_ids))])
        return float((self._ref.exp() * (self._ref - lp)).sum(-1).mean())

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.time() > self.deadline

    def stale(self, key: str) -> bool:
        """A stored result made with another config than today's is archived (kept for the report's
        calibration-budget ablation) and measured again."""
        old = self.results.get(key)
        if old is None:
            return False
        name, _, setting = key.partition("/")
        want = m = None
        if setting in SETTINGS:
            m = method_for(name, setting, self.prof, self.dir / "flatquant-ckpt")
        elif key == "flatness":
            m = method_for("flatquant", "W4A4KV4", self.prof, self.dir / "flatquant-ckpt")
        if m is not None:
            want = m.config.model_dump()
        have = old.get("config") if setting in SETTINGS else old.get("flatquant_config")
        if have is not None and want is not None:  # options added to the config since: at their defaults
            fields = type(m.config).model_fields
            have = {**{k: fields[k].default for k in want if k not in have}, **have}
        calib = [self.prof["calib_samples"], self.prof["calib_len"]]
        uses_data = name in ("quarot", "flatquant", "flatquant-gptq")  # GPTQ and FlatQuant see the windows
        same_calib = not uses_data or old.get("calib", calib) == calib
        if want is None or ((have == want or (have is None and key != "flatness")) and same_calib):
            return False
        archive = self.results.setdefault("archive", {})
        archive[f"{key}#{len(archive)}"] = old
        del self.results[key]
        self.save()
        return True

    def run_item(self, key: str, fn) -> None:
        self.stale(key)
        if key in self.results or self.out_of_time():
            return
        print(f"[{dt.datetime.now():%H:%M:%S}] {self.model}: {key}", flush=True)
        t = time.perf_counter()
        try:
            out = fn()
        except TimeoutError as err:
            print(f"  paused: {err}", flush=True)
            return
        out["seconds"] = round(time.perf_counter() - t, 1)
        self.results[key] = out
        self.save()
        print(f"  {out}", flush=True)

    def quantized(self, name: str, setting: str) -> dict:
        lm = self.lm.clone()
        m = method_for(name, setting, self.prof, self.dir / "flatquant-ckpt")
        t = time.perf_counter()
        if isinstance(m, FlatQuant):
            m.check(lm)
            m.calibrate(lm, self.calib, deadline=self.deadline)
            m.finalize(lm, data=self.calib)
        else:
            m.quantize(lm, self.calib)
        secs = time.perf_counter() - t
        out = {**self.ppl(lm), "quantize_seconds": round(secs, 1), "config": m.config.model_dump(),
               "calib": [self.prof["calib_samples"], self.prof["calib_len"]]}
        if isinstance(m, FlatQuant):
            out["calibration_log"] = m.log
        return out

    def all(self) -> None:
        """The headline setting first, then the cheap items, then FlatQuant's other calibrations."""
        self.run_item("fp", lambda: self.ppl(self.lm))
        for name in ("rtn", "quarot-rtn"):  # the calibration-free ones first: minutes, not hours
            for setting in SETTINGS:
                self.run_item(f"{name}/{setting}", lambda n=name, s=setting: self.quantized(n, s))
        for name in ("quarot", "flatquant", "flatquant-gptq"):
            self.run_item(f"{name}/W4A4KV4", lambda n=name: self.quantized(n, "W4A4KV4"))
        for setting in ("W4A16", "W8A8"):
            self.run_item(f"quarot/{setting}", lambda s=setting: self.quantized("quarot", s))
        self.run_item("overhead", lambda: overhead(self.lm))
        self.run_item("flatness", self.flatness)
        for setting in ("W4A16", "W8A8"):
            for name in ("flatquant", "flatquant-gptq"):
                self.run_item(f"{name}/{setting}", lambda n=name, s=setting: self.quantized(n, s))

    # -- the paper's flatness view ----------------------------------------------------------------
    def flatness(self) -> dict:
        """Per-channel max |x| (over tokens) and max |W| (over output rows), sorted, for one block's
        q/k/v input and down input: original, learnt per-channel scaling only, QuaRot's rotation,
        FlatQuant (scaling + Kronecker transform). Transforms from the W4A4KV4 calibrations."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        i = self.prof["flat_block"]
        base = self.lm
        x = self.calib[:4]
        fq = FlatQuant({**method_for("flatquant", "W4A4KV4", self.prof, self.dir / "flatquant-ckpt").config.model_dump()})
        fq.calibrate(base.clone(), self.calib)  # resumes entirely from the W4A4KV4 checkpoints
        bt = fq.transforms[i]
        profiles: dict[str, dict[str, list[float]]] = {}

        def capture(lm, site: str, transform=None):
            got = {}
            mod = lm.model.blocks[i].get_submodule(site)

            def hook(m, args):
                inp = args[0]
                got["x"] = (transform(m, inp) if transform else inp).detach()

            h = mod.register_forward_pre_hook(hook)
            with torch.no_grad():
                lm.model(x)
            h.remove()
            return got["x"]

        def prof_x(t):
            return t.abs().reshape(-1, t.shape[-1]).amax(0).sort(descending=True).values.tolist()

        def prof_w(w):
            return w.abs().amax(0).sort(descending=True).values.tolist()

        # original
        orig = {s: capture(base, s) for s in ("attn.q", "mlp.down")}
        w_orig = {s: base.model.blocks[i].get_submodule(s).weight.detach() for s in ("attn.q", "mlp.down")}
        # QuaRot (full precision: the rotated model is exact)
        qr = base.clone()
        QuaRot(QuaRot.full_precision_config).quantize(qr, None)
        quarot_x = {"attn.q": capture(qr, "attn.q"),
                    "mlp.down": capture(qr, "mlp.down", lambda m, t: m.rotate(t))}
        quarot_w = {s: qr.model.blocks[i].get_submodule(s).inner.weight.detach() for s in ("attn.q", "mlp.down")}
        # FlatQuant, transforms merged, quantizers off
        fl = base.clone()
        fq.finalize(fl, quantize=False)
        flat_x = {s: capture(fl, s, lambda m, t: m.transform(t)) for s in ("attn.q", "mlp.down")}
        flat_w = {s: fl.model.blocks[i].get_submodule(s).inner.weight.detach() for s in ("attn.q", "mlp.down")}
        # per-channel scaling alone (FlatQuant's learnt d; for down, d is merged into up's rows)
        d_ln, d_down = bt.ln.diag.detach(), bt.down.diag.detach()
        scaled_x = {"attn.q": orig["attn.q"] * d_ln, "mlp.down": orig["mlp.down"] * d_down}
        scaled_w = {"attn.q": w_orig["attn.q"] / d_ln, "mlp.down": w_orig["mlp.down"] / d_down}
        for s in ("attn.q", "mlp.down"):
            profiles[s] = {
                "x:original": prof_x(orig[s]), "x:per-channel scaling": prof_x(scaled_x[s]),
                "x:Hadamard (QuaRot)": prof_x(quarot_x[s]), "x:FlatQuant": prof_x(flat_x[s]),
                "w:original": prof_w(w_orig[s]), "w:per-channel scaling": prof_w(scaled_w[s]),
                "w:Hadamard (QuaRot)": prof_w(quarot_w[s]), "w:FlatQuant": prof_w(flat_w[s]),
            }
        fig, axes = plt.subplots(2, 2, figsize=(11, 7))
        titles = {"attn.q": "q/k/v input", "mlp.down": "down_proj input"}
        for r, s in enumerate(("attn.q", "mlp.down")):
            for c, kind in enumerate(("x", "w")):
                ax = axes[r][c]
                for label, vals in profiles[s].items():
                    if label.startswith(kind + ":"):
                        ax.plot(vals, label=label[2:])
                ax.set_yscale("log")
                ax.set_xlabel("channel (sorted by magnitude)")
                ax.set_ylabel("max |activation| over tokens" if kind == "x" else "max |weight| over output rows")
                ax.set_title(f"block {i} {titles[s]}: {'activations' if kind == 'x' else 'weights'}")
                ax.legend(fontsize=8)
        fig.suptitle(f"Flatness ({self.model}): per-channel magnitudes before and after each transform")
        fig.tight_layout()
        png = RESULTS / f"flatquant_flatness_{self.model}.png"
        RESULTS.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=110)
        plt.close(fig)

        def flat_ratio(v):  # max / median: 1 is perfectly flat
            v = torch.tensor(v)
            return round(float(v.max() / v.median()), 2)

        return {"png": png.name, "block": i, "flatquant_config": fq.config.model_dump(),
                "max_over_median": {s: {k: flat_ratio(v) for k, v in d.items()} for s, d in profiles.items()}}


LLAMA3_8B = None  # set below (DecoderConfig needs the import)


# -- costs ------------------------------------------------------------------------------------
def online_flops(cfg) -> dict:
    """Per token per block: FLOPs of the linear layers and of each method's online transforms."""
    from splice_flatquant.transforms import kron_factors

    n, i, hq, hkv, d = (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads,
                        cfg.num_key_value_heads, cfg.head_dim)
    linear = 2 * (n * hq * d + 2 * n * hkv * d + hq * d * n + 3 * n * i)
    n1, n2 = kron_factors(n)
    i1, i2 = kron_factors(i)
    # FlatQuant: P_a once for q/k/v, P_ug once for gate/up, P_d, P_o across heads, P_k on q and k
    flat = 2 * n * (n1 + n2) * 2 + 2 * i * (i1 + i2) + 2 * hq * hq * d + 2 * d * d * (hq + hkv)
    # QuaRot: Hadamard on down's input (n log n adds + the core), across heads, on q and k per head
    import math

    def had(m):  # additions of a fast Walsh-Hadamard transform of size m (plus a dense core)
        from splice_quarot.rotations import hadamard_split
        split = hadamard_split(m)
        if split is None:
            return 2 * m * m
        core, p = split
        return m * int(math.log2(p)) + 2 * core * m
    quarot = had(i) + had(hq) * d + had(d) * (hq + hkv)
    return {"linear": linear, "flatquant": flat, "quarot": quarot,
            "flatquant_ratio": round(flat / linear, 4), "quarot_ratio": round(quarot / linear, 4)}


from splice.model import DecoderConfig

LLAMA3_8B = DecoderConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                          num_attention_heads=32, num_key_value_heads=8)


def overhead(lm, tokens: int = 2048, reps: int = 5) -> dict:
    """CPU wall time of each online transform (+ per-token quantization) vs the linear layers it
    feeds, on one block of the model (fp32, 1 thread)."""
    from splice.quant import fake_quant
    from splice_flatquant.kernels import kron_quant
    from splice_flatquant.transforms import kron_factors
    from splice_quarot.rotations import hadamard

    cfg = lm.config
    n, i, hq, d = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.head_dim
    blk = lm.model.blocks[0]
    g = torch.Generator().manual_seed(0)
    xn, xi = torch.randn(tokens, n, generator=g), torch.randn(tokens, i, generator=g)
    xo = torch.randn(tokens, hq * d, generator=g)

    def best(fn):
        fn()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return min(ts)

    lin = {s: blk.get_submodule(s).weight.detach() for s in block_sites(blk)}
    t_lin = sum(best(lambda w=w, x=(xi if s == "mlp.down" else xo if s == "attn.o" else xn): x @ w.T)
                for s, w in lin.items())
    n1, n2 = kron_factors(n)
    i1, i2 = kron_factors(i)
    L, R = torch.randn(n1, n1), torch.randn(n2, n2)
    Li, Ri = torch.randn(i1, i1), torch.randn(i2, i2)
    Lo = torch.randn(hq, hq)
    clip = torch.tensor([4.0])
    # FlatQuant: one fused transform+quantize per transformed group (q/k/v share P_a, gate/up P_ug)
    t_flat = (2 * best(lambda: kron_quant(xn, L, R, clip_max=clip, clip_min=clip))
              + best(lambda: kron_quant(xi, Li, Ri, clip_max=clip, clip_min=clip))
              + best(lambda: kron_quant(xo, Lo, None, clip_max=clip, clip_min=clip)))
    t_quant_only = (2 * best(lambda: fake_quant(xn, 4, False)) + best(lambda: fake_quant(xi, 4, False))
                    + best(lambda: fake_quant(xo, 4, False)))
    # QuaRot: quantization of every input + Hadamard on down's input and across heads before o
    from splice_quarot.rotations import HeadRotation
    heads = HeadRotation(hq, d)
    t_quarot = (t_quant_only + best(lambda: hadamard(xi)) + best(lambda: heads(xo)))
    return {"tokens": tokens, "linear_ms": round(1e3 * t_lin, 2), "flatquant_online_ms": round(1e3 * t_flat, 2),
            "quarot_online_ms": round(1e3 * t_quarot, 2), "quant_only_ms": round(1e3 * t_quant_only, 2),
            "flatquant_ratio": round(t_flat / t_lin, 3), "quarot_ratio": round(t_quarot / t_lin, 3),
            "flops": online_flops(cfg), "flops_llama3_8b": online_flops(LLAMA3_8B)}


# -- the report -------------------------------------------------------------------------------
NAMES = {"rtn": "RTN", "quarot-rtn": "QuaRot, RTN weights", "quarot": "QuaRot, GPTQ weights",
         "flatquant": "FlatQuant, RTN weights (+ LWC)", "flatquant-gptq": "FlatQuant, GPTQ weights (+ LWC)"}


def _steps(r: dict, prof: dict) -> int:
    cfg = r["config"]
    return cfg["epochs"] * (r.get("calib", [prof["calib_samples"]])[0] // cfg["batch_size"])


def _cell(r: dict | None, kl: bool, prof: dict | None = None) -> str:
    if not r:
        return "(not run)"
    out = f"{r['ppl']:.2f}" + (f" ({r['kl']:.3f})" if kl and r.get("kl") is not None else "")
    cal = r.get("calib")
    uses_data = r.get("config", {}).get("w_method") == "gptq" or "epochs" in r.get("config", {})  # GPTQ, FlatQuant
    if prof is not None and cal and uses_data and cal != [prof["calib_samples"], prof["calib_len"]]:
        c = r["config"]  # an earlier, smaller calibration budget: say which
        steps = f", {_steps(r, prof)} steps" if "epochs" in c else ""
        out += f" [earlier run: {cal[0]} x {cal[1]} tokens{steps}]"
    return out


def _latest(res: dict, key: str) -> dict | None:
    """The current result, or (while its re-measurement is under way) the newest archived one."""
    if key in res:
        return res[key]
    old = [k for k in res.get("archive", {}) if k.split("#")[0] == key]
    return res["archive"][max(old, key=lambda k: int(k.split("#")[1]))] if old else None


def model_section(model: str, res: dict) -> list[str]:
    p = PROFILES[model]
    fp = res.get("fp", {})
    kl = model == "tiny"
    corpus = "Tiny Shakespeare" if model == "smollm2" else "tiny-calib"
    lines = [f"## {model}", ""]
    lines += [(f"Perplexity on {fp.get('corpus', p['eval_corpus'])}: {p['eval_windows']} non-overlapping windows of "
               f"{p['eval_context']} tokens from the start of the test text."
               + (f" In brackets: mean per-token KL(FP || quantized) on the first {p['kl_windows']} windows "
                  "(tiny-eval is mostly random key-value records the model cannot predict, so its perplexity "
                  "barely moves under quantization; the KL is the meaningful error here)." if kl else "")), ""]
    lines += [(f"Calibration, the same windows for every method that uses data (GPTQ, FlatQuant): "
               f"{p['calib_samples']} windows x {p['calib_len']} tokens of {corpus} (seed 0), disjoint from "
               f"the evaluation text. FlatQuant: batch {p['batch_size']}, {p['epochs']} epochs at W4A4KV4 "
               f"({p['epochs_other']} at W4A16 and W8A8), lr 5e-3, cosine: "
               f"{p['epochs'] * (p['calib_samples'] // p['batch_size'])} optimizer steps per block (the paper: "
               "128 x 2048 tokens, batch 4, 15 epochs = 480 steps per block)."), ""]
    lines += ["| method | " + " | ".join(SETTINGS) + " |", "|---|" + "---|" * len(SETTINGS)]
    lines.append("| FP (unquantized) | " + " | ".join(_cell(fp, False) for _ in SETTINGS) + " |")
    for key, label in NAMES.items():
        lines.append(f"| {label} | " + " | ".join(_cell(_latest(res, f"{key}/{s}"), kl, p) for s in SETTINGS) + " |")
    lines.append("")
    w4 = {k: (_latest(res, f"{k}/W4A4KV4") or {}).get("ppl") for k in NAMES}
    if all(w4[k] for k in ("rtn", "quarot-rtn", "quarot", "flatquant")):
        beat_all = w4["flatquant"] < min(w4["quarot"], w4["quarot-rtn"], w4["rtn"])
        gq = w4.get("flatquant-gptq")
        lines += [(f"**W4A4KV4: FlatQuant {w4['flatquant']:.2f} (RTN weights"
                   + (f"; {gq:.2f} with GPTQ weights" if gq else "") + f") vs QuaRot {w4['quarot']:.2f} (GPTQ "
                   f"weights) / {w4['quarot-rtn']:.2f} (RTN weights) vs RTN {w4['rtn']:.2f} (FP {fp.get('ppl', 0):.2f}): "
                   f"FlatQuant {'beats QuaRot and RTN' if beat_all else 'does not beat every baseline'}.**"
                   + (f" Like for like: with RTN weights FlatQuant is {w4['quarot-rtn'] / w4['flatquant']:.2f}x lower "
                      f"than QuaRot, with GPTQ weights {w4['quarot'] / gq:.2f}x." if gq else "")), ""]
        if not beat_all and w4["flatquant"] < w4["quarot-rtn"]:
            w16 = {k: (_latest(res, f"{k}/W4A16") or {}).get("ppl") for k in NAMES}
            lines += [(f"With the same round-to-nearest weight quantizer FlatQuant is {w4['quarot-rtn'] / w4['flatquant']:.1f}x "
                       f"lower than QuaRot ({w4['flatquant']:.2f} vs {w4['quarot-rtn']:.2f}): the learnt transforms and "
                       f"clipping do more than the Hadamard rotation. What it lacks against QuaRot-GPTQ is GPTQ's "
                       f"error-compensating weight rounding (QuaRot: {w4['quarot-rtn'] / w4['quarot']:.1f}x from GPTQ alone"
                       + (f"; 4-bit RTN weights alone already take FP {fp.get('ppl', 0):.2f} to {w16['rtn']:.2f}"
                          if w16.get("rtn") else "")
                       + "), which LWC with this small calibration budget does not make up on a 135M model. The paper's "
                       "result (FlatQuant with RTN weights beating QuaRot with GPTQ weights) is for 7B-70B models, whose weights lose far less to "
                       "4-bit rounding, after 480 steps per block on 262k in-domain tokens."), ""]
    arch = {k: v for k, v in res.get("archive", {}).items() if k.startswith("flatquant/W4A4KV4")}
    live = res.get("flatquant/W4A4KV4")
    cur = _latest(res, "flatquant/W4A4KV4")
    if len(arch) + (live is not None) > 1:
        rows = sorted([*arch.values(), *([live] if live else [])], key=lambda r: (r.get("calib", [0])[0], _steps(r, p)))
        lines += [("FlatQuant W4A4KV4 against its calibration budget (Tiny Shakespeare windows, seed 0; wall "
                   "times on the shared machine):"), "",
                  "| calibration windows x tokens | optimizer steps per block | batch | epochs | PPL | calibration s |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            c, cal = r["config"], r.get("calib", [p["calib_samples"], p["calib_len"]])
            lines.append(f"| {cal[0]} x {cal[1]} | {_steps(r, p)} | {c['batch_size']} | {c['epochs']} | "
                         f"{r['ppl']:.2f} | {r['quantize_seconds']:.0f} |")
        lines.append("")
    if cur and cur.get("calibration_log"):
        log = [e for e in cur["calibration_log"] if "seconds" in e]
        if log:
            secs = [e["seconds"] for e in log]
            cpu = [e["cpu_seconds"] for e in log if "cpu_seconds" in e]
            rss = max(e.get("peak_rss_mb", 0) for e in log)
            first = [e["mse"][0] for e in log if e.get("mse")]
            last = [e["mse"][-1] for e in log if e.get("mse")]
            cal = cur.get("calib")
            which = (f"the {cal[0]} x {cal[1]}-token run above, " if cal and cal != [p["calib_samples"], p["calib_len"]]
                     else "")
            lines += [(f"Calibration cost (W4A4KV4, {which}CPU, 1 thread, on a 2-core machine shared with other jobs, so "
                       f"wall times are inflated): {sum(secs) / len(secs):.1f} s per block (min {min(secs):.1f}, "
                       f"max {max(secs):.1f}; {len(log)} blocks timed in this run)"
                       + (f", of which CPU time {sum(cpu) / len(cpu):.1f} s per block (the process's own share; "
                          f"{sum(cpu) / 60:.1f} CPU-minutes for the whole model)" if cpu else "")
                       + ", peak process memory "
                       f"{rss:.0f} MB (model, FP copy of the block inputs/outputs: "
                       f"{log[0].get('activation_mb', 0):.0f} MB). Block-output MSE, mean of first epoch -> last "
                       f"epoch, averaged over blocks: {sum(first) / max(len(first), 1):.4g} -> "
                       f"{sum(last) / max(len(last), 1):.4g}."), ""]
    ov = res.get("overhead")
    if ov:
        f, f8 = ov["flops"], ov["flops_llama3_8b"]
        lines += [(f"Online transforms per block, relative to the block's linear layers: FLOPs FlatQuant "
                   f"{f['flatquant_ratio']:.3f}x, QuaRot {f['quarot_ratio']:.3f}x (LLaMA-3-8B shapes: "
                   f"{f8['flatquant_ratio']:.3f}x vs {f8['quarot_ratio']:.3f}x; a fast Walsh-Hadamard transform "
                   "is additions only, FlatQuant's Kronecker factors are dense). CPU wall time "
                   f"({ov['tokens']} tokens, fp32, reference kernels, transform + per-token quantization of every "
                   f"linear input): FlatQuant {ov['flatquant_ratio']:.2f}x, QuaRot {ov['quarot_ratio']:.2f}x "
                   f"(the quantization alone {ov['quant_only_ms'] / ov['linear_ms']:.2f}x). Paper (GPU latency, "
                   "fused kernels): 0.07x vs 0.26x."), ""]
    fl = res.get("flatness")
    if fl:
        cols = list(next(iter(fl["max_over_median"].values())))
        lines += [f"![flatness](flatquant_flatness_{model}.png)", "",
                  (f"Flatness, block {fl['block']}: max / median of the sorted per-channel magnitudes "
                   "(x: max |activation| over tokens; w: max |weight| over output rows; 1 = perfectly flat)."), "",
                  "| input of | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for site, d in fl["max_over_median"].items():
            lines.append(f"| {site} | " + " | ".join(f"{v:.2f}" for v in d.values()) + " |")
        lines.append("")
    return lines


def report() -> Path:
    out = RESULTS / "flatquant.md"
    data = {m: json.loads((cache_dir(m) / "results.json").read_text())
            for m in PROFILES if (cache_dir(m) / "results.json").exists()}
    lines = ["# FlatQuant vs QuaRot vs RTN", ""]
    lines += [(f"Measured {dt.date.today():%Y-%m-%d} on {platform.machine()} CPU ({os.cpu_count()} cores shared "
               f"with other jobs, 1 thread), Python {platform.python_version()}, torch {torch.__version__}. "
               "Command: `python bench/flatquant.py` (both models, or one with `--model`; resumable: a killed run "
               "resumes from the stored results and FlatQuant's per-block checkpoints, and `--max-minutes N` stops "
               "starting new work after N minutes; repeat until it prints done)."),
              "",
              ("Paper (WikiText-2, 2048-token context, W4A4KV4, LLaMA-3-8B): FP16 6.14, QuaRot 10.60, SpinQuant 7.96, "
               "**FlatQuant 6.98**. Here: SmolLM2-135M-Instruct (the benchmark model, `bench/models.py`: the "
               "dequantized Q4_1 GGUF, so its FP perplexity is above the hub release's) and the embedded `tiny` "
               "(test scale). W4A4KV4 = 4-bit weights (per channel), 4-bit activations (per token) and 4-bit "
               "asymmetric per-head K/V; W4A16 = weights only; W8A8 = 8-bit weights and activations, "
               "full-precision KV. lm_head and embeddings stay in full precision for every method."), ""]
    for model, res in data.items():
        lines += model_section(model, res)
    # every current result's own time, summed: what one uninterrupted run of both models takes
    secs = {m: sum(v.get("seconds", 0) for k, v in res.items() if k != "archive" and isinstance(v, dict))
            for m, res in data.items()}
    lines += ["## How this was measured", "",
              (f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; measurement time "
               f"{sum(secs.values()) / 60:.1f} min (" + ", ".join(f"{m} {v / 60:.1f} min" for m, v in secs.items())
               + "; the sum of every result's own time, as the runs resumed across sessions)"), ""]
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=[*sorted(PROFILES), "all"], default="all")
    ap.add_argument("--max-minutes", type=float, default=None, help="start no new work after this long")
    ap.add_argument("--report", action="store_true", help="only (re)write docs/results/flatquant.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("SPLICE_NO_PROGRESS", "1")
    if not args.report:
        deadline = time.time() + 60 * args.max_minutes if args.max_minutes else None
        for model in (["tiny", "smollm2"] if args.model == "all" else [args.model]):
            b = Bench(model, deadline)
            b.all()
            missing = [k for k in ["fp", "flatness", "overhead"] + [f"{n}/{s}" for s in SETTINGS for n in NAMES]
                       if k not in b.results]
            print(f"{model}: " + ("done" if not missing else f"not finished (rerun to resume): {missing}"),
                  flush=True)
    print(report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
