"""MUSE's last two criteria, as curves: scalability (forget-set size) and sustainability (sequential requests).

    python -m splice_muse curves --unlearn npo --sizes 1 5 10 --requests 4
    python -m splice_muse curves --unlearn ga --unlearn-opt lr=1e-3 --requests 2 --json

- **Scalability**: the unlearner is run from the same starting model on forget sets of growing size
  (the benchmark's 1, 5, 10% splits); VerbMem/KnowMem on the forget set and KnowMem on retain
  (utility) are measured after each.
- **Sustainability**: the 10% forget set is split into ``requests`` batches of authors that are
  unlearned one after another, each request starting from the previous result (with the previous
  result as NPO's reference, as a deployed model would be); after each request the metrics are
  measured on everything forgotten so far. PrivLeak uses the retain-only model of the 10% split
  throughout (it never saw any of the requests' authors).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from splice.data.authors import forget_split, qa_prompt
from splice.errors import ConfigError, SpliceError
from splice.kinds.unlearner import Example, UnlearnTask
from splice.method import parse_options
from splice.model import load
from splice.registry import get_registry
from splice_mia.data import holdout_examples
from splice_tofu.data import benchmark_authors, check_split
from splice_tofu.evaluator import TofuConfig, retain_model

from .data import icl_examples, knowmem_qa, retain_knowmem
from .metrics import knowmem, privleak, privleak_auc, verbmem


def _examples(authors) -> list[Example]:
    return [Example(qa_prompt(q.question), q.answer) for a in authors for q in a.qa]


def muse_scores(lm, forget_authors, knowmem_size: int = 100) -> dict[str, float]:
    forget = _examples(forget_authors)
    icl = icl_examples()
    import random

    kqa = knowmem_qa(forget_authors)
    kqa = random.Random(7).sample(kqa, min(knowmem_size, len(kqa)))
    return {"verbmem_f": verbmem(lm, forget)[0], "knowmem_f": knowmem(lm, kqa, icl)[0],
            "knowmem_r": knowmem(lm, retain_knowmem(knowmem_size), icl)[0],
            "auc": privleak_auc(lm, forget, holdout_examples(len(forget)))}


def _unlearner(name: str, options: dict[str, Any]):
    return get_registry().get("unlearner", name).cls(options)


def scalability(unlearn: str, options: dict[str, Any] | None = None, sizes=(1, 5, 10), model: str = "tiny",
                knowmem_size: int = 100) -> list[dict[str, Any]]:
    """One run per forget size from the same starting model; MUSE metrics after each."""
    for s in sizes:
        check_split(s)
    _unlearner(unlearn, options or {})  # config errors before any work
    authors = benchmark_authors()
    rows = []
    for size in sizes:
        forget_authors, retain_authors = forget_split(authors, size)
        lm = load(model)
        ref, _ = retain_model(lm, TofuConfig(), size)
        task = UnlearnTask(forget=_examples(forget_authors), retain=_examples(retain_authors), reference=lm.clone(),
                           name=f"authors-forget{size:02d}", meta={"percent": size})
        task.reference.model.requires_grad_(False)
        lm = _unlearner(unlearn, options or {}).unlearn(lm, task)
        lm.model.eval()
        s = muse_scores(lm, forget_authors, knowmem_size)
        r = muse_scores(ref, forget_authors, knowmem_size)
        rows.append({"forget_percent": size, **{k: v for k, v in s.items() if k != "auc"},
                     "privleak": privleak(s["auc"], max(r["auc"], 1e-9))})
    return rows


def sustainability(unlearn: str, options: dict[str, Any] | None = None, requests: int = 4, percent: int = 10,
                   model: str = "tiny", knowmem_size: int = 100) -> list[dict[str, Any]]:
    """``requests`` sequential unlearning requests over the authors of the ``percent`` split."""
    check_split(percent)
    forget_authors, retain_authors = forget_split(benchmark_authors(), percent)
    if not 1 <= requests <= len(forget_authors):
        raise ConfigError(f"muse curves: requests: must be between 1 and {len(forget_authors)} (the split's authors)")
    _unlearner(unlearn, options or {})
    lm = load(model)
    ref, _ = retain_model(lm, TofuConfig(), percent)
    chunks = [forget_authors[i::requests] for i in range(requests)]
    rows, done = [], []
    start = muse_scores(lm, forget_authors, knowmem_size)
    r_all = muse_scores(ref, forget_authors, knowmem_size)
    rows.append({"request": 0, **{k: v for k, v in start.items() if k != "auc"},
                 "privleak": privleak(start["auc"], max(r_all["auc"], 1e-9))})
    for i, chunk in enumerate(chunks, 1):
        done += chunk
        task = UnlearnTask(forget=_examples(chunk), retain=_examples(retain_authors), reference=lm.clone(),
                           name=f"request{i}", meta={})
        task.reference.model.requires_grad_(False)
        lm = _unlearner(unlearn, options or {}).unlearn(lm, task)
        lm.model.eval()
        s = muse_scores(lm, done, knowmem_size)
        r = muse_scores(ref, done, knowmem_size)
        rows.append({"request": i, "authors_forgotten": len(done), **{k: v for k, v in s.items() if k != "auc"},
                     "privleak": privleak(s["auc"], max(r["auc"], 1e-9))})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m splice_muse", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("curves", help="scalability and sustainability curves of an unlearner")
    c.add_argument("--unlearn", required=True)
    c.add_argument("--unlearn-opt", action="append", default=[], help="key=value for the unlearner")
    c.add_argument("--model", default="tiny")
    c.add_argument("--sizes", type=int, nargs="*", default=[1, 5, 10])
    c.add_argument("--requests", type=int, default=4, help="sequential requests (0: skip sustainability)")
    c.add_argument("--knowmem-size", type=int, default=100)
    c.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        opts = parse_options(args.unlearn_opt)
        out = {"scalability": scalability(args.unlearn, opts, args.sizes, args.model, args.knowmem_size)
               if args.sizes else [],
               "sustainability": sustainability(args.unlearn, opts, args.requests, 10, args.model, args.knowmem_size)
               if args.requests else []}
    except SpliceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for name, rows in out.items():
        if rows:
            print(name)
            keys = list(rows[0])
            print("  " + "  ".join(f"{k:>12}" for k in keys))
            for row in rows:
                print("  " + "  ".join(f"{row.get(k, ''):>12.4g}" if isinstance(row.get(k), float)
                                       else f"{row.get(k, ''):>12}" for k in keys))
    return 0
