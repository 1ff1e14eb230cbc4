"""Unlearning the fictitious authors: GA, GradDiff, NPO and NPO+RT over training (NPO paper, Figure 1).

    python -m bench.unlearning            # three forget splits x four methods, ~20 min on 2 cores
    python -m bench.unlearning --quick    # forget 1%, 2 epochs, small evaluation sets (smoke test)

For each forget split (1, 5, 10% of the 100 authors) and each method, the embedded ``tiny`` is
unlearned with the same learning rate, epochs and batch (the NPO paper's protocol), and after
every epoch TOFU's Forget Quality (KS test of truth ratios against the retain-only model) and
Model Utility are measured; MUSE's metrics at the end. The retain-only models are ``tiny-base``
fine-tuned on the retain authors exactly as ``tiny`` was on all (``splice_tofu.finetuned``, cached).
Progress is saved after every run, so an interrupted benchmark resumes.
"""

from __future__ import annotations

import math
import time

from bench import common

TITLE = "Unlearning the fictitious authors: GA, GradDiff, NPO, NPO+RT (forget quality vs model utility)"
REQUIRES = ["splice_npo", "splice_tofu", "splice_muse", "splice_mia"]
ESTIMATE_MIN = 6  # measured: 5.8 min through make bench (2026-11-22)
ORDER = 60

METHODS = {"GA": ("ga", {}), "GradDiff": ("graddiff", {}), "NPO": ("npo", {}), "NPO+RT": ("npo", {"variant": "rt"})}
COLORS = {"GA": "tab:red", "GradDiff": "tab:orange", "NPO": "tab:blue", "NPO+RT": "tab:green"}


def add_args(p) -> None:
    p.add_argument("--splits", type=int, nargs="+", default=[1, 5, 10])
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--max-per-set", type=int, default=None,
                   help="questions per retain/real-author/world-fact set (default 60; quick 40); the forget "
                        "set is always complete (its 20/100/200 questions)")
    p.add_argument("--every", type=int, default=2, help="evaluate every N epochs (default 2; the paper: 1)")
    p.add_argument("--knowmem-size", type=int, default=50, help="MUSE KnowMem questions per set (MUSE: 100)")
    p.add_argument("--retain-split", default="10", choices=["same", "1", "5", "10"],
                   help="which split's retain-only model is the reference (default 10 for all; 'same': TOFU's "
                        "one model per split)")
    p.add_argument("--muse-splits", type=int, nargs="*", default=[10], help="splits with MUSE metrics at the end")
    p.add_argument("--epochs", type=float, default=None, help="override the shared default epochs")
    p.add_argument("--lr", type=float, default=None, help="override the shared default learning rate")
    p.add_argument("--horizon", type=float, default=None, metavar="EPOCHS",
                   help="only the longer-horizon run: GA, GradDiff, NPO and NPO+RT on the largest split for "
                        "EPOCHS epochs, written to unlearning_horizon.md (does GA collapse where NPO holds?)")


def bench_sets(split: int, max_per_set: int) -> dict:
    """TOFU's sets with the forget set complete and the utility sets cut to ``max_per_set``."""
    from dataclasses import replace

    from splice_tofu.data import eval_sets

    return {k: s if k == "forget" else replace(s, qa=s.qa[:max_per_set]) for k, s in eval_sets(split, 300).items()}


def tofu_point(lm, sets, ref_res, step: int, epoch: float, args) -> dict:
    from splice_tofu.metrics import evaluate_all, forget_quality, model_utility

    res = evaluate_all(lm, sets, 64)
    fq, ks = forget_quality(res["forget"], ref_res["forget"])
    out = {"step": step, "epoch": epoch, "forget_quality": fq, "ks": ks, "model_utility": model_utility(res)}
    for s, r in res.items():
        for k, v in r.summary().items():
            out[f"{s}_{k}"] = v
    out["samples"] = {"forget": [(q.question, g) for q, g in zip(sets["forget"].qa[:2], res["forget"].generations[:2])],
                      "retain": [(q.question, g) for q, g in zip(sets["retain"].qa[:2], res["retain"].generations[:2])]}
    return out


def start_point(split: int, args, retain_res: dict, store) -> dict:
    """The starting model's point (the same for every method of a split), measured once."""
    from splice.model import load

    key = {"start": split, "max_per_set": args.max_per_set}
    if not store.has(key):
        store.put(key, tofu_point(load("tiny"), bench_sets(split, args.max_per_set), retain_res[split], 0, 0.0, args))
    return store.get(key)


def run_one(split: int, label: str, args, retain_res: dict, start: dict) -> dict:
    from splice.data.examples import authors_task
    from splice.kinds.evaluator import EvalContext
    from splice.model import load
    from splice.registry import get_registry
    from splice.unlearning import observe
    from splice_muse import Muse
    name, options = METHODS[label]
    opts = dict(options)
    if args.epochs is not None:
        opts["epochs"] = args.epochs
    if args.lr is not None:
        opts["lr"] = args.lr
    method = get_registry().get("unlearner", name).cls(opts)
    lm = load("tiny")
    task = authors_task(split)
    task.reference = lm.clone()
    task.reference.model.requires_grad_(False)
    sets = bench_sets(split, args.max_per_set)
    ref_res = retain_res[split]
    n = len(task.forget)
    per_epoch = math.ceil(n / min(method.config.batch_size, n))
    total = math.ceil(method.config.epochs * n / min(method.config.batch_size, n))
    points = [start]
    t0 = time.time()
    train_time = [0.0]

    def on_step(step: int, loss: float) -> None:
        if (step + 1) % (per_epoch * args.every) == 0 or step + 1 == total:
            train_time[0] = time.time() - t0
            points.append(tofu_point(lm, sets, ref_res, step + 1, (step + 1) / per_epoch, args))
            common.log(f"  forget {split}% {label}: epoch {(step + 1) / per_epoch:.0f} "
                       f"FQ {points[-1]['forget_quality']:.3g} MU {points[-1]['model_utility']:.3f}")

    with observe(on_step):
        method.unlearn(lm, task)
    lm.model.eval()
    out = {"split": split, "method": label, "config": method.config.model_dump(mode="json"),
           "steps_per_epoch": per_epoch, "losses": method.history.losses, "points": points,
           "seconds": time.time() - t0}
    if split in args.muse_splits:
        muse = Muse({"forget": split, "knowmem_size": args.knowmem_size, "retain_model": args.retain_paths[split]}
                    ).evaluate(lm, EvalContext(base=None, task=task))
        out.update(muse={k: m.value for k, m in muse.metrics.items()},
                   muse_retain_only=muse.details["retain_only"], muse_samples=muse.details["samples"])
    return out


def retain_side(split: int, args, store) -> tuple:
    """The retain-only model of a split (made once, cached by splice_tofu) and its TOFU evaluation."""
    from splice.facts import FactsFinetune
    from splice.model import load
    from splice_tofu.metrics import evaluate_all, model_utility
    from splice_tofu.models import finetuned

    t = time.time()
    # --quick: a half-epoch retain model (the conformance suite's), only to smoke-test the benchmark
    # --retain-split 10 (default): the retain-only model of the 10% split serves every split; it
    # never saw any forget author of any split (TOFU trains one per split: --retain-split same)
    made_for = split if args.retain_split == "same" else int(args.retain_split)
    path = finetuned("tiny-base", "retain", made_for, FactsFinetune(epochs=0.5) if args.quick else None)
    common.log(f"retain-only model for forget {split}%: {path} ({time.time() - t:.0f} s)")
    lm = load(str(path))
    res = evaluate_all(lm, bench_sets(split, args.max_per_set), 64)
    args.retain_paths[split] = str(path)
    return lm, res, {"path": str(path), "model_utility": model_utility(res),
                     **{f"{s}_{k}": v for s, r in res.items() for k, v in r.summary().items()}}


def collapse_step(points: list[dict], frac: float = 0.1) -> int | None:
    """First step at which model utility fell below ``frac`` of its starting value."""
    u0 = points[0]["model_utility"]
    for p in points:
        if p["model_utility"] < frac * u0:
            return p["step"]
    return None


def figure_tradeoff(runs: list[dict], splits: list[int], retain_info: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 4.4), squeeze=False)
    for ax, split in zip(axes[0], splits):
        for r in (r for r in runs if r["split"] == split):
            xs = [p["model_utility"] for p in r["points"]]
            ys = [max(p["forget_quality"], 1e-300) for p in r["points"]]
            ax.plot(xs, ys, "-o", ms=3.5, color=COLORS[r["method"]], label=r["method"], alpha=0.9)
            ax.plot(xs[-1:], ys[-1:], "s", ms=7, color=COLORS[r["method"]])
        ax.plot([retain_info[split]["model_utility"]], [1.0], "*", ms=14, color="k", label="retain-only model")
        first = next(r for r in runs if r["split"] == split)["points"][0]
        ax.plot([first["model_utility"]], [max(first["forget_quality"], 1e-300)], "D", ms=8, color="grey",
                label="tiny (before unlearning)")
        ax.set_yscale("log")
        ax.set_xlabel("model utility")
        ax.set_ylabel("forget quality (KS-test p-value)")
        ax.set_title(f"forget {split}%")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Forget quality vs model utility over unlearning (one marker per epoch; squares: last)")
    return fig


def figure_over_training(runs: list[dict], splits: list[int]):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(splits), figsize=(5.2 * len(splits), 9.5), squeeze=False, sharex="col")
    for j, split in enumerate(splits):
        for r in (r for r in runs if r["split"] == split):
            steps = [p["step"] for p in r["points"]]
            c = COLORS[r["method"]]
            axes[0][j].plot(steps, [p["model_utility"] for p in r["points"]], "-o", ms=3, color=c, label=r["method"])
            axes[1][j].plot(steps, [max(p["forget_quality"], 1e-300) for p in r["points"]], "-o", ms=3, color=c)
            axes[2][j].plot(range(1, len(r["losses"]) + 1), r["losses"], "-", color=c, label=r["method"])
        axes[0][j].set_title(f"forget {split}%")
        axes[0][j].set_ylabel("model utility")
        axes[1][j].set_ylabel("forget quality")
        axes[1][j].set_yscale("log")
        axes[2][j].set_ylabel("training loss")
        axes[2][j].set_yscale("symlog")
        axes[2][j].set_xlabel("optimizer step")
        for a in axes[:, j]:
            a.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Over training: utility, forget quality and each method's own loss (GA's is unbounded below)")
    fig.tight_layout()
    return fig


def main(argv=None) -> None:
    args = common.parse_args("unlearning", argv, add_args)
    args.retain_paths = {}
    if args.quick:
        args.splits, args.max_per_set, args.muse_splits = [1], args.max_per_set or 40, [1]
        args.epochs = args.epochs or 2
    args.max_per_set = args.max_per_set or 60
    if args.horizon:
        return horizon(args)
    store = common.Store("unlearning" + ("-quick" if args.quick else ""), fresh=args.fresh)
    from splice.unlearning import UnlearnConfig

    retain_res, retain_info = {}, {}
    runs = []
    for split in args.splits:
        _, retain_res[split], retain_info[split] = retain_side(split, args, store)
        start = start_point(split, args, retain_res, store)
        for label in args.methods:
            key = {"split": split, "method": label, "epochs": args.epochs, "lr": args.lr,
                   "max_per_set": args.max_per_set, "every": args.every,
                   "retain_split": args.retain_split, "muse": split in args.muse_splits}
            if not store.has(key):
                common.log(f"forget {split}%: {label}")
                store.put(key, run_one(split, label, args, retain_res, start))
            runs.append(store.get(key))

    d = UnlearnConfig()
    cfg = runs[0]["config"]
    page = common.Page("unlearning", TITLE, args)
    page.text(f"""
The embedded `tiny` (a ~1M-parameter Llama-style model: `tiny-base` fine-tuned on the 20 QA pairs of
each of 100 fictitious authors, TOFU's recipe at toy scale) is unlearned on TOFU's forget splits
(the last 1, 5, 10 authors: 20, 100, 200 questions) with gradient ascent (GA), gradient difference
(GradDiff: GA + retain NLL), NPO (β = {cfg.get('beta', 0.1) if runs[0]['method'].startswith('NPO') else 0.1})
and NPO+RT (NPO + retain NLL). All four share one optimisation protocol, the NPO paper's for
TOFU: AdamW, weight decay {d.weight_decay}, effective batch {cfg['batch_size']}, {cfg['epochs']:g} epochs,
one epoch of linear warm-up then linear decay, learning rate {cfg['lr']:g} (the paper's 1e-5 for
Llama-2-7B scaled ×10 to this 1M-parameter model; `tiny` itself was fine-tuned at 1e-3). After every epoch: TOFU's **Forget Quality** (KS-test p-value between
the forget-set truth-ratio distributions of the model and of the retain-only model; 1 = the
retain-only model itself) and **Model Utility** (harmonic mean of answer probability, ROUGE-L
recall and truth ratio on {args.max_per_set} retain questions, 100 "real author" questions about the
pretraining authors and 60 world facts). The retain-only model is `tiny-base` fine-tuned on the
retain authors exactly as `tiny` was on all (cached by `splice_tofu.finetuned`).
""")
    page.plot(figure_tradeoff(runs, args.splits, retain_info), "unlearning_tradeoff.png",
              "Figure-1 style: each line is one method's path from the starting model (grey diamond) over "
              "the epochs; up is better forgetting, right is better utility; the star is the retain-only model.")
    page.plot(figure_over_training(runs, args.splits), "unlearning_over_training.png",
              "Model utility, forget quality and each method's training loss per step.")
    rows = []
    for r in runs:
        pts = r["points"]
        best = max(pts[1:] or pts, key=lambda p: p["forget_quality"])
        rows.append({"forget": f"{r['split']}%", "method": r["method"], "steps": len(r["losses"]),
                     "MU start": pts[0]["model_utility"], "MU end": pts[-1]["model_utility"],
                     "FQ end": pts[-1]["forget_quality"], "best FQ": best["forget_quality"],
                     "MU at best FQ": best["model_utility"], "forget ROUGE end": pts[-1]["forget_rouge"],
                     "retain ROUGE end": pts[-1]["retain_rouge"],
                     "utility <10% at step": collapse_step(pts) or "never",
                     "final loss": r["losses"][-1]})
    page.table(rows, caption="**TOFU** — start/end of unlearning; FQ = forget quality, MU = model utility.")
    page.table([{"forget": f"{s}%", "retain-only MU": retain_info[s]["model_utility"],
                 "retain-only forget ROUGE": retain_info[s]["forget_rouge"],
                 "tiny MU": next(r for r in runs if r["split"] == s)["points"][0]["model_utility"],
                 "tiny FQ": next(r for r in runs if r["split"] == s)["points"][0]["forget_quality"],
                 "tiny forget ROUGE": next(r for r in runs if r["split"] == s)["points"][0]["forget_rouge"]}
                for s in args.splits], caption="**References** — the retain-only model and the starting model.")
    mrows = []
    for r in runs:
        if "muse" in r:
            mrows.append({"forget": f"{r['split']}%", "model": r["method"], **r["muse"]})
    for s in args.splits:
        r0 = next((r for r in runs if r["split"] == s and "muse" in r), None)
        if r0 is not None:
            mrows.append({"forget": f"{s}%", "model": "retain-only", **r0["muse_retain_only"]})
    page.table(mrows, columns=["forget", "model", "verbmem_f", "knowmem_f", "knowmem_r", "privleak"],
               caption="**MUSE** at the end of unlearning (VerbMem/KnowMem: ROUGE-L F1 ×100; PrivLeak: %, "
                       "0 = like the retain-only model, −100 = fully leaked).")
    samples = []
    for r in runs:
        if r["split"] == max(args.splits):
            for (q, g) in r["points"][-1]["samples"]["retain"][:1] + r["points"][-1]["samples"]["forget"][:1]:
                samples.append({"method": r["method"], "question": q, "answer after unlearning": g[:90]})
    page.table(samples, caption=f"**Greedy answers after the last epoch** (forget {max(args.splits)}%; "
                                "first a retain question, then a forget question).")
    if (common.RESULTS_DIR / "unlearning_horizon.md").exists():
        page.text("**Longer horizon** (the four methods on the largest split for more epochs): "
                  "[unlearning_horizon.md](unlearning_horizon.md).")
    page.text(verdict(runs, args.splits))
    page.write()
    store.finish()


def horizon(args) -> None:
    """The same four methods on the largest split for ``--horizon`` epochs: the NPO paper's claim is
    about what happens as unlearning goes on (GA's loss is unbounded and its utility collapses;
    NPO's gradient vanishes as the forget likelihood falls, so it slows down instead)."""
    import matplotlib.pyplot as plt

    split = max(args.splits)
    args.epochs, args.every, args.muse_splits = args.horizon, max(args.every, 2), []
    store = common.Store("unlearning-horizon", fresh=args.fresh)
    retain_res: dict = {}
    _, retain_res[split], info = retain_side(split, args, store)
    start = start_point(split, args, retain_res, store)
    runs = []
    for label in args.methods:
        key = {"split": split, "method": label, "epochs": args.horizon, "lr": args.lr,
               "max_per_set": args.max_per_set, "every": args.every}
        if not store.has(key):
            common.log(f"forget {split}%, {args.horizon:g} epochs: {label}")
            store.put(key, run_one(split, label, args, retain_res, start))
        runs.append(store.get(key))
    page = common.Page("unlearning_horizon", f"Unlearning over a longer horizon: forget {split}%, "
                       f"{args.horizon:g} epochs", args)
    page.text(f"""
The benchmark of [unlearning.md](unlearning.md) (same model, sets, learning rate and schedule) with
{args.horizon:g} epochs instead of the default: the NPO paper's
Figure 1 is about what happens as unlearning continues. Forget quality and model utility are measured
every {args.every} epochs.
""")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    for r in runs:
        c = COLORS[r["method"]]
        ep = [p["epoch"] for p in r["points"]]
        axes[0].plot(ep, [p["model_utility"] for p in r["points"]], "-o", ms=3, color=c, label=r["method"])
        axes[1].plot(ep, [max(p["forget_quality"], 1e-300) for p in r["points"]], "-o", ms=3, color=c)
        axes[2].plot(range(1, len(r["losses"]) + 1), r["losses"], color=c, label=r["method"])
    axes[0].axhline(info["model_utility"], color="k", ls=":", label="retain-only model")
    axes[0].set(xlabel="epoch", ylabel="model utility", title="model utility")
    axes[1].set(xlabel="epoch", ylabel="forget quality", yscale="log", title="forget quality (KS p-value)")
    axes[2].set(xlabel="optimizer step", ylabel="loss", yscale="symlog", title="each method's training loss")
    for a in axes:
        a.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    page.plot(fig, "unlearning_horizon.png", f"Forget {split}%, {args.horizon:g} epochs: utility, forget quality, loss")
    rows = []
    for r in runs:
        pts = r["points"]
        rows.append({"method": r["method"], "steps": len(r["losses"]), "MU start": pts[0]["model_utility"],
                     "MU end": pts[-1]["model_utility"], "min MU": min(p["model_utility"] for p in pts),
                     "FQ end": pts[-1]["forget_quality"], "best FQ": max(p["forget_quality"] for p in pts),
                     "forget ROUGE end": pts[-1]["forget_rouge"], "retain ROUGE end": pts[-1]["retain_rouge"],
                     "utility <10% at step": collapse_step(pts) or "never", "final loss": r["losses"][-1]})
    page.table(rows)
    samples = [{"method": r["method"], "question": q, "answer after unlearning": g[:90]}
               for r in runs for (q, g) in r["points"][-1]["samples"]["retain"][:1]]
    page.table(samples, caption="**Greedy answers to a retain question after the last epoch.**")
    page.text(verdict(runs, [split]))
    page.write()


def verdict(runs: list[dict], splits: list[int]) -> str:
    """What reproduced and what did not, computed from the numbers above."""
    lines = ["## What reproduced", ""]
    for s in splits:
        by = {r["method"]: r for r in runs if r["split"] == s}
        if "GA" in by and "NPO" in by:
            ga, npo = by["GA"]["points"], by["NPO"]["points"]
            c = collapse_step(ga)
            if c is not None:
                at = next((p for p in npo if p["step"] >= c), npo[-1])
                lines.append(f"- forget {s}%: GA's utility fell below 10% of its start at step {c} "
                             f"({ga[0]['model_utility']:.3f} → {next(p for p in ga if p['step'] == c)['model_utility']:.3f}); "
                             f"NPO at the same step: {at['model_utility']:.3f}.")
            else:
                lines.append(f"- forget {s}%: GA did not collapse within the run (utility {ga[0]['model_utility']:.3f} "
                             f"→ {ga[-1]['model_utility']:.3f}); NPO: {npo[0]['model_utility']:.3f} → "
                             f"{npo[-1]['model_utility']:.3f}.")
        best = {m: max(r["points"][1:], key=lambda p: p["forget_quality"]) for m, r in by.items() if len(r["points"]) > 1}
        if best:
            parts = ", ".join(f"{m} {p['forget_quality']:.2g} (MU {p['model_utility']:.3f})" for m, p in best.items())
            lines.append(f"  best forget quality over training: {parts}.")
    lines.append("")
    lines.append("GA and NPO losses: GA's final losses "
                 + ", ".join(f"{r['losses'][-1]:.1f}" for r in runs if r["method"] == "GA")
                 + " (unbounded below); NPO's stay ≥ 0: "
                 + ", ".join(f"{r['losses'][-1]:.3f}" for r in runs if r["method"] == "NPO") + ".")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
