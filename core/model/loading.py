"""Loading and saving Hugging Face checkpoint folders for the reference decoder.

A checkpoint folder is config.json + model.safetensors (or sharded with an index) +
tokenizer.json. Sources: ``tiny`` (the embedded model), a local folder, or a hub id fetched
through huggingface_hub (``HF_HUB_OFFLINE=1`` is honoured: then only the local cache is used).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import ArtifactError, SpliceError
from .config import DecoderConfig
from .decoder import Decoder
from .tokenizer import Tokenizer

TINY_DIR = Path(__file__).resolve().parent.parent / "tiny"

# transformers' parameter names -> ours (regex, replacement)
_HF_TO_OURS = [
    (r"^model\.embed_tokens\.", "embed."),
    (r"^model\.norm\.", "norm."),
    (r"^model\.layers\.(\d+)\.self_attn\.(q|k|v|o)_proj\.", r"blocks.\1.attn.\2."),
    (r"^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.", r"blocks.\1.mlp.\2."),
    (r"^model\.layers\.(\d+)\.input_layernorm\.", r"blocks.\1.attn_norm."),
    (r"^model\.layers\.(\d+)\.post_attention_layernorm\.", r"blocks.\1.mlp_norm."),
    (r"^lm_head\.", "lm_head."),
]
_OURS_TO_HF = [
    (r"^embed\.", "model.embed_tokens."),
    (r"^norm\.", "model.norm."),
    (r"^blocks\.(\d+)\.attn\.(q|k|v|o)\.", r"model.layers.\1.self_attn.\2_proj."),
    (r"^blocks\.(\d+)\.mlp\.(gate|up|down)\.", r"model.layers.\1.mlp.\2_proj."),
    (r"^blocks\.(\d+)\.attn_norm\.", r"model.layers.\1.input_layernorm."),
    (r"^blocks\.(\d+)\.mlp_norm\.", r"model.layers.\1.post_attention_layernorm."),
    (r"^lm_head\.", "lm_head."),
]


def _rename(name: str, table) -> str | None:
    for pat, rep in table:
        if re.match(pat, name):
            return re.sub(pat, rep, name)
    return None



def resolve_source(source: str | os.PathLike) -> Path:
    """``tiny`` -> the embedded model (``tiny-base``: its base before fine-tuning on the authors);
    a folder -> itself; otherwise a hub id -> its local snapshot."""
    if str(source) in ("tiny", "tiny-base"):
        folder = TINY_DIR if str(source) == "tiny" else TINY_DIR / "base"
        if not (folder / "config.json").exists():
            raise ArtifactError("the embedded model is missing; build it with `python scripts/build_tiny.py`")
        return folder
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ArtifactError(f"{path}: not a checkpoint folder (no config.json)")
        return path
    if path.exists() or str(source).startswith((".", "/", "~")) or str(source).count("/") != 1:
        raise SpliceError(f"model {str(source)!r}: no such folder, and not a hub id of the form owner/name")
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(str(source), allow_patterns=["*.json", "*.safetensors", "tokenizer*"])
    except Exception as err:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (HF_HUB_OFFLINE=1: only the local cache is searched)" if offline else ""
        raise SpliceError(f"model {source!r} could not be fetched from the hub{hint}: {type(err).__name__}") from None
    return Path(local)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    index = path / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_file(str(path / f)))
        return state
    single = path / "model.safetensors"
    if not single.exists():
        raise ArtifactError(f"{path}: no model.safetensors (splice reads safetensors checkpoints only)")
    return load_file(str(single))


def load_decoder(source: str | os.PathLike, dtype: torch.dtype | None = None, device: str = "cpu") -> Decoder:
    path = resolve_source(source)
    cfg = DecoderConfig.from_hf(json.loads((path / "config.json").read_text()))
    raw = read_state_dict(path)
    state = {}
    for k, v in raw.items():
        ours = _rename(k, _HF_TO_OURS)
        if ours is None:
            if k.endswith("rotary_emb.inv_freq"):
                continue
            raise ArtifactError(f"{path}: unexpected tensor {k!r} for a Llama-family checkpoint")
        state[ours] = v
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    with torch.device("meta"):
        model = Decoder(cfg)
    model = model.to_empty(device=device)
    model.rotary.inv_freq = model.rotary.inv_freq.new_empty(0)  # recomputed below
    target = dtype or torch.float32  # compute dtype; checkpoints may be stored smaller (see torch_dtype)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [m for m in missing if not (cfg.tie_word_embeddings and m == "lm_head.weight")]
    if missing or unexpected:
        raise ArtifactError(f"{path}: checkpoint does not fit its config (missing {missing[:4]}, "
                            f"unexpected {unexpected[:4]})")
    if cfg.tie_word_embeddings:
        model.lm_head.weight = model.embed.weight
    from .rope import inverse_frequencies

    model = model.to(target).eval()
    # RoPE frequencies stay float32 in any compute dtype, as transformers loads them: rounded to
    # bf16 they drift (max |logit diff| 2.4 vs transformers on SmolLM2-135M at 2048 tokens).
    model.rotary.inv_freq = inverse_frequencies(cfg).to(device)
    return model


def save_checkpoint(model: Decoder, tokenizer: Tokenizer | None, path: str | os.PathLike,
                    dtype: torch.dtype | None = None) -> Path:
    """Write a Hugging Face checkpoint folder (loads in transformers and in splice)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = model.config.model_copy()
    state = {}
    for k, v in model.state_dict().items():
        if cfg.tie_word_embeddings and k == "lm_head.weight":
            continue
        hf = _rename(k, _OURS_TO_HF)
        if hf is None:
            raise ArtifactError(f"tensor {k!r} has no Hugging Face name: save a composed model as an artifact")
        state[hf] = (v.to(dtype) if dtype else v).contiguous().clone()
    if dtype is not None:
        cfg.torch_dtype = str(dtype).removeprefix("torch.")
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(cfg.to_hf(), indent=2))
    if tokenizer is not None:
        tokenizer.save(path)
    return path


def load_tokenizer(source: str | os.PathLike) -> Tokenizer:
    path = resolve_source(source)
    return Tokenizer.from_dir(path, json.loads((path / "config.json").read_text()))
