"""In-context retrieval tasks: passkey and key-value lookup, at any length and needle depth.

Both are used to train the embedded model (so it can retrieve from its context) and by the
long-context evaluation (so sparse attention has something to preserve).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

# The filler of the passkey test as introduced by Mohtashami & Jaggi (Landmark Attention).
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."


@dataclass(frozen=True)
class RetrievalExample:
    prompt: str
    answer: str  # begins with a space: the continuation the model must produce
    kind: str
    depth: float  # where the needle sits in the context, 0 = start, 1 = end


def passkey(rng: random.Random, n_filler: int, depth: float | None = None) -> RetrievalExample:
    """A 5-digit pass key hidden among ``n_filler`` filler sentences at relative ``depth``."""
    key = str(rng.randint(10000, 99999))
    depth = rng.random() if depth is None else depth
    before = round(n_filler * depth)
    filler = [FILLER] * n_filler
    needle = f"The pass key is {key}. Remember it. {key} is the pass key."
    body = " ".join(filler[:before] + [needle] + filler[before:])
    prompt = ("There is important info hidden inside a lot of irrelevant text. Find it and memorize it.\n"
              f"{body}\nWhat is the pass key? The pass key is")
    return RetrievalExample(prompt, f" {key}", "passkey", depth)


def _key(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(3)) + str(rng.randint(0, 9))


def kv_lookup(rng: random.Random, n_pairs: int, depth: float | None = None) -> RetrievalExample:
    """``n_pairs`` records ``key = value`` and a question about the one at relative ``depth``."""
    keys: list[str] = []
    while len(keys) < n_pairs:
        k = _key(rng)
        if k not in keys:
            keys.append(k)
    values = [str(rng.randint(100, 999)) for _ in keys]
    depth = rng.random() if depth is None else depth
    i = min(n_pairs - 1, int(depth * n_pairs))
    lines = "\n".join(f"{k} = {v}" for k, v in zip(keys, values))
    prompt = f"Records:\n{lines}\nLook up {keys[i]}. The value of {keys[i]} is"
    return RetrievalExample(prompt, f" {values[i]}", "kv", depth)
