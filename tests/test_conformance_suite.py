"""splice.testing itself: which checks each kind gets, how names resolve, results, the pytest
helper, and ``splice check`` (table, JSON, exit status)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import splice.builtins.plugin
import splice.registry
from splice.cli.app import main
from splice.errors import PluginNotFound
from splice.registry import Registry
from splice.testing import CheckFailed, CheckSkipped, all_specs, check_plugin, checks_for, run_checks

REQUIRED = {
    "attention": {"shapes", "causal", "padding", "gradients", "kv_cache", "exact_limit"},
    "activation": {"shapes", "gradcheck", "limit_case", "sites"},
    "quantizer": {"bits", "full_precision", "bits_monotone", "packed_roundtrip", "refuses_bits"},
    "unlearner": {"reference_untouched", "forgets", "empty_forget"},
    "evaluator": {"report", "bad_inputs"},
}
COMMON = {"registers", "paper", "config", "deterministic", "roundtrip", "composes"}
CHEAP = ["registers", "paper", "config"]


def test_every_kind_gets_the_common_checks_and_its_own():
    specs = all_specs()
    for kind, own in REQUIRED.items():
        names = [s.name for s in specs[kind]]
        assert set(names) == COMMON | own, kind
        assert names[:3] == CHEAP  # declarative checks first: a plugin that does not load stops there
        assert all(s.description for s in specs[kind])
    assert {s.name for s in specs["model"]} == set(CHEAP)


def test_names_resolve_to_methods_or_plugins():
    assert {c.method_name for c in checks_for("rtn")} == {"rtn"}
    builtins = {c.method_name for c in checks_for("builtins", only=["registers"])}
    assert {"sdpa", "silu", "gelu", "relu", "rtn", "ga", "graddiff", "perplexity", "llama"} <= builtins
    assert {c.kind for c in checks_for("builtins", kind="unlearner")} == {"unlearner"}
    with pytest.raises(PluginNotFound, match="no method or plugin named 'nosuchmethod'"):
        checks_for("nosuchmethod")
    with pytest.raises(PluginNotFound, match="unknown check"):
        checks_for("rtn", only=["nosuchcheck"])


def test_results_and_calling_a_check():
    results = run_checks("gelu", only=CHEAP)
    assert [r.check.name for r in results] == CHEAP
    assert all(r.status == "pass" and r.ok for r in results)
    assert results[0].as_dict()["method"] == "gelu"
    [skipping] = checks_for("relu", only=["registers"])
    assert "activation 'relu'" in skipping()


def test_a_check_that_does_not_apply_skips(monkeypatch):
    from splice.builtins.attention import SDPAAttention

    from splice.testing import base

    monkeypatch.setattr(SDPAAttention, "exact_config", None)
    # results are memoised per (class, check): on a worker that already ran sdpa's real exact_limit
    # check, __call__ would return that pass; this test changes the class, so it starts from no memo
    monkeypatch.setattr(base, "_CACHE", {})
    [c] = checks_for("sdpa", only=["exact_limit"])
    assert c.run(cache=False).status == "skip"
    with pytest.raises(CheckSkipped, match="no exact limit case"):
        c()


def test_pytest_helper_builds_one_parametrised_test_per_check():
    test = check_plugin("rtn")
    [mark] = [m for m in test.pytestmark if m.name == "parametrize"]
    ids = [p.id for p in mark.args[1]]
    assert ids[:3] == ["rtn-registers", "rtn-paper", "rtn-config"]
    assert set(ids) == {f"rtn-{n}" for n in COMMON | REQUIRED["quantizer"]}
    assert all(any(m.name == "xdist_group" for m in p.marks) for p in mark.args[1])


# The helper as plugin authors use it (a one-liner); here on the cheap checks of a built-in.
test_gelu_cheap_conformance = check_plugin("gelu", only=CHEAP)


@pytest.fixture
def broken_registry(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent / "broken_plugins"))
    reg = Registry(load_entry_points=False)
    reg.add_module(splice.builtins.plugin, "builtins", "splice", "0")
    reg.add_module(importlib.import_module("broken_deaf"), "deaf")
    monkeypatch.setattr(splice.registry, "_REGISTRY", reg)
    yield reg
    sys.modules.pop("broken_deaf", None)


def test_splice_check_json_and_exit_status_on_success(capsys):
    assert main(["check", "rtn", "-c", "registers", "-c", "paper", "-c", "refuses_bits", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["counts"] == {"pass": 3}
    assert [r["check"] for r in out["results"]] == ["registers", "paper", "refuses_bits"]


def test_splice_check_table_and_exit_status_on_failure(broken_registry, capsys):
    assert main(["check", "deaf", "-c", "config", "-c", "full_precision"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "full_precision" in out and "1 failed" in out.replace("\n", " ")
    with pytest.raises(CheckFailed, match="differ from the unquantized model"):
        checks_for("deaf", broken_registry, only=["full_precision"])[0]()


def test_splice_check_usage_errors(capsys):
    assert main(["check"]) == 2
    assert main(["check", "nosuchmethod"]) == 2
    assert "no method or plugin named 'nosuchmethod'" in capsys.readouterr().err
    assert main(["check", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {c["check"] for c in listed["quantizer"]} == COMMON | REQUIRED["quantizer"]
