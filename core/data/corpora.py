"""Text corpora by name or path: WikiText-2 and Tiny Shakespeare from the shared data folder,
the embedded model's own generated text, or any UTF-8 text file."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError

_SHARED_FILES = {
    "wikitext2": "wikitext-2-raw/wiki.test.raw",
    "tinyshakespeare": "tinyshakespeare/input.txt",
}


def shared_data_dir() -> Path | None:
    """``$SPLICE_DATA``, else ``../shared/data`` beside the repository (or the working dir)."""
    env = os.environ.get("SPLICE_DATA")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[2]
    candidates += [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data",
                   Path.cwd() / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), None)


def shared_file(name: str) -> Path:
    root = shared_data_dir()
    if root is None or not (root / _SHARED_FILES[name]).exists():
        raise DataError(f"corpus {name!r} needs the shared data folder (../shared/data or $SPLICE_DATA); not found")
    return root / _SHARED_FILES[name]


def load_corpus(name: str) -> str:
    """``wikitext2`` (lines joined with blank lines, as the papers do), ``tinyshakespeare``,
    ``tiny-train`` / ``tiny-eval`` / ``tiny-calib`` (the embedded model's generated text: its
    training mix, held-out text, calibration text), or a file path."""
    if name == "wikitext2":
        return "\n\n".join(shared_file(name).read_text(encoding="utf-8").splitlines())
    if name == "tinyshakespeare":
        return shared_file(name).read_text(encoding="utf-8")
    if name in ("tiny-train", "tiny-eval", "tiny-calib"):
        from .synthetic import corpus_text

        return corpus_text(name.removeprefix("tiny-"))
    path = Path(name).expanduser()
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise DataError(f"corpus {name!r} is empty")
        return text
    raise DataError(f"corpus {name!r}: not a known corpus (wikitext2, tinyshakespeare, tiny-train, tiny-eval, tiny-calib) "
                    "nor a text file")


def default_eval_corpus(source: str) -> str:
    return "tiny-eval" if source == "tiny" else "wikitext2"


def default_train_corpus(source: str) -> str:
    return "tiny-train" if source == "tiny" else "tinyshakespeare"


def default_calibration_corpus(source: str) -> str:
    return "tiny-calib" if source == "tiny" else "tinyshakespeare"
