"""The conformance suite finds real defects: deliberately broken plugins (tests/broken_plugins/) are
each caught by the check that verifies the contract they break, and by no other."""

from __future__ import annotations

import importlib
import importlib.metadata as md
from pathlib import Path

import pytest
import splice.builtins.plugin
import torch
from splice.registry import Registry
from splice.testing import CheckFailed, checks_for, run_checks

BROKEN = Path(__file__).resolve().parent / "broken_plugins"

# plugin -> (method, the checks that must fail, a phrase the failure must contain)
EXPECTED = {
    "leaky": ("leaky", {"causal"}, "sees the future"),
    "deaf": ("deaf", {"full_precision", "bits_monotone"}, "honoured"),
    "forgetful": ("forgetful", {"roundtrip", "composes"}, "reloaded artifact differ"),
    "meddler": ("meddler", {"reference_untouched"}, "changed the reference model"),
}

pytestmark = pytest.mark.xdist_group("conformance-broken")


@pytest.fixture(scope="module")
def registry():
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(BROKEN))
        reg = Registry(load_entry_points=False)
        reg.add_module(splice.builtins.plugin, "builtins", "splice", "0")
        for plugin in EXPECTED:
            reg.add_module(importlib.import_module(f"broken_{plugin}"), plugin)
        # the unimportable one goes through the registry's real entry-point loading path
        reg._load_entry_points([md.EntryPoint(name="unimportable", value="broken_unimportable", group="splice")])
        yield reg


@pytest.mark.parametrize("plugin", sorted(EXPECTED))
def test_each_defect_is_caught_by_its_check(registry, plugin):
    method, must_fail, phrase = EXPECTED[plugin]
    results = run_checks(plugin, registry, cache=False)
    failed = {r.check.name for r in results if r.status in ("fail", "error")}
    table = "\n".join(f"  {r.check.name}: {r.status} {r.message[:160]}" for r in results)
    assert failed == must_fail, f"{plugin}: expected exactly {sorted(must_fail)} to fail:\n{table}"
    assert all(r.status == "fail" for r in results if r.check.name in must_fail), table  # a finding, not a crash
    messages = " ".join(r.message for r in results if r.check.name in must_fail)
    assert phrase in messages, table
    assert {r.check.method_name for r in results} == {method}


def test_unimportable_plugin_fails_registration_with_its_import_error(registry):
    checks = checks_for("unimportable", registry)
    assert [c.name for c in checks] == ["registers"]
    [result] = [c.run() for c in checks]
    assert result.status == "fail"
    assert "failed to load" in result.message and "splice_dependency_that_is_not_installed" in result.message
    with pytest.raises(CheckFailed, match="failed to load"):
        checks[0]()


def test_builtins_in_the_same_registry_still_pass_the_cheap_checks(registry):
    """Control: the checks that caught the broken ones pass for the built-ins they were modelled on."""
    for name, only in (("sdpa", ["causal", "registers"]), ("rtn", ["full_precision", "bits_monotone"]),
                       ("ga", ["reference_untouched"])):
        results = run_checks(name, registry, only=only)
        assert all(r.status == "pass" for r in results), [(r.check.name, r.status, r.message) for r in results]
