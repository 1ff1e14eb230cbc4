"""Discovery through entry points, built-ins through the same hooks, broken plugins isolated."""

from __future__ import annotations

import importlib.metadata as md
import types

import pytest

from splice import hookimpl
from splice.errors import PluginNotFound
from splice.kinds import QuantizerMethod
from splice.registry import Registry

BUILTINS = {("attention", "sdpa"), ("activation", "silu"), ("activation", "gelu"), ("activation", "relu"),
            ("quantizer", "rtn"), ("unlearner", "ga"), ("unlearner", "graddiff"), ("evaluator", "perplexity"),
            ("model", "llama")}


def test_builtins_come_through_the_entry_point_group():
    reg = Registry()
    found = {(e.kind, e.name) for e in reg.all() if e.distribution == "splice"}
    assert BUILTINS <= found
    assert all(e.plugin == "builtins" for e in reg.all() if e.distribution == "splice")


def _ep(name: str, value: str) -> md.EntryPoint:
    return md.EntryPoint(name=name, value=value, group="splice")


def test_a_plugin_that_fails_to_import_is_reported_and_others_still_load():
    reg = Registry(load_entry_points=False)
    reg._load_entry_points([_ep("ghost", "splice_no_such_module.plugin"), _ep("builtins", "splice.builtins.plugin")])
    assert ("quantizer", "rtn") in reg.entries
    (failure,) = reg.failures
    assert failure.plugin == "ghost" and "ModuleNotFoundError" in failure.error
    with pytest.raises(PluginNotFound, match="failed to load"):
        reg.get("quantizer", "ghost")


def test_a_hook_that_raises_is_reported_by_name():
    mod = types.ModuleType("bad_plugin")

    @hookimpl
    def register_quantizers(register):
        raise RuntimeError("boom")

    mod.register_quantizers = register_quantizers
    reg = Registry(load_entry_points=False)
    reg.add_module(mod, "bad")
    assert reg.failures and reg.failures[0].plugin == "bad" and "boom" in reg.failures[0].error


def test_registered_classes_are_checked():
    class NotAMethod:
        name = "x"

    class BadName(QuantizerMethod):
        name = "Bad-Name"

    for cls in (NotAMethod, BadName):
        mod = types.ModuleType("p")
        mod.register_quantizers = hookimpl(lambda register, _c=cls: register(_c))
        reg = Registry(load_entry_points=False)
        reg.add_module(mod, f"p{id(cls)}")
        assert len(reg.failures) == 1


def test_unknown_method_names_the_installed_ones_and_the_distribution():
    reg = Registry()
    with pytest.raises(PluginNotFound, match=r"installed: .*rtn.*pip install splice-plugin-nosuch"):
        reg.get("quantizer", "nosuch")
    with pytest.raises(PluginNotFound, match="unknown kind"):
        reg.get("optimizer", "adamw")
