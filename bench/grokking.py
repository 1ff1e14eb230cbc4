"""Grokking modular addition without weight decay: softmax vs StableMax vs ⊥Grad (issue 9).

    .venv/bin/python -m bench.grokking                  # 3 methods x 3 seeds (resumes)
    .venv/bin/python -m bench.grokking --max-minutes 15 # stop starting runs after 15 min; rerun to go on
    .venv/bin/python -m bench.grokking --quick

The claim (Prieto et al., Grokking at the Edge of Numerical Stability, arXiv 2501.04697): without
weight decay, a model that fits modular addition with softmax cross-entropy in float32 stops
learning — the correct-class probability rounds to 1 ("softmax collapse", SC) after the logits
grow along the weights ("naive loss minimisation") — and never generalises; with StableMax as
the output normaliser, or with the ⊥Grad optimizer, it groks.

Setup (the paper's Figure 1, official code's defaults): a + b mod 113, all 113² pairs, a random 40%
for training and the rest for testing; inputs one-hot(a) ‖ one-hot(b) (226 dims); an MLP
226-200-200-113 with ReLU and no biases (PyTorch's default init); full-batch AdamW, lr 0.01,
weight decay 0, eps 1e-25; float32 everywhere.

- **softmax**: float32 softmax cross-entropy, AdamW betas (0.9, 0.99);
- **stablemax**: the paper's StableMax cross-entropy (``splice_stablemax.stablemax_cross_entropy``,
  computed in float64 as the official code does; model and optimizer float32), AdamW betas
  (0.9, 0.999) as in the paper's StableMax run;
- **orthograd**: float32 softmax cross-entropy with ⊥AdamW (the ``stablemax`` plugin's ``OrthoGrad``,
  registered as ``--optimizer orthograd``), betas (0.9, 0.99).

The first layer is computed as a sum of two weight columns (W[:, a] + W[:, 113 + b]), which is the
one-hot matrix product exactly, only cheaper. SC is the fraction of training examples whose
float32 probability of the correct class is exactly 1 (their gradient is exactly 0).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bench import common

TITLE = "Grokking without weight decay: softmax vs StableMax vs ⊥Grad (modular addition)"
REQUIRES = ["splice_stablemax"]
ESTIMATE_MIN = 64  # measured: 64.2 min of measurement for the 3 default seeds (make bench, 2026-11-22)
ORDER = 60
P = 113
METHODS = ("softmax", "stablemax", "orthograd")


def dataset(seed: int, train_fraction: float = 0.4, p: int = P):
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    y = (a + b) % p
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    n = int(train_fraction * p * p)
    tr, te = perm[:n], perm[n:]
    return (a[tr], b[tr], y[tr]), (a[te], b[te], y[te])


class MLP(torch.nn.Module):
    def __init__(self, hidden: int = 200, p: int = P) -> None:
        super().__init__()
        self.p = p
        self.l1 = torch.nn.Linear(2 * p, hidden, bias=False)
        self.l2 = torch.nn.Linear(hidden, hidden, bias=False)
        self.l3 = torch.nn.Linear(hidden, p, bias=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        w = self.l1.weight.t()  # (2p, hidden): row i is what one-hot position i contributes
        h = torch.relu(w[a] + w[self.p + b])
        return self.l3(torch.relu(self.l2(h)))


def run(method: str, seed: int, epochs: int, log_every: int, lr: float = 0.01, p: int = P,
        train_fraction: float = 0.4, checkpoint: Path | None = None,
        deadline: float | None = None) -> dict[str, Any] | None:
    """Train one run; with ``checkpoint``, resume from it and save to it when ``deadline`` (time.time())
    passes, returning None (the run continues on the next call)."""
    from splice_stablemax import OrthoGrad, stablemax, stablemax_cross_entropy

    (a, b, y), (ta, tb, ty) = dataset(seed, train_fraction, p)
    torch.manual_seed(seed)
    model = MLP(p=p)
    if method == "stablemax":  # the paper's loss: StableMax cross-entropy computed in float64
        loss_fn, probs = stablemax_cross_entropy, (lambda z: stablemax(z.double()))
    else:  # float32 softmax cross-entropy
        loss_fn, probs = F.cross_entropy, (lambda z: torch.softmax(z, -1))
    betas = (0.9, 0.999) if method == "stablemax" else (0.9, 0.99)
    if method == "orthograd":
        opt = OrthoGrad(model.parameters(), torch.optim.AdamW, lr=lr, weight_decay=0.0, betas=betas, eps=1e-25)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=betas, eps=1e-25)
    log: list[dict[str, float]] = []
    start, seconds = 0, 0.0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        log, start, seconds = state["log"], state["epoch"], state["seconds"]
        common.log(f"{method} seed {seed}: resuming at epoch {start}")
    t0 = time.time()
    for epoch in range(start, epochs + 1):
        logits = model(a, b)
        loss = loss_fn(logits, y)
        if epoch % log_every == 0 or epoch == epochs:
            with torch.no_grad():
                p_correct = probs(logits).gather(-1, y[:, None])[:, 0]
                test_logits = model(ta, tb)
                log.append({
                    "epoch": epoch, "train_loss": float(loss),
                    "train_acc": float((logits.argmax(-1) == y).float().mean()),
                    "test_acc": float((test_logits.argmax(-1) == ty).float().mean()),
                    "test_loss": float(loss_fn(test_logits, ty)),
                    "sc": float((p_correct == 1.0).float().mean()),
                    "weight_norm": float(sum(q.detach().pow(2).sum() for q in model.parameters()).sqrt()),
                })
            if checkpoint is not None and deadline is not None and time.time() > deadline and epoch < epochs:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "log": log, "epoch": epoch,
                            "seconds": seconds + time.time() - t0}, checkpoint)
                common.log(f"{method} seed {seed}: paused at epoch {epoch} (test acc {log[-1]['test_acc']:.3f})")
                return None
        if epoch == epochs:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if checkpoint is not None and checkpoint.exists():
        checkpoint.unlink()
    return {"method": method, "seed": seed, "epochs": epochs, "p": p, "train_fraction": train_fraction, "log": log,
            "seconds": seconds + time.time() - t0}


def first_epoch(log: list[dict[str, float]], key: str, threshold: float) -> int | None:
    return next((int(r["epoch"]) for r in log if r[key] >= threshold), None)


def setting(r: dict[str, Any]) -> tuple[int, float]:
    return int(r.get("p", P)), float(r.get("train_fraction", 0.4))


def report(args, runs: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    page = common.Page("grokking", TITLE, args)
    page.text(__doc__.split("\n\n", 2)[2])
    settings = sorted({setting(r) for r in runs}, key=lambda t: (-t[0], t[1]))
    rows = []
    for r in sorted(runs, key=lambda r: (settings.index(setting(r)), METHODS.index(r["method"]), r["seed"])):
        last = r["log"][-1]
        rows.append({"p": setting(r)[0], "train fraction": setting(r)[1], "method": r["method"], "seed": r["seed"],
                     "epochs": r["epochs"], "final train acc": last["train_acc"], "final test acc": last["test_acc"],
                     "max test acc": max(x["test_acc"] for x in r["log"]),
                     "epoch train acc >= 99%": first_epoch(r["log"], "train_acc", 0.99),
                     "epoch test acc >= 95%": first_epoch(r["log"], "test_acc", 0.95),
                     "final SC fraction": last["sc"], "final train loss": last["train_loss"],
                     "minutes": r["seconds"] / 60})
    page.heading("Final numbers per seed")
    page.table(rows)
    colors = {"softmax": "tab:red", "stablemax": "tab:blue", "orthograd": "tab:green"}
    fig, axes = plt.subplots(len(settings), 3, figsize=(15, 4.2 * len(settings)), squeeze=False)
    for row, st in zip(axes, settings):
        rs = [r for r in runs if setting(r) == st]
        for r in rs:
            ep = [x["epoch"] for x in r["log"]]
            lab = r["method"] if r["seed"] == min(x["seed"] for x in rs if x["method"] == r["method"]) else None
            c = colors[r["method"]]
            row[0].plot(ep, [x["train_acc"] for x in r["log"]], color=c, ls="--", alpha=0.6)
            row[0].plot(ep, [x["test_acc"] for x in r["log"]], color=c, label=lab, alpha=0.8)
            row[1].plot(ep, [x["sc"] for x in r["log"]], color=c, label=lab, alpha=0.8)
            row[2].plot(ep, [x["weight_norm"] for x in r["log"]], color=c, label=lab, alpha=0.8)
        tag = f"p = {st[0]}, {st[1]:.0%} train"
        row[0].set(title=f"{tag}: accuracy (solid test, dashed train)", xlabel="epoch (full batch)",
                   ylim=(-0.02, 1.02))
        row[1].set(title=f"{tag}: softmax collapse (fraction with p(correct) == 1)", xlabel="epoch")
        row[2].set(title=f"{tag}: weight norm", xlabel="epoch")
        for ax in row:
            ax.set_xscale("symlog", linthresh=100)
            ax.grid(alpha=0.3)
            ax.legend()
    page.plot(fig, "grokking_curves.png", "Modular addition without weight decay, every run (one row per setting)")
    page.heading("Reading")
    lines = []
    for st in settings:
        for m in METHODS:
            rs = [r for r in runs if r["method"] == m and setting(r) == st]
            if rs:
                finals = [r["log"][-1]["test_acc"] for r in rs]
                grok = [first_epoch(r["log"], "test_acc", 0.95) for r in rs]
                lines.append(f"- p = {st[0]}, {st[1]:.0%} train, **{m}** ({rs[0]['epochs']} epochs): final test "
                             f"accuracy {', '.join(f'{x:.3f}' for x in finals)} (seeds "
                             f"{', '.join(str(r['seed']) for r in rs)}); test accuracy ≥ 95% first at epoch "
                             f"{', '.join(str(g) if g is not None else 'never' for g in grok)}.")
    page.text("\n".join(lines))
    page.write()


def main(argv: list[str] | None = None) -> None:
    def add(p):
        p.add_argument("--methods", default=",".join(METHODS))
        p.add_argument("--seeds", default="0,1,2")
        p.add_argument("--epochs", type=int, default=6000, help="full-batch epochs for softmax and stablemax")
        p.add_argument("--epochs-orthograd", type=int, default=1000)
        p.add_argument("--log-every", type=int, default=50)
        p.add_argument("--modulus", type=int, default=P)
        p.add_argument("--train-fraction", type=float, default=0.4)
        p.add_argument("--max-minutes", type=float, default=None,
                       help="pause (checkpointing the current run) after this many minutes; rerun to continue")

    args = common.parse_args("grokking", argv, add)
    if args.quick:
        args.epochs, args.epochs_orthograd, args.seeds, args.log_every = 60, 60, "0", 20
    name = "grokking" + ("-quick" if args.quick else "")
    store = common.Store(name, fresh=args.fresh)
    ckpt_dir = Path(os.environ.get("SPLICE_CACHE", "~/.cache/splice")).expanduser() / "bench" / f"{name}-checkpoints"
    deadline = common.deadline_after(args.max_minutes)

    def key_of(m: str, s: int) -> dict:
        epochs = args.epochs_orthograd if m == "orthograd" else args.epochs
        return {"method": m, "seed": s, "epochs": epochs, "p": args.modulus, "train_fraction": args.train_fraction}

    def one(key: dict):
        return run(key["method"], key["seed"], key["epochs"], args.log_every, p=args.modulus,
                   train_fraction=args.train_fraction, checkpoint=ckpt_dir / f"{common.digest(key)}.pt",
                   deadline=deadline)

    cases = [(key_of(m, int(s)), f"{m} seed {s}") for s in args.seeds.split(",") for m in args.methods.split(",")]
    if not common.run_grid(store, cases, one, lambda r: f"test acc {r['log'][-1]['test_acc']:.3f}", deadline):
        return
    report(args, store.rows())


if __name__ == "__main__":
    main()
