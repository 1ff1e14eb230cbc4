"""A plugin that cannot be imported: it needs a dependency that is not installed."""

from __future__ import annotations

import splice_dependency_that_is_not_installed  # noqa: F401
from splice import hookimpl


@hookimpl
def register_quantizers(register):  # never reached
    raise AssertionError("unreachable")
