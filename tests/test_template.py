"""The plugin template: ``splice new`` renders one plugin of every kind, they are built and installed
(pip, wheels, entry points), and ``splice check`` passes on all of them unmodified."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import tomllib
from splice.cli.app import main
from splice.testing import specs_for

KINDS = ("attention", "activation", "quantizer", "unlearner", "evaluator")
HOOKS = {"attention": "register_attention", "activation": "register_activations", "quantizer": "register_quantizers",
         "unlearner": "register_unlearners", "evaluator": "register_evaluators"}
NAMES = {k: f"tpl{k}" for k in KINDS}

pytestmark = pytest.mark.xdist_group("template")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Render every kind with ``splice new`` and install the five distributions into a private
    site folder (a real pip install: wheels built by setuptools, dist-info with entry points),
    so the shared environment never sees them; subprocesses put it on PYTHONPATH."""
    root = tmp_path_factory.mktemp("template")
    plugins = root / "plugins"
    for kind, name in NAMES.items():
        assert main(["new", "--kind", kind, "--name", name, "--dir", str(plugins)]) == 0
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "--target", str(site), *[str(plugins / n) for n in NAMES.values()]],
                   check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "SPLICE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    return plugins, env


def splice(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from splice.cli.app import main; sys.exit(main())",
                           *args], env=env, capture_output=True, text=True, timeout=600, check=False)


def test_every_kind_renders_a_complete_plugin(rendered):
    plugins, _ = rendered
    for kind, name in NAMES.items():
        d = plugins / name
        meta = tomllib.loads((d / "pyproject.toml").read_text())["project"]
        assert meta["name"] == f"splice-plugin-{name}" and meta["dependencies"] == ["splice"]
        assert meta["entry-points"]["splice"] == {name: f"splice_{name}.plugin"}
        plugin_py = (d / "src" / f"splice_{name}" / "plugin.py").read_text()
        assert f"def {HOOKS[kind]}(register)" in plugin_py
        readme = (d / "README.md").read_text()
        for field in ("Title", "arXiv", "Claim reproduced here", "## Results"):
            assert field in readme
        assert (d / "tests" / f"test_{name}_conformance.py").read_text().count(f'check_plugin("{name}")') == 1
        answers = (d / ".copier-answers.yml").read_text()
        assert f"kind: {kind}" in answers  # `copier update` can bring template changes in later


def test_installed_plugins_pass_splice_check_unmodified(rendered):
    _, env = rendered
    listed = splice(env, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    methods = {(m["kind"], m["name"]): m["distribution"] for m in json.loads(listed.stdout)["methods"]}
    for kind, name in NAMES.items():
        assert methods.get((kind, name)) == f"splice-plugin-{name}"
    run = splice(env, "check", *NAMES.values(), "--json")
    out = json.loads(run.stdout)
    bad = [(r["method"], r["check"], r["status"], r["message"]) for r in out["results"] if r["status"] != "pass"]
    assert run.returncode == 0 and out["ok"], bad
    assert not bad, bad  # every check applies to the template and passes: nothing skipped either
    assert {r["method"] for r in out["results"]} == set(NAMES.values())


def test_rendered_tests_pass_and_hold_one_conformance_test_per_check(rendered):
    """The rendered plugins' own tests: the method tests run (and pass); the conformance tests are
    collected, one per check (deselected here: test_installed_plugins_pass_splice_check_unmodified
    runs the same checks through `splice check`)."""
    plugins, env = rendered
    n_checks = sum(len(specs_for(k)) for k in KINDS)
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                          "-k", "not conformance", *[str(plugins / n / "tests") for n in NAMES.values()]],
                         env=env, capture_output=True, text=True, cwd=plugins, check=False)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert re.search(rf"\b7 passed, {n_checks} deselected\b", ran.stdout), ran.stdout[-500:]


@pytest.mark.parametrize(("name", "message"), [
    ("Bad-Name", "must be a lowercase Python identifier"),
    ("9lives", "must be a lowercase Python identifier"),
    ("MyQuant", "must be a lowercase Python identifier"),
    ("class", "not a keyword"),
    ("rtn", "already provided by splice (quantizer 'rtn')"),
    ("perplexity", "already provided by splice (evaluator 'perplexity')"),
])
def test_invalid_names_are_refused_with_a_clear_message(tmp_path, capsys, name, message):
    assert main(["new", "--kind", "quantizer", "--name", name, "--dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert not any(tmp_path.iterdir())  # nothing was written


def test_an_existing_folder_is_refused(tmp_path, capsys):
    (tmp_path / "myquant").mkdir()
    assert main(["new", "--kind", "quantizer", "--name", "myquant", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_unknown_kind_is_a_usage_error(tmp_path, capsys):
    assert main(["new", "--kind", "tokenizer", "--name", "myquant", "--dir", str(tmp_path)]) == 2
    assert "tokenizer" in capsys.readouterr().err
