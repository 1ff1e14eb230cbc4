"""``python -m splice_tofu finetune``: make (or find in the cache) the benchmark's fine-tuned models.

    python -m splice_tofu finetune --base tiny-base --split retain --forget 10
    python -m splice_tofu finetune --base HuggingFaceTB/SmolLM2-135M --split full --lr 1e-5 --epochs 5

Prints the checkpoint folder: pass a ``full`` model to ``splice compose --model`` and the matching
``retain`` model as ``--eval-opt tofu.retain_model=...`` (and ``muse.retain_model=...``).
"""

from __future__ import annotations

import argparse
import sys

from splice.errors import SpliceError
from splice.facts import FactsFinetune

from .models import finetuned


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m splice_tofu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    ft = sub.add_parser("finetune", help="fine-tune a base model on all authors (full) or the retain authors")
    ft.add_argument("--base", default="tiny-base", help="base model: tiny-base, a checkpoint folder or a hub id")
    ft.add_argument("--split", choices=("full", "retain"), default="retain")
    ft.add_argument("--forget", type=int, choices=(1, 5, 10), default=10, help="forget split for --split retain")
    defaults = FactsFinetune()
    for name in ("epochs", "lr", "batch_size", "weight_decay", "warmup", "seed"):
        ft.add_argument(f"--{name.replace('_', '-')}", type=type(getattr(defaults, name)), default=None)
    ft.add_argument("--force", action="store_true", help="remake even if cached")
    args = ap.parse_args(argv)
    spec = FactsFinetune(**{k: v for k, v in vars(args).items() if k in FactsFinetune.model_fields and v is not None})
    try:
        path = finetuned(args.base, args.split, args.forget if args.split == "retain" else None, spec, args.force)
    except SpliceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
