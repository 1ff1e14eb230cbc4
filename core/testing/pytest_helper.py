"""The pytest face of the suite: one test per check, for a plugin's own tests and the root suite."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..registry import Registry
from .base import Check, CheckSkipped, checks_for


def group(method: str) -> str:
    """The pytest-xdist group of a method's checks: a plugin's own conformance tests and the root
    suite's run of the same method land on one worker, where results are memoised."""
    return f"splice-conformance-{method}"


def params(checks: Iterable[Check], xfail: dict[str, str] | None = None) -> list:
    """pytest params (id ``<method>-<check>``), xdist-grouped by method; ``xfail`` maps a check name
    to the reason it is a known, documented failure (strict: a pass then fails the test)."""
    import pytest

    out = []
    for c in checks:
        marks = [pytest.mark.xdist_group(group(c.method_name))]
        if xfail and c.name in xfail:
            marks.append(pytest.mark.xfail(reason=xfail[c.name], strict=True, raises=AssertionError))
        out.append(pytest.param(c, id=str(c), marks=marks))
    return out


def run_check(check: Check) -> None:
    """Run one check inside a test: failures are assertion errors, inapplicable checks skip."""
    import pytest

    try:
        check()
    except CheckSkipped as why:
        pytest.skip(str(why))


def check_plugin(name: str, registry: Registry | None = None, only: list[str] | None = None,
                 xfail: dict[str, str] | None = None) -> Callable:
    """A parametrised pytest test running every conformance check of ``name`` (a method or plugin name).

    In ``plugins/<name>/tests/test_<name>_conformance.py``::

        from splice.testing import check_plugin

        test_npo_conformance = check_plugin("npo")

    pytest collects one test per check (``test_npo_conformance[npo-forgets]`` ...). The checks are
    looked up when the test module is imported, in the registry of installed plugins unless
    ``registry`` is given; ``only`` restricts to some check names.
    """
    import pytest

    checks = checks_for(name, registry, only=only)

    @pytest.mark.parametrize("check", params(checks, xfail))
    def test_conformance(check: Check) -> None:
        run_check(check)

    test_conformance.__doc__ = f"splice conformance suite for {name!r}: one test per check."
    return test_conformance
