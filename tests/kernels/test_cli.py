"""``splice kernels``: the table and its JSON form."""

from __future__ import annotations

import json

import pytest
import typer
from splice.cli.kernels_cmd import register
from typer.testing import CliRunner


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # a group, as in the real app, so the command keeps its name
        pass

    register(app)
    return app


def test_table_lists_ops_and_backends(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["kernels"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("fake_quant", "dequant_matmul", "hadamard", "block_sparse_attention", "triton", "reference"):
        assert name in result.output


def test_json(app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setenv("SPLICE_KERNELS", "hadamard=reference,nonexistent=triton")
    result = CliRunner().invoke(app, ["kernels", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["unknown_ops_in_spec"] == ["nonexistent"]
    rows = {row["op"]: row for row in data["ops"]}
    assert rows["hadamard"]["requested"] == "reference" and rows["hadamard"]["selected"] == "reference"
    triton = next(b for b in rows["fake_quant"]["backends"] if b["name"] == "triton")
    assert triton["available"] is False and "TRITON_INTERPRET" in triton["reason"]
