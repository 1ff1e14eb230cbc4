"""Small-LM pretraining on WikiText-2 with SwiGLU, PolyNorm, PolyReLU and KAT MLPs (issue 9).

    .venv/bin/python -m bench.activations                 # all variants x 3 seeds (resumes)
    .venv/bin/python -m bench.activations --max-minutes 18 # stop starting runs after 18 min; rerun to go on
    .venv/bin/python -m bench.activations --quick          # smoke test

The claim (PolyCom, arXiv 2411.03884): PolyNorm / PolyReLU converge faster and reach a lower loss
than SwiGLU at equal parameters. KAT (arXiv 2409.10594) is trained in the same setting.

Setup, identical for every variant except the MLP:
- data: WikiText-2 raw *test* split (our only large real corpus), cut into its articles (" = Title = "
  headings); every 10th article is held out for evaluation, the rest is training text, so train and
  evaluation never share an article;
- tokenizer: a 2048-entry byte-level BPE trained (splice's ``train_bpe``, the recipe of the
  embedded model's tokenizer) on the training articles only;
- model: the embedded ``tiny`` architecture (hidden 128, 4 layers, 4 heads, 2 KV heads, tied
  embeddings, RoPE) from scratch. SwiGLU: gated MLP, intermediate 384 (3 matrices). PolyNorm,
  PolyReLU, KAT: ungated MLP, intermediate 576 (2 matrices) -> equal parameter counts (KAT and
  PolyCom add 160 / 4 scalars per layer), as the PolyCom paper does;
- init: ``splice.pipeline.reinitialize`` (what ``splice train --scratch`` uses): N(0, 0.02) linears,
  methods' own init (PolyCom coefficients 1/3, KAT rationals + variance-preserving linears);
- training: ``splice.train.train`` (AdamW, betas 0.9/0.95, weight decay 0.1, lr 2e-3, 5% warm-up,
  cosine to 10%, grad clip 1), batch 16 x 128 tokens, 300 steps, seeds 0, 1, 2.
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from bench import common

TITLE = "Activations trained from scratch: SwiGLU vs PolyNorm / PolyReLU / KAT on WikiText-2"
REQUIRES = ["splice_polycom", "splice_kat"]
ESTIMATE_MIN = 150  # the 12 stored runs took 148 min (their own "seconds"), on the shared machine
ORDER = 70

VARIANTS: dict[str, dict[str, Any]] = {
    "swiglu": {"gated": True, "intermediate": 384, "act": None},
    "polynorm": {"gated": False, "intermediate": 576, "act": ("polycom", {"variant": "polynorm"})},
    "polyrelu": {"gated": False, "intermediate": 576, "act": ("polycom", {"variant": "polyrelu"})},
    "kat": {"gated": False, "intermediate": 576, "act": ("kat", {"width": "site"})},
}
HEADING = re.compile(r"^ = [^=].* = $")


# -- data ------------------------------------------------------------------------------------------

def wikitext_articles() -> list[str]:
    """The WikiText-2 raw test split cut into articles at its top-level headings."""
    from splice.data.corpora import shared_file

    lines = shared_file("wikitext2").read_text(encoding="utf-8").splitlines()
    articles: list[list[str]] = []
    for line in lines:
        line = line.rstrip("\r")
        if HEADING.match(line) or not articles:
            articles.append([])
        if line.strip():
            articles[-1].append(line.strip())
    return ["\n\n".join(a) for a in articles if a]


def split_articles(every: int = 10) -> tuple[list[str], list[str]]:
    """(train, eval): every ``every``-th article (0, 10, 20 ...) is held out."""
    arts = wikitext_articles()
    return [a for i, a in enumerate(arts) if i % every], [a for i, a in enumerate(arts) if i % every == 0]


_DATA: dict[tuple, Any] = {}


def cache_dir() -> Path:
    return Path(os.environ.get("SPLICE_CACHE", "~/.cache/splice")).expanduser() / "bench"


def prepared(seq_len: int, vocab: int = 2048):
    """(tokenizer, packed training examples, eval windows N×seq_len, description), cached per process
    (the tokenizer is trained once and kept in the cache folder: training it is deterministic)."""
    key = (seq_len, vocab)
    if key not in _DATA:
        from splice.data.packing import pack, windows
        from splice.data.tokenizer_training import train_bpe
        from splice.model.tokenizer import Tokenizer

        train_docs, eval_docs = split_articles()
        tok_dir = cache_dir() / f"wikitext2-articles-bpe{vocab}"
        if (tok_dir / "tokenizer.json").exists():
            tok = Tokenizer.from_dir(tok_dir)
        else:
            tok = train_bpe(train_docs, vocab_size=vocab)
            tok_dir.mkdir(parents=True, exist_ok=True)
            tok.save(tok_dir)
        data = pack(train_docs, tok, seq_len)
        stream: list[int] = []
        for ids in tok.encode_batch(eval_docs):
            stream += ids + ([tok.eos_id] if tok.eos_id is not None else [])
        win = windows(stream, seq_len)
        n_train = sum(int((d["labels"] != -100).sum()) for d in data)
        desc = (f"{len(train_docs)} training articles ({n_train} tokens, {len(data)} windows of {seq_len}); "
                f"{len(eval_docs)} held-out articles ({len(stream)} tokens, {len(win)} windows of {seq_len})")
        _DATA[key] = (tok, data, win, desc)
    return _DATA[key]


# -- models ----------------------------------------------------------------------------------------

def tiny_architecture(vocab: int, seq_len: int, gated: bool, intermediate: int, tok=None):
    from splice.model import DecoderConfig

    return DecoderConfig(vocab_size=vocab, hidden_size=128, intermediate_size=intermediate, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max(seq_len, 256),
                         rope_theta=10000.0, tie_word_embeddings=True, rms_norm_eps=1e-5, mlp_gated=gated,
                         bos_token_id=getattr(tok, "bos_id", None), eos_token_id=getattr(tok, "eos_id", None),
                         pad_token_id=getattr(tok, "pad_id", None))


def build_model(variant: str, vocab: int, seq_len: int, seed: int, tok=None):
    from splice.install import install_activation
    from splice.model import Decoder
    from splice.pipeline import reinitialize
    from splice.registry import get_registry

    spec = VARIANTS[variant]
    model = Decoder(tiny_architecture(vocab, seq_len, spec["gated"], spec["intermediate"], tok))
    if spec["act"] is not None:
        name, opts = spec["act"]
        install_activation(model, get_registry().get("activation", name).cls(opts))
    reinitialize(model, seed)
    return model


@torch.no_grad()
def eval_loss(model, win: torch.Tensor, batch: int = 16) -> float:
    model.eval()
    total, n = 0.0, 0
    for i in range(0, len(win), batch):
        x = win[i:i + batch]
        logits = model(x).logits
        total += float(torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(),
                                                         reduction="sum"))
        n += x[:, 1:].numel()
    model.train()
    return total / n


def train_resumable(model, data, cfg, checkpoint: Path | None, deadline: float | None, on_step, extra: dict):
    """``splice.train.train``'s single-process loop step for step (same data order, schedule, clipping,
    optimizer), plus a checkpoint: past ``deadline`` it saves everything (model, optimizer, data order,
    losses, ``extra``) and returns None; called again with the checkpoint it goes on where it stopped."""
    from splice.train import causal_lm_loss, collate, lr_at, make_optimizer

    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    order: list[int] = []
    losses: list[float] = []
    start = 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        order, losses, start = state["order"], state["losses"], state["step"]
        extra.update(state["extra"])
        common.log(f"resuming at step {start}")
    model.train()
    for step in range(start, cfg.steps):
        if checkpoint is not None and deadline is not None and time.time() > deadline:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(), "order": order,
                        "losses": losses, "step": step, "extra": extra}, checkpoint)
            common.log(f"paused at step {step} (checkpoint {checkpoint.name})")
            return None
        while len(order) < cfg.batch_size:
            order += torch.randperm(len(data), generator=gen).tolist()
        idx, order = order[: cfg.batch_size], order[cfg.batch_size:]
        batch = collate([data[i] for i in idx])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss = causal_lm_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        losses.append(float(loss.detach()))
        on_step(step, losses[-1])
    if checkpoint is not None and checkpoint.exists():
        checkpoint.unlink()
    model.eval()
    return losses


def train_run(variant: str, seed: int, steps: int, batch: int, seq_len: int, lr: float, eval_every: int,
              eval_windows: int, checkpoint: Path | None = None, deadline: float | None = None) -> dict[str, Any] | None:
    from splice.train import TrainConfig

    tok, data, win, _ = prepared(seq_len)
    win = win[:eval_windows]
    model = build_model(variant, tok.vocab_size, seq_len, seed, tok)
    cfg = TrainConfig(steps=steps, batch_size=batch, lr=lr, weight_decay=0.1, betas=(0.9, 0.95), warmup=0.05,
                      schedule="cosine", min_lr_ratio=0.1, grad_clip=1.0, seed=seed)
    extra: dict[str, Any] = {"curve": [], "seconds": 0.0}
    if checkpoint is None or not checkpoint.exists():
        extra["curve"].append((0, eval_loss(model, win)))

    def on_step(step: int, loss: float) -> None:
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            extra["curve"].append((step + 1, eval_loss(model, win)))

    t0 = time.time()
    losses = train_resumable(model, data, cfg, checkpoint, deadline, on_step, extra)
    if losses is None:  # paused: add this session's time to the checkpoint
        state = torch.load(checkpoint, weights_only=False)
        state["extra"]["seconds"] = state["extra"].get("seconds", 0.0) + time.time() - t0
        torch.save(state, checkpoint)
        return None
    return {"variant": variant, "seed": seed, "params": sum(p.numel() for p in model.parameters()),
            "train_loss": losses, "eval": extra["curve"], "seconds": extra.get("seconds", 0.0) + time.time() - t0}


# -- report ----------------------------------------------------------------------------------------

def smooth(xs: list[float], k: int = 10) -> list[float]:
    out, acc = [], 0.0
    for i, x in enumerate(xs):
        acc += x
        if i >= k:
            acc -= xs[i - k]
        out.append(acc / min(i + 1, k))
    return out


def steps_to(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((s for s, v in curve if v <= target), None)


def report(args, runs: list[dict[str, Any]], desc: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    page = common.Page("activations", TITLE, args)
    page.text(__doc__.split("\n\n", 2)[2])  # the claim and the setup (the module docstring after the usage)
    page.text(f"Data: {desc}.")
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
    base = [r for r in runs if r["variant"] == "swiglu"]
    base_final = sum(r["eval"][-1][1] for r in base) / len(base) if base else None
    rows = []
    for r in sorted(runs, key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"])):
        final = r["eval"][-1][1]
        rows.append({"variant": r["variant"], "seed": r["seed"], "params": r["params"],
                     "final train loss (mean last 20 steps)": sum(r["train_loss"][-20:]) / len(r["train_loss"][-20:]),
                     "final eval loss": final, "eval ppl": math.exp(final),
                     "eval loss @ 1/3 of steps": next(v for s, v in r["eval"] if s >= len(r["train_loss"]) // 3),
                     "steps to SwiGLU's final eval loss": steps_to(r["eval"], base_final) if base_final else None,
                     "minutes": r["seconds"] / 60})
    page.heading("Final numbers per seed")
    page.table(rows)
    summary = []
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        finals = torch.tensor([r["eval"][-1][1] for r in rs])
        trains = torch.tensor([sum(r["train_loss"][-20:]) / len(r["train_loss"][-20:]) for r in rs])
        diffs = None
        if base and v != "swiglu":  # paired by seed
            pairs = [(r["eval"][-1][1], b["eval"][-1][1]) for r in rs for b in base if b["seed"] == r["seed"]]
            diffs = torch.tensor([a - b for a, b in pairs])
        summary.append({"variant": v, "seeds": len(rs), "eval loss mean": float(finals.mean()),
                        "eval loss std": float(finals.std()) if len(rs) > 1 else 0.0,
                        "train loss mean": float(trains.mean()),
                        "Δ eval vs SwiGLU (paired mean)": float(diffs.mean()) if diffs is not None else 0.0,
                        "Δ min..max over seeds": (f"{float(diffs.min()):+.4f} .. {float(diffs.max()):+.4f}"
                                                  if diffs is not None else "-")})
    page.heading("Summary (mean over seeds)")
    page.table(summary)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    colors = dict(zip(VARIANTS, ["black", "tab:blue", "tab:orange", "tab:green"]))
    for v in variants:
        for r in [r for r in runs if r["variant"] == v]:
            axes[0].plot(smooth(r["train_loss"]), color=colors[v], alpha=0.7, lw=1,
                         label=v if r["seed"] == min(x["seed"] for x in runs if x["variant"] == v) else None)
            s, e = zip(*r["eval"])
            axes[1].plot(s, e, color=colors[v], alpha=0.7, marker=".", lw=1,
                         label=v if r["seed"] == min(x["seed"] for x in runs if x["variant"] == v) else None)
    axes[0].set(title="training loss (10-step moving average), every seed", xlabel="step", ylabel="loss")
    axes[1].set(title="held-out articles: loss", xlabel="step", ylabel="loss")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    lo = min(min(e for _, e in r["eval"]) for r in runs)
    axes[0].set_ylim(lo - 0.3, lo + 3)
    axes[1].set_ylim(lo - 0.3, lo + 3)
    page.plot(fig, "activations_curves.png", "Training and held-out loss of every run (colour = MLP, one line per seed)")
    page.heading("Reading")
    page.text(verdict(summary))
    page.heading("The other claims of issue 9")
    page.text(other_claims())
    page.write()


def other_claims() -> str:
    """The StableMax and attention-sink results, from their own pages (bench/grokking.py, bench/sinks.py)."""
    numerics = ("- StableMax numerics (test `plugins/stablemax/tests/test_stablemax_numerics.py`): float32 logits "
                "[0, 120], label 1 — softmax cross-entropy gradient exactly [0, 0]; StableMax's [8.197e-3, −6.774e-5] "
                "(= s′(x)/s(x)·(p − y), p = [1/122, 121/122]), through `output_act` and the paper's float64 loss "
                "alike.")
    out = [numerics]
    for name, what in (("grokking", "Grokking without weight decay (StableMax, ⊥Grad)"),
                       ("sinks", "Attention sinks (softmax vs sigmoid attention)")):
        path = common.RESULTS_DIR / f"{name}.md"
        if not path.exists():
            out.append(f"- {what}: [{name}.md]({name}.md) not written yet (`python -m bench.{name}`).")
            continue
        text = path.read_text()
        reading = text.split("## Reading", 1)[1].split("\n## ", 1)[0].strip() if "## Reading" in text else ""
        out.append(f"- {what} — [{name}.md]({name}.md):\n" + "\n".join("  " + line for line in reading.splitlines()))
    return "\n".join(out)


def verdict(summary: list[dict[str, Any]]) -> str:
    by = {s["variant"]: s for s in summary}
    if "swiglu" not in by:
        return "SwiGLU baseline missing."
    lines = []
    for v in ("polynorm", "polyrelu", "kat"):
        if v in by:
            d = by[v]["Δ eval vs SwiGLU (paired mean)"]
            spread = by[v]["Δ min..max over seeds"]
            lines.append(f"- **{v}**: final held-out loss {by[v]['eval loss mean']:.4f} vs SwiGLU "
                         f"{by['swiglu']['eval loss mean']:.4f} (paired Δ {d:+.4f}, per seed {spread}): "
                         + ("lower than SwiGLU" if d < 0 else "not lower than SwiGLU") + " in this setting.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    def add(p):
        p.add_argument("--variants", default=",".join(VARIANTS))
        p.add_argument("--seeds", default="0,1,2")
        p.add_argument("--steps", type=int, default=300)
        p.add_argument("--batch", type=int, default=16)
        p.add_argument("--seq-len", type=int, default=128)
        p.add_argument("--lr", type=float, default=2e-3)
        p.add_argument("--eval-every", type=int, default=25)
        p.add_argument("--eval-windows", type=int, default=96)
        p.add_argument("--max-minutes", type=float, default=None,
                       help="pause (checkpointing the current run) after this many minutes; rerun to continue")

    args = common.parse_args("activations", argv, add)
    if args.quick:
        args.steps, args.seeds, args.eval_every, args.eval_windows = 6, "0", 3, 4
    name = "activations" + ("-quick" if args.quick else "")
    store = common.Store(name, fresh=args.fresh)
    deadline = common.deadline_after(args.max_minutes)

    def one(key: dict):
        ckpt = cache_dir() / f"{name}-checkpoints" / f"{common.digest(key)}.pt"
        return train_run(key["variant"], key["seed"], args.steps, args.batch, args.seq_len, args.lr, args.eval_every,
                         args.eval_windows, checkpoint=ckpt, deadline=deadline)

    cases = [({"variant": v, "seed": int(s), "steps": args.steps, "batch": args.batch, "seq_len": args.seq_len,
               "lr": args.lr}, f"{v} seed {s}") for s in args.seeds.split(",") for v in args.variants.split(",")]
    if not common.run_grid(store, cases, one, lambda r: f"final eval loss {r['eval'][-1][1]:.4f}", deadline):
        return
    runs = store.rows()
    _, _, _, desc = prepared(args.seq_len)
    report(args, runs, desc)


if __name__ == "__main__":
    main()
