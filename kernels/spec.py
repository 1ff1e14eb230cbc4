"""Which backend the user asked for: the ``SPLICE_KERNELS`` variable and in-code overrides.

Grammar (comma separated, whitespace ignored)::

    SPLICE_KERNELS=reference                        every op uses its reference
    SPLICE_KERNELS=fake_quant=triton,hadamard=reference
    SPLICE_KERNELS=reference,hadamard=triton        a default for all ops, then per-op entries
    SPLICE_KERNELS=auto  (or unset, or empty)       dispatch chooses

``auto`` is also accepted per op (``reference,hadamard=auto``) to give one op back to dispatch.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .errors import KernelSpecError

ENV_VAR = "SPLICE_KERNELS"
AUTO = "auto"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class KernelSpec:
    """A parsed backend request: an optional default for every op plus per-op entries."""

    default: str | None = None
    per_op: Mapping[str, str] = field(default_factory=dict)
    source: str = ENV_VAR

    def requested(self, op: str) -> str | None:
        """The backend explicitly requested for ``op``, or None when dispatch may choose."""
        name = self.per_op.get(op, self.default)
        return None if name in (None, AUTO) else name

    def mentions(self, op: str) -> bool:
        return op in self.per_op or self.default is not None


def _check_name(token: str, what: str, text: str, source: str) -> str:
    if not _NAME.match(token):
        raise KernelSpecError(f"{source}={text!r}: {what} {token!r} is not a valid name")
    return token


@functools.lru_cache(maxsize=64)
def parse_spec(text: str, source: str = ENV_VAR) -> KernelSpec:
    """Parse a SPLICE_KERNELS string. Cached: dispatch re-reads the variable on every call."""
    default: str | None = None
    per_op: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        if item.count("=") > 1:
            raise KernelSpecError(f"{source}={text!r}: entry {item!r} has more than one '='")
        if "=" in item:
            op, backend = (part.strip() for part in item.split("="))
            _check_name(op, "op", text, source)
            _check_name(backend, "backend", text, source)
            if op in per_op and per_op[op] != backend:
                raise KernelSpecError(f"{source}={text!r}: op {op!r} is given two backends")
            per_op[op] = backend
        else:
            _check_name(item, "backend", text, source)
            if default is not None and default != item:
                raise KernelSpecError(f"{source}={text!r}: two defaults ({default!r}, {item!r})")
            default = item
    return KernelSpec(default=default, per_op=per_op, source=source)


_overrides: contextvars.ContextVar[tuple[KernelSpec, ...]] = contextvars.ContextVar(
    "splice_kernel_overrides", default=()
)


def env_spec() -> KernelSpec:
    return parse_spec(os.environ.get(ENV_VAR, ""))


def requested_backend(op: str) -> tuple[str | None, str]:
    """(backend asked for ``op`` or None, where the request came from).

    Innermost override first, then the environment: code that pins a backend for a block (tests,
    benchmarks) means it more specifically than a process-wide variable.
    """
    for spec in reversed(_overrides.get()):
        if spec.mentions(op):
            return spec.requested(op), spec.source
    spec = env_spec()
    return spec.requested(op), spec.source


@contextlib.contextmanager
def use_backends(spec: str | Mapping[str, str]) -> Iterator[None]:
    """Force backends inside a ``with`` block; same grammar (or an ``{op: backend}`` mapping).

    >>> with use_backends("reference"): ...
    >>> with use_backends({"fake_quant": "triton"}): ...
    """
    if isinstance(spec, str):
        parsed = parse_spec(spec, source="use_backends()")
    else:
        parsed = parse_spec(",".join(f"{k}={v}" for k, v in spec.items()), source="use_backends()")
    token = _overrides.set((*_overrides.get(), parsed))
    try:
        yield
    finally:
        _overrides.reset(token)
