"""Discovering methods: pluggy over the ``splice`` entry-point group.

Every installed distribution that declares ``[project.entry-points.splice]`` is imported; its
hook implementations register method classes by kind. The core's built-ins come in the same
way (the ``builtins`` entry point of the ``splice`` distribution). A plugin that fails to
import or to register is recorded with its error and does not take the others down.
"""

from __future__ import annotations

import importlib.metadata as md
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Iterable

import pluggy

from . import hookspecs
from .errors import PluginNotFound
from .kinds import BASES
from .method import KINDS, Method


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    cls: type[Method]
    plugin: str  # entry-point (or module) name it came from
    distribution: str
    version: str


@dataclass(frozen=True)
class Failure:
    plugin: str
    distribution: str
    error: str
    detail: str = ""


class Registry:
    def __init__(self, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.entries: dict[tuple[str, str], Entry] = {}
        self.failures: list[Failure] = []
        if load_entry_points:
            self._load_entry_points(md.entry_points(group=hookspecs.PROJECT))

    def _load_entry_points(self, eps: Iterable[md.EntryPoint]) -> None:
        for ep in sorted(eps, key=lambda e: (e.name != "builtins", e.name)):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            try:
                module = ep.load()
            except Exception as err:  # a broken plugin is reported, never fatal
                self.failures.append(Failure(ep.name, dist, f"{type(err).__name__}: {err}", traceback.format_exc()))
                continue
            self.add_module(module, ep.name, dist, version)

    def add_module(self, module: ModuleType | object, plugin: str, distribution: str = "(local)",
                   version: str = "0") -> None:
        """Register a plugin module (also used by tests to load plugins without installing them)."""
        if self.pm.is_registered(module) or self.pm.has_plugin(plugin):
            return
        try:
            self.pm.register(module, name=plugin)
        except Exception as err:
            self.failures.append(Failure(plugin, distribution, f"{type(err).__name__}: {err}"))
            return
        for hook_name, kind in hookspecs.HOOK_KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != plugin:
                    continue
                try:
                    impl.function(register=lambda cls, _k=kind: self._add(_k, cls, plugin, distribution, version))
                except Exception as err:
                    self.failures.append(Failure(plugin, distribution, f"{hook_name}: {type(err).__name__}: {err}",
                                                 traceback.format_exc()))

    def _add(self, kind: str, cls: type, plugin: str, dist: str, version: str) -> None:
        base = BASES[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{cls!r} registered as {kind} is not a subclass of {base.__name__}")
        if not cls.name or not cls.name.isidentifier() or cls.name != cls.name.lower():
            raise ValueError(f"{cls.__name__}.name must be a lowercase identifier (got {cls.name!r})")
        key = (kind, cls.name)
        if key in self.entries and self.entries[key].cls is not cls:
            other = self.entries[key]
            raise ValueError(f"{kind} {cls.name!r} is already provided by {other.distribution}")
        self.entries[key] = Entry(kind, cls.name, cls, plugin, dist, version)

    # -- queries -------------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Entry:
        if kind not in KINDS:
            raise PluginNotFound(f"unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
        entry = self.entries.get((kind, name))
        if entry is None:
            known = ", ".join(sorted(n for k, n in self.entries if k == kind)) or "none"
            failed = [f.plugin for f in self.failures if f.plugin == name]
            hint = (f"; plugin {name!r} is installed but failed to load: {self.failure(name).error}"
                    if failed else f"; install it with `pip install splice-plugin-{name}`")
            raise PluginNotFound(f"no {kind} method named {name!r} (installed: {known}){hint}")
        return entry

    def failure(self, plugin: str) -> Failure:
        return next(f for f in self.failures if f.plugin == plugin)

    def find(self, name: str) -> list[Entry]:
        """Every entry with this method name, or provided by the plugin of this name, any kind."""
        return [e for e in self.entries.values() if e.name == name or e.plugin == name]

    def by_kind(self, kind: str) -> list[Entry]:
        return sorted((e for e in self.entries.values() if e.kind == kind), key=lambda e: e.name)

    def all(self) -> list[Entry]:
        return sorted(self.entries.values(), key=lambda e: (KINDS.index(e.kind), e.name))


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return _REGISTRY


def reset_registry() -> None:
    global _REGISTRY
    _REGISTRY = None
