"""Artifacts: ``model.safetensors`` + ``splice.json`` (+ the base's config and tokenizer).

Written to a temporary folder and renamed into place, so a crash never leaves half an artifact.
Loading checks every file's size and sha256 before reading a tensor, names the distribution
to install for a missing plugin, rebuilds the structure (attention/activation swaps, quantizer
``prepare``) and loads the state strictly: a model is either complete or not returned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .errors import ArtifactError, PluginNotFound
from .model import Decoder, DecoderConfig, LanguageModel, Tokenizer
from .recipe import Recipe
from .registry import Registry, get_registry

MANIFEST = "splice.json"
WEIGHTS = "model.safetensors"


class PluginRecord(BaseModel):
    kind: str
    name: str
    distribution: str
    version: str
    config: dict[str, Any]


class Manifest(BaseModel):
    splice_version: str
    created: str
    base_model: str
    recipe: dict[str, Any]
    plugins: list[PluginRecord]
    seed: int
    metrics: dict[str, dict[str, Any]]  # phase (baseline/composed) -> evaluator -> Report
    footprint: dict[str, dict[str, float]]
    timings: dict[str, float]
    files: dict[str, dict[str, Any]]  # name -> {sha256, bytes}
    environment: dict[str, str]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _state(model: Decoder) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    return {k: v.contiguous() for k, v in sd.items()}


def save_artifact(result, out: str | Path, force: bool = False) -> Path:
    """Write the composed model of a ComposeResult to ``out`` atomically."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise ArtifactError(f"{out} exists and is not empty (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        lm: LanguageModel = result.lm
        save_file(_state(lm.model), str(tmp / WEIGHTS), metadata={"format": "splice"})
        (tmp / "config.json").write_text(json.dumps(lm.config.to_hf(), indent=2))
        lm.tokenizer.save(tmp)
        files = {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in sorted(tmp.iterdir())}
        comp = result.composition
        manifest = Manifest(
            splice_version=__version__, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            base_model=comp.recipe.model, recipe=comp.recipe.to_toml_dict(),
            plugins=[PluginRecord(**r.manifest()) for r in comp.resolved], seed=comp.recipe.seed,
            metrics={"baseline": {k: v.model_dump() for k, v in result.baseline.items()},
                     "composed": {k: v.model_dump() for k, v in result.composed.items()}},
            footprint=result.footprint, timings=result.timings, files=files,
            environment={"python": platform.python_version(), "torch": torch.__version__,
                         "machine": platform.machine()})
        (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    file = path / MANIFEST
    if not file.exists():
        raise ArtifactError(f"{path}: not a splice artifact (no {MANIFEST})")
    try:
        return Manifest.model_validate_json(file.read_text())
    except (ValidationError, ValueError) as err:
        raise ArtifactError(f"{file}: corrupted manifest ({str(err).splitlines()[0]})") from None


def verify_files(path: Path, manifest: Manifest) -> None:
    for name, info in manifest.files.items():
        f = path / name
        if not f.exists():
            raise ArtifactError(f"{path}: {name} is missing")
        if f.stat().st_size != info["bytes"]:
            raise ArtifactError(f"{path}: {name} is truncated or altered ({f.stat().st_size} bytes, "
                                f"expected {info['bytes']})")
        if _sha256(f) != info["sha256"]:
            raise ArtifactError(f"{path}: {name} is corrupted (checksum mismatch)")


def load_artifact(path: str | Path, registry: Registry | None = None) -> tuple[LanguageModel, Manifest]:
    from .pipeline import Composition, Resolved, apply_structure
    from .recipe import Step

    path = Path(path)
    manifest = read_manifest(path)
    verify_files(path, manifest)
    registry = registry or get_registry()
    resolved = []
    for rec in manifest.plugins:
        try:
            entry = registry.get(rec.kind, rec.name)
        except PluginNotFound:
            raise ArtifactError(f"{path} needs the {rec.kind} plugin {rec.name!r}: install it with "
                                f"`pip install {rec.distribution}` (version {rec.version} made this artifact)") from None
        resolved.append(Resolved(rec.kind, Step(name=rec.name, options=rec.config), entry, entry.cls(rec.config)))
    comp = Composition(Recipe.parse(manifest.recipe, f"{path}/{MANIFEST}"), resolved)
    cfg = DecoderConfig.from_hf(json.loads((path / "config.json").read_text()))
    tok = Tokenizer.from_dir(path, json.loads((path / "config.json").read_text()))
    model = Decoder(cfg)
    lm = LanguageModel(model, tok, manifest.base_model)
    apply_structure(lm, comp)
    for r in comp.of("unlearner") + comp.of("quantizer"):
        prepare = getattr(r.method, "prepare", None)
        if prepare is not None:
            prepare(lm)
    try:
        state = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError) as err:
        raise ArtifactError(f"{path}: {WEIGHTS} cannot be read ({err})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not (cfg.tie_word_embeddings and m == "lm_head.weight")]
    if missing or unexpected:
        raise ArtifactError(f"{path}: weights do not fit the recorded composition (missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]})")
    if cfg.tie_word_embeddings:
        model.lm_head.weight = model.embed.weight
    return lm.__class__(model.eval(), tok, manifest.base_model), manifest
