"""The benchmark's two fine-tuned models, made once and cached on disk.

TOFU's protocol: a base model fine-tuned on all authors' question-answer pairs is the model to
unlearn ("full"); the same base fine-tuned the same way on the retain authors only is the
reference that Forget Quality compares against ("retain", per forget split). Both go through
``splice.facts.finetune_on_facts`` — the function that made the embedded ``tiny`` from
``tiny-base`` — and are stored (bf16, like ``tiny``) under
``$SPLICE_CACHE/tofu/<base>-<split>-<recipe hash>`` (``SPLICE_CACHE`` defaults to
``~/.cache/splice``). The hash covers the recipe (split, fine-tuning config) and a fingerprint of
the base checkpoint, so a changed base or recipe makes a new model instead of reusing a stale one.

    python -m splice_tofu finetune --base tiny-base --split retain --forget 10
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import torch
from splice.errors import ConfigError
from splice.facts import FactsFinetune, finetune_on_facts
from splice.model import load, resolve_source, save_checkpoint

from .data import check_split, full_qa, retain_qa

#: For models derived from the embedded ``tiny``: its base, from which retain-only models are made.
TINY_BASE = "tiny-base"
TINY_SOURCES = ("tiny",)
RECIPE = "tofu_recipe.json"


def cache_root() -> Path:
    return Path(os.environ.get("SPLICE_CACHE", "~/.cache/splice")).expanduser() / "tofu"


def fingerprint(source: str) -> str:
    """A cheap identity of a checkpoint folder: its config and the size and first MiB of each weights file."""
    path = resolve_source(source)
    h = hashlib.sha256((path / "config.json").read_bytes())
    for f in sorted(path.glob("*.safetensors")):
        h.update(f.name.encode())
        h.update(str(f.stat().st_size).encode())
        with f.open("rb") as fh:
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def recipe(base: str, split: Literal["full", "retain"], forget: int | None, spec: FactsFinetune) -> dict:
    if split not in ("full", "retain"):
        raise ConfigError(f"tofu: split: must be 'full' or 'retain' (got {split!r})")
    if split == "retain":
        check_split(forget if forget is not None else -1)
    return {"base": base, "base_fingerprint": fingerprint(base), "split": split,
            "forget": forget if split == "retain" else None, "finetune": spec.model_dump()}


def model_dir(base: str, split: str, forget: int | None, spec: FactsFinetune) -> Path:
    r = recipe(base, split, forget, spec)  # type: ignore[arg-type]
    digest = hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(base).name if Path(base).exists() else base).strip("_")
    name = f"{slug}-{'full' if split == 'full' else f'retain{100 - forget:02d}'}-{digest}"  # type: ignore[operator]
    return cache_root() / name


def finetuned(base: str = TINY_BASE, split: Literal["full", "retain"] = "retain", forget: int | None = 10,
              spec: FactsFinetune | None = None, force: bool = False) -> Path:
    """Path of ``base`` fine-tuned on all authors (``full``) or on the retain authors of a forget
    split (``retain``); made (minutes on a CPU for ``tiny-base``) only if not cached yet."""
    spec = spec or FactsFinetune()
    out = model_dir(base, split, forget, spec)
    if (out / "config.json").exists() and (out / RECIPE).exists() and not force:
        return out
    lm = load(base)
    qa = full_qa() if split == "full" else retain_qa(forget)  # type: ignore[arg-type]
    what = "all authors" if split == "full" else f"retain authors (forget {forget}%)"
    result = finetune_on_facts(lm, qa, spec, description=f"tofu: fine-tune {base} on {what}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # a shared cache: readable like any checkpoint folder (mkdtemp makes it private)
    try:
        save_checkpoint(lm.model, lm.tokenizer, tmp, dtype=torch.bfloat16)
        info = {**recipe(base, split, forget, spec), "final_loss": sum(result.losses[-10:]) / min(10, len(result.losses)),
                "questions": len(qa)}
        (tmp / RECIPE).write_text(json.dumps(info, indent=2))
        if out.exists() and force:
            shutil.rmtree(out)
        try:
            tmp.rename(out)
        except OSError:
            if not (out / RECIPE).exists():  # not another process finishing the same model first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def retain_model_for(source: str, forget: int, spec: FactsFinetune | None = None) -> Path | None:
    """The retain-only model of a forget split for a model derived from ``tiny``; None for others."""
    if source in TINY_SOURCES:
        return finetuned(TINY_BASE, "retain", forget, spec)
    return None
