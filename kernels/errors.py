"""Errors raised by kernel dispatch. All are `SpliceError`s: the user can fix them (a backend
name, an environment variable, an argument), none of them is a bug in splice."""

from __future__ import annotations

from splice.errors import SpliceError


class KernelError(SpliceError):
    """Base class for kernel dispatch and kernel-argument errors."""


class UnknownOp(KernelError, LookupError):
    """No kernel op of that name is registered."""


class UnknownBackend(KernelError, LookupError):
    """The op has no backend of that name (e.g. a forced backend that was never registered)."""


class BackendUnavailable(KernelError, RuntimeError):
    """A backend that was asked for explicitly cannot run here or on these inputs."""


class KernelSpecError(KernelError, ValueError):
    """A malformed SPLICE_KERNELS value or backend override."""


class KernelArgumentError(KernelError, ValueError):
    """Arguments an op cannot accept (shape, dtype, bits, sizes); the message names the argument."""
