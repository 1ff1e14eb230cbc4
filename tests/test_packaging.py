"""The distribution's explicit package list covers every package folder (wheel builds need it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {"core": "splice", "cli": "splice.cli", "kernels": "splice.kernels"}


def test_every_package_folder_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, pkg in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if "__pycache__" in rel.parts or (folder == "core" and rel.parts[:1] in (("cli",), ("kernels",))):
                continue
            found.add(".".join((pkg, *rel.parts)))
    assert found <= listed, f"add to pyproject [tool.setuptools] packages: {sorted(found - listed)}"


def test_readme_two_commands_exist_in_makefile():
    make = (ROOT / "Makefile").read_text()
    assert "\ndemo:" in make and "\ntest:" in make
    assert "torch==2.13.0" in make  # the CPU build resolves only when pinned
    assert "make test" in (ROOT / ".ci" / "run").read_text()
