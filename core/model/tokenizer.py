"""A thin wrapper over a ``tokenizers`` tokenizer.json with the ids splice needs."""

from __future__ import annotations

import json
from pathlib import Path

import tokenizers

from ..errors import ArtifactError


class Tokenizer:
    def __init__(self, tok: tokenizers.Tokenizer, bos_id: int | None = None, eos_id: int | None = None,
                 pad_id: int | None = None) -> None:
        self.tok = tok
        self.bos_id, self.eos_id = bos_id, eos_id
        self.pad_id = pad_id if pad_id is not None else (eos_id if eos_id is not None else 0)

    @classmethod
    def from_dir(cls, path: str | Path, config: dict | None = None) -> "Tokenizer":
        path = Path(path)
        file = path / "tokenizer.json"
        if not file.exists():
            raise ArtifactError(f"{path}: no tokenizer.json (splice reads tokenizers' JSON format)")
        tok = tokenizers.Tokenizer.from_file(str(file))
        cfg = dict(config or {})
        tc = path / "tokenizer_config.json"
        extra = json.loads(tc.read_text()) if tc.exists() else {}

        def token_id(key: str) -> int | None:
            val = extra.get(key)
            if isinstance(val, dict):
                val = val.get("content")
            if isinstance(val, str):
                return tok.token_to_id(val)
            return None

        def first(v):
            return v[0] if isinstance(v, list) else v

        bos = token_id("bos_token")
        bos = bos if bos is not None else first(cfg.get("bos_token_id"))
        eos = token_id("eos_token")
        eos = eos if eos is not None else first(cfg.get("eos_token_id"))
        pad = token_id("pad_token")
        pad = pad if pad is not None else cfg.get("pad_token_id")
        return cls(tok, bos, eos, pad)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.tok.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=add_special_tokens)]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        self.tok.save(str(path / "tokenizer.json"))
        def name(i):
            return None if i is None else self.tok.id_to_token(i)
        cfg = {"bos_token": name(self.bos_id), "eos_token": name(self.eos_id), "pad_token": name(self.pad_id)}
        (path / "tokenizer_config.json").write_text(json.dumps({k: v for k, v in cfg.items() if v}, indent=2))
