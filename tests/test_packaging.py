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


def test_wheel_ships_the_embedded_model_and_the_plugin_template(tmp_path):
    """Installed from a wheel (not editable), splice still finds tiny and `splice new`'s template."""
    import os
    import subprocess
    import sys
    import zipfile

    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "-w", str(tmp_path / "dist"), str(ROOT)], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("splice-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"splice/tiny/config.json", "splice/tiny/model.safetensors", "splice/tiny/base/config.json",
            "splice/templates/plugin/copier.yml", "splice/templates/plugin/template/pyproject.toml.jinja"} <= names
    assert not any("__pycache__" in n for n in names)
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    probe = ("from splice.cli.commands.new import template_dir; import splice; "
             "print(splice.__file__); print(template_dir())")
    res = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert res.returncode == 0, res.stderr[-2000:]
    module, template = res.stdout.split()
    assert module.startswith(str(tmp_path / "site"))  # the wheel's copy, not the checkout
    assert template == str(tmp_path / "site" / "splice" / "templates" / "plugin")
