"""Kernel ops, their backends, and the choice between them at call time.

An op is a pure-PyTorch reference plus any number of accelerated backends. Calling the op picks,
per call, the highest-priority backend that can run on the inputs' device and on these inputs,
unless SPLICE_KERNELS (or ``use_backends``) names one: then that one runs or the call fails
with the reason. Only an *unrequested* backend is ever skipped silently.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .availability import local_device
from .errors import BackendUnavailable, KernelError, UnknownBackend, UnknownOp
from .sample import DEFAULT_TOL, SampleFn, Tolerance
from .spec import requested_backend

REFERENCE = "reference"

Availability = Callable[[torch.device], "str | None"]
"""Device-level check: None if the backend can run on that device here, else why not."""

Supports = Callable[..., "str | None"]
"""Input-level check, called with the op's own arguments: None if these inputs are supported."""


@dataclass
class Backend:
    """One implementation of an op. ``target`` is the function or a lazy "module:attr" string;
    lazy targets keep ``import splice.kernels`` free of Triton and let TRITON_INTERPRET, which
    Triton reads at decoration time, take effect at the kernel's first use."""

    op: str
    name: str
    target: Callable[..., Any] | str
    available: Availability | None = None
    supports: Supports | None = None
    priority: int = 10
    _fn: Callable[..., Any] | None = field(default=None, repr=False)
    _load_error: str | None = field(default=None, repr=False)

    @property
    def fn(self) -> Callable[..., Any]:
        if self._fn is None:
            if callable(self.target):
                self._fn = self.target
            else:
                module, _, attr = self.target.partition(":")
                try:
                    self._fn = getattr(importlib.import_module(module), attr)
                except (ImportError, AttributeError) as exc:
                    raise BackendUnavailable(
                        f"kernel op {self.op!r}, backend {self.name!r}: cannot load {self.target!r}: {exc}"
                    ) from exc
        return self._fn

    def loads(self) -> bool:
        """Whether the target imports. A broken plugin kernel warns once and is then skipped by
        automatic dispatch (it still fails loudly when requested explicitly)."""
        if self._fn is not None:
            return True
        if self._load_error is None:
            try:
                _ = self.fn
                return True
            except BackendUnavailable as exc:
                self._load_error = str(exc)
                warnings.warn(f"{exc}; using other backends", RuntimeWarning, stacklevel=4)
        return False

    @property
    def source(self) -> str:
        if isinstance(self.target, str):
            return self.target
        return f"{self.target.__module__}:{getattr(self.target, '__qualname__', self.target)}"

    def unavailable_on(self, device: torch.device) -> str | None:
        return None if self.available is None else self.available(device)

    def unsupported(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
        return None if self.supports is None else self.supports(*args, **kwargs)


def _first_device(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> torch.device:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value.device
        if isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, torch.Tensor):
                    return item.device
    return torch.device("cpu")


class Op:
    """A dispatching callable. It carries the reference's name, docstring and signature, so
    ``help(splice.kernels.fake_quant)`` documents the op whatever backend runs it."""

    def __init__(
        self,
        name: str,
        reference: Callable[..., Any],
        *,
        samples: SampleFn | None = None,
        differentiable: bool = False,
        tol: Mapping[torch.dtype, Tolerance] | None = None,
        grad_tol: Mapping[torch.dtype, Tolerance] | None = None,
        mismatch_budget: float = 0.0,
        description: str = "",
    ) -> None:
        self.name = name
        self.reference = reference
        self.samples: SampleFn = samples or (lambda device: ())
        self.differentiable = differentiable
        self.tol: Mapping[torch.dtype, Tolerance] = dict(tol or DEFAULT_TOL)
        self.grad_tol: Mapping[torch.dtype, Tolerance] = dict(grad_tol or self.tol)
        # Fraction of output elements allowed outside tolerance: for ops with a discontinuity
        # (rounding) two correct implementations can land on either side of a tie.
        self.mismatch_budget = mismatch_budget
        self.description = description or (reference.__doc__ or "").strip().split("\n")[0]
        self.backends: dict[str, Backend] = {REFERENCE: Backend(name, REFERENCE, reference, priority=0)}
        functools.update_wrapper(self, reference)

    def __repr__(self) -> str:
        return f"<kernel op {self.name!r} backends={list(self.backends)}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.select(args, kwargs).fn(*args, **kwargs)

    def select(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Backend:
        """The backend that a call with these arguments runs."""
        device = _first_device(args, kwargs)
        wanted, source = requested_backend(self.name)
        if wanted is not None:
            backend = self.backend(wanted, source=source)
            reason = backend.unavailable_on(device) or backend.unsupported(args, kwargs)
            if reason is not None:
                raise BackendUnavailable(
                    f"kernel op {self.name!r}: backend {wanted!r} was requested ({source}) but cannot run: "
                    f"{reason}. Unset the request to let dispatch fall back to the reference."
                )
            return backend
        for backend in self._by_priority():
            if backend.name == REFERENCE:
                return backend
            runnable = backend.unavailable_on(device) is None and backend.unsupported(args, kwargs) is None
            if runnable and backend.loads():
                return backend
        raise AssertionError("unreachable: the reference is always last")  # pragma: no cover

    def backend(self, name: str, *, source: str = "") -> Backend:
        try:
            return self.backends[name]
        except KeyError:
            where = f" (requested by {source})" if source else ""
            raise UnknownBackend(
                f"kernel op {self.name!r} has no backend {name!r}{where}; registered: "
                f"{', '.join(self.backends)}. A bare name in SPLICE_KERNELS forces it for every op; "
                f"use a per-op entry such as SPLICE_KERNELS={self.name}=reference instead."
            ) from None

    def _by_priority(self) -> list[Backend]:
        return sorted(self.backends.values(), key=lambda b: (b.name == REFERENCE, -b.priority, b.name))

    def run(self, backend: str, *args: Any, **kwargs: Any) -> Any:
        """Call one named backend directly, with the same checks as an explicit request."""
        chosen = self.backend(backend)
        reason = chosen.unavailable_on(_first_device(args, kwargs)) or chosen.unsupported(args, kwargs)
        if reason is not None:
            raise BackendUnavailable(f"kernel op {self.name!r}: backend {backend!r} cannot run: {reason}")
        return chosen.fn(*args, **kwargs)


_REGISTRY: dict[str, Op] = {}
_LOCK = threading.Lock()


def define_op(
    name: str,
    reference: Callable[..., Any],
    *,
    samples: SampleFn | None = None,
    differentiable: bool = False,
    tol: Mapping[torch.dtype, Tolerance] | None = None,
    grad_tol: Mapping[torch.dtype, Tolerance] | None = None,
    mismatch_budget: float = 0.0,
    description: str = "",
) -> Op:
    """Register a new op with its reference and return the dispatching callable.

    ``samples(device)`` yields :class:`Sample` inputs over a grid of shapes and dtypes; they are
    what ``splice.kernels.testing.check_backend`` compares every backend on.
    """
    with _LOCK:
        if name in _REGISTRY:
            raise KernelError(f"kernel op {name!r} is already defined (by {_REGISTRY[name].reference.__module__})")
        op = Op(name, reference, samples=samples, differentiable=differentiable, tol=tol,
                grad_tol=grad_tol, mismatch_budget=mismatch_budget, description=description)
        _REGISTRY[name] = op
    return op


@contextlib.contextmanager
def isolated_registry() -> Iterator[None]:
    """Ops and backends registered inside the block are forgotten after it (for tests that define
    throwaway ops); ops defined before keep their backends as they were."""
    with _LOCK:
        saved = {name: (op, dict(op.backends)) for name, op in _REGISTRY.items()}
    try:
        yield
    finally:
        with _LOCK:
            _REGISTRY.clear()
            for name, (op, backends) in saved.items():
                op.backends = backends
                _REGISTRY[name] = op


def get_op(name: str) -> Op:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownOp(f"no kernel op {name!r}; defined ops: {', '.join(sorted(_REGISTRY)) or 'none'}") from None


def ops() -> list[Op]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def register_backend(
    op: str,
    name: str,
    fn: Callable[..., Any] | str,
    *,
    available: Availability | None = None,
    supports: Supports | None = None,
    priority: int = 10,
) -> Backend:
    """Add an accelerated backend to an op, in one line::

        register_backend("fake_quant", "triton", "my_pkg.kernels:fake_quant", available=triton_available)

    ``fn`` has the reference's signature. ``available(device)`` and ``supports(*args, **kwargs)``
    return None or the reason the backend cannot run; dispatch skips it then (silently unless it was
    requested). Higher ``priority`` wins among runnable backends; the reference is 0.
    """
    if name == REFERENCE:
        raise KernelError(f"kernel op {op!r}: 'reference' is the op's own implementation; pick another name")
    target = get_op(op)
    with _LOCK:
        existing = target.backends.get(name)
        if existing is not None and existing.target != fn:
            raise KernelError(
                f"kernel op {op!r} already has a backend {name!r} ({existing.source}); "
                f"choose another backend name"
            )
        backend = Backend(op, name, fn, available=available, supports=supports, priority=priority)
        target.backends[name] = backend
    return backend


def backend(
    op: str,
    name: str,
    *,
    available: Availability | None = None,
    supports: Supports | None = None,
    priority: int = 10,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of :func:`register_backend`."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        register_backend(op, name, fn, available=available, supports=supports, priority=priority)
        return fn

    return decorate


@dataclass(frozen=True)
class BackendInfo:
    name: str
    priority: int
    available: bool
    reason: str | None
    source: str


@dataclass(frozen=True)
class OpInfo:
    """One row of ``splice kernels``: an op, its backends, and which can run here."""

    op: str
    description: str
    device: str
    requested: str | None
    selected: str | None
    backends: tuple[BackendInfo, ...]
    error: str | None = None


def list_ops(device: torch.device | str | None = None) -> list[OpInfo]:
    """Every registered op with each backend's availability on ``device`` (default: CUDA if
    visible, else CPU). Input-level limits (shapes, dtypes) are not known without inputs, so
    ``selected`` is the backend an ordinary call on that device would get."""
    dev = torch.device(device) if device is not None else local_device()
    rows = []
    for op in ops():
        infos = []
        for b in op._by_priority():
            reason = b.unavailable_on(dev)
            infos.append(BackendInfo(b.name, b.priority, reason is None, reason, b.source))
        error = None
        try:
            wanted, source = requested_backend(op.name)
        except KernelError as exc:
            wanted, error = None, str(exc)
        if wanted is not None:
            match = [i for i in infos if i.name == wanted]
            if not match:
                selected, error = None, f"requested backend {wanted!r} ({source}) is not registered"
            elif not match[0].available:
                selected, error = None, f"requested backend {wanted!r} ({source}) cannot run: {match[0].reason}"
            else:
                selected = wanted
        else:
            selected = next((i.name for i in infos if i.available), REFERENCE)
        rows.append(OpInfo(op.name, op.description, str(dev), wanted, selected, tuple(infos), error))
    return rows
