"""The machinery of the conformance suite: checks, subjects, results, running and caching.

A *check* is a function ``fn(subject) -> str | None`` registered for a kind (or for every kind)
with :func:`check`. It raises :class:`CheckFailed` with a message that says what is wrong,
:class:`CheckSkipped` when it does not apply (e.g. the method declares no exact limit case), and
returns an optional detail for the report when it passes. A :class:`Check` binds one check to
one method (the *subject*); running it gives a :class:`CheckResult`.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import PluginNotFound
from ..method import KINDS, Method
from ..registry import Entry, Registry, get_registry

Status = Literal["pass", "fail", "skip", "error"]
ALL = "*"  # registers a check for every kind


class CheckFailed(AssertionError):
    """The method breaks the contract this check verifies (the message says how)."""


class CheckSkipped(Exception):
    """The check does not apply to this method (the message says why)."""


@dataclass(frozen=True)
class CheckSpec:
    name: str
    kind: str  # a kind, or ALL
    description: str
    fn: Callable[[Subject], str | None]
    slow: bool  # runs the model: its result is memoised per process (see ``Check.run``)
    order: int


_SPECS: list[CheckSpec] = []


def check(kind: str, name: str, description: str, slow: bool = True) -> Callable:
    """Decorator: register ``fn(subject)`` as the check ``name`` for ``kind`` (or ``ALL``)."""

    def deco(fn: Callable[[Subject], str | None]) -> Callable[[Subject], str | None]:
        if any(s.name == name and s.kind in (kind, ALL) for s in _SPECS):
            raise ValueError(f"check {name!r} is defined twice for {kind}")
        _SPECS.append(CheckSpec(name, kind, description, fn, slow, len(_SPECS)))
        return fn

    return deco


def specs_for(kind: str) -> list[CheckSpec]:
    """The checks a method of ``kind`` gets: the common ones first, then the kind's own."""
    from . import activation, attention, common, evaluator, quantizer, unlearner  # noqa: F401  (registers)

    common_specs = [s for s in _SPECS if s.kind == ALL]
    own = [s for s in _SPECS if s.kind == kind]
    if kind == "model":  # model providers: only the declarative checks apply
        common_specs = [s for s in common_specs if not s.slow]
    return common_specs + own


def all_specs() -> dict[str, list[CheckSpec]]:
    return {k: specs_for(k) for k in KINDS}


@dataclass
class Subject:
    """The method under test: its registry entry (None if its plugin failed to load)."""

    name: str  # the name asked for (method or plugin name)
    kind: str
    registry: Registry
    entry: Entry | None = None

    @property
    def cls(self) -> type[Method]:
        if self.entry is None:
            raise CheckFailed(f"{self.name!r} did not register; nothing else can be checked")
        return self.entry.cls

    def options(self, **overrides: Any) -> dict[str, Any]:
        """Config values for checks: suite defaults for the kind (when the Config has the field),
        then the method's ``conformance_config``, then ``overrides``."""
        from .fixtures import SUITE_OPTIONS

        fields = getattr(self.cls.Config, "model_fields", {})
        out = {}
        for k, v in SUITE_OPTIONS.get(self.kind, {}).items():  # only ever shortens a run
            if k in fields:
                default = fields[k].default
                out[k] = min(v, default) if isinstance(default, (int, float)) and not isinstance(default, bool) else v
        out.update(getattr(self.cls, "conformance_config", {}) or {})
        out.update(overrides)
        return out

    def method(self, **overrides: Any) -> Any:
        """An instance with the check options (a bad option is the method's own ConfigError)."""
        return self.cls(self.options(**overrides))

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.entry.name if self.entry else self.name}"


@dataclass
class CheckResult:
    check: Check
    status: Status
    message: str = ""
    seconds: float = 0.0
    detail: str = ""  # a traceback for errors

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "skip")

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.check.method_name, "kind": self.check.kind, "check": self.check.name,
                "status": self.status, "message": self.message, "seconds": round(self.seconds, 3)}


_CACHE: dict[tuple, tuple[Status, str]] = {}


@dataclass
class Check:
    """One check bound to one method. ``str(check)`` is its pytest id: ``<method>-<check>``."""

    spec: CheckSpec
    subject: Subject
    _key: tuple | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.subject.kind

    @property
    def method_name(self) -> str:
        return self.subject.entry.name if self.subject.entry else self.subject.name

    @property
    def description(self) -> str:
        return self.spec.description

    def __str__(self) -> str:
        return f"{self.method_name}-{self.name}"

    def _cache_key(self) -> tuple | None:
        entry = self.subject.entry
        if not self.spec.slow or entry is None:
            return None
        extra = tuple(sorted((k, repr(v)) for k, v in (getattr(entry.cls, "conformance_config", {}) or {}).items()))
        return (entry.cls, entry.kind, self.spec.name, extra)

    def run(self, cache: bool = True) -> CheckResult:
        """Run it (never raises): pass, fail (contract broken), skip, or error (unexpected exception).

        Model-running checks are memoised per process by (class, check), so a plugin's own
        conformance tests and the root suite's run of the same plugin on one worker cost once.
        """
        key = self._cache_key() if cache else None
        if key is not None and key in _CACHE:
            status, message = _CACHE[key]
            return CheckResult(self, status, message + (" (cached)" if message else "(cached)"), 0.0)
        start = time.perf_counter()
        detail = ""
        try:
            message = self.spec.fn(self.subject) or ""
            status: Status = "pass"
        except CheckFailed as err:
            status, message = "fail", str(err)
        except CheckSkipped as err:
            status, message = "skip", str(err)
        except Exception as err:  # noqa: BLE001  (a crash is a finding, reported with its traceback)
            status, message = "error", f"{type(err).__name__}: {err}"
            detail = traceback.format_exc()
        result = CheckResult(self, status, message, time.perf_counter() - start, detail)
        if key is not None and status != "error":
            _CACHE[key] = (status, message)
        return result

    def __call__(self) -> str:
        """Run it for a test framework: passes silently (returns the detail), raises CheckFailed
        on failure, CheckSkipped when it does not apply, and lets unexpected exceptions through
        with their traceback."""
        key = self._cache_key()
        if key is not None and key in _CACHE:
            status, message = _CACHE[key]
        else:
            try:
                message = self.spec.fn(self.subject) or ""
                status = "pass"
            except CheckFailed as err:
                status, message = "fail", str(err)
            except CheckSkipped as err:
                status, message = "skip", str(err)
            if key is not None:
                _CACHE[key] = (status, message)
        if status == "fail":
            raise CheckFailed(f"{self}: {message}")
        if status == "skip":
            raise CheckSkipped(message)
        return message


def clear_cache() -> None:
    _CACHE.clear()


def subjects(name: str, registry: Registry | None = None, kind: str | None = None) -> list[Subject]:
    """The methods ``name`` designates: a method name (any kind, or ``kind``), or a plugin
    (entry-point) name, which gives every method it registers. A plugin that failed to load is
    one subject without an entry: its ``registers`` check fails with the import error."""
    registry = registry or get_registry()
    if kind is not None and kind not in KINDS:
        raise PluginNotFound(f"unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
    found = [e for e in registry.find(name) if kind is None or e.kind == kind]
    if found:
        return [Subject(name, e.kind, registry, e) for e in sorted(found, key=lambda e: (KINDS.index(e.kind), e.name))]
    failed = [f for f in registry.failures if f.plugin == name]
    if failed:
        return [Subject(name, kind or "plugin", registry, None)]
    known = ", ".join(sorted({e.name for e in registry.all()})) or "none"
    raise PluginNotFound(f"no method or plugin named {name!r}{f' of kind {kind}' if kind else ''} "
                         f"(installed: {known})")


def checks_for(name: str, registry: Registry | None = None, kind: str | None = None,
               only: list[str] | None = None) -> list[Check]:
    """Every check that applies to the method(s) ``name`` designates, in report order."""
    out = []
    for subj in subjects(name, registry, kind):
        specs = specs_for(subj.kind) if subj.entry is not None else [s for s in specs_for("model")
                                                                      if s.name == "registers"]
        for spec in specs:
            if only and spec.name not in only:
                continue
            out.append(Check(spec, subj))
    if only:
        unknown = set(only) - {s.name for specs in all_specs().values() for s in specs}
        if unknown:
            raise PluginNotFound(f"unknown check(s) {', '.join(sorted(unknown))} "
                                 f"(checks: {', '.join(sorted({s.name for s in _SPECS}))})")
    return out


def run_checks(name: str, registry: Registry | None = None, kind: str | None = None,
               only: list[str] | None = None, on_result: Callable[[CheckResult], None] | None = None,
               cache: bool = True) -> list[CheckResult]:
    """Run every check for ``name`` and return the results (what ``splice check`` prints)."""
    results = []
    for c in checks_for(name, registry, kind, only):
        r = c.run(cache=cache)
        results.append(r)
        if on_result is not None:
            on_result(r)
    return results
