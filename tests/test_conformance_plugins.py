"""The conformance suite over every plugin of this repository (plugins/*) and the core's built-ins.

One test per (method, check). A project under plugins/ that is not installed, or that fails to
load, is a failing test with the reason. Checks are xdist-grouped by method and memoised per
process, so a plugin's own ``test_<name>_conformance.py`` on the same worker costs nothing extra.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

import pytest
import tomllib
from splice.registry import get_registry
from splice.testing import checks_for
from splice.testing.pytest_helper import group, run_check

REPO = Path(__file__).resolve().parents[1]


def normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def plugin_projects() -> dict[str, Path]:
    """Distribution name (normalised) -> folder, for every plugins/*/pyproject.toml."""
    out = {}
    for py in sorted((REPO / "plugins").glob("*/pyproject.toml")):
        name = tomllib.loads(py.read_text()).get("project", {}).get("name")
        if name:
            out[normalize(name)] = py.parent
    return out


def collect() -> list:
    reg = get_registry()
    projects = plugin_projects()
    params = []
    for dist, folder in projects.items():
        try:
            md.distribution(dist)
        except md.PackageNotFoundError:
            params.append(pytest.param(None, f"{dist} ({folder.relative_to(REPO)}) is not installed: "
                                             f"pip install -e {folder.relative_to(REPO)}",
                                       id=f"{folder.name}-installed"))
    ours = [e for e in reg.all() if e.distribution == "splice" or normalize(e.distribution) in projects]
    for e in ours:
        for c in checks_for(e.name, reg, kind=e.kind):
            if c.method_name != e.name:  # a plugin name also names its other methods: each once
                continue
            params.append(pytest.param(c, "", id=f"{e.kind}-{c}", marks=pytest.mark.xdist_group(group(c.method_name))))
    for f in reg.failures:
        if normalize(f.distribution) in projects or f.distribution == "splice":
            for c in checks_for(f.plugin, reg):
                params.append(pytest.param(c, "", id=f"failed-{c}"))
    return params


@pytest.mark.parametrize(("check", "problem"), collect())
def test_conformance(check, problem):
    if check is None:
        pytest.fail(problem)
    run_check(check)


def test_every_builtin_is_under_test():
    """The root suite covers the core's built-ins (and finds plugins that register nothing)."""
    ids = {(e.kind, e.name) for e in get_registry().all() if e.distribution == "splice"}
    assert {("attention", "sdpa"), ("activation", "silu"), ("activation", "gelu"), ("activation", "relu"),
            ("quantizer", "rtn"), ("unlearner", "ga"), ("unlearner", "graddiff"), ("evaluator", "perplexity")} <= ids
    registered = {normalize(e.distribution) for e in get_registry().all()}
    failed = {normalize(f.distribution) for f in get_registry().failures}
    silent = [d for d in plugin_projects() if d not in registered and d not in failed and _installed(d)]
    assert not silent, f"installed plugin distributions that register no method: {silent}"


def _installed(dist: str) -> bool:
    try:
        md.distribution(dist)
    except md.PackageNotFoundError:
        return False
    return True
