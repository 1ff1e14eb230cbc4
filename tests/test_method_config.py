"""Configs: defaults validate, bad values name the field, CLI option strings parse."""

from __future__ import annotations

import pytest

from splice.builtins.rtn import RTN
from splice.errors import ConfigError
from splice.method import parse_options


def test_defaults_validate_and_bad_values_name_the_field():
    assert RTN().config.w_bits == 4
    with pytest.raises(ConfigError, match=r"rtn: w_bits: .*2\.\.8"):
        RTN({"w_bits": 1})
    with pytest.raises(ConfigError, match=r"rtn: sites: .*'all', 'attn' or 'mlp'"):
        RTN({"sites": "everything"})
    with pytest.raises(ConfigError, match=r"rtn: nonsense: Extra inputs"):
        RTN({"nonsense": 3})


def test_options_parse_as_json_or_strings():
    assert parse_options(["w_bits=4", "w_asym=true", "sites=mlp", "clip=0.9"]) == {
        "w_bits": 4, "w_asym": True, "sites": "mlp", "clip": 0.9}
    with pytest.raises(ConfigError, match="key=value"):
        parse_options(["w_bits"])
