"""The command line: JSON for scripts, one-line errors with exit 2, examples in --help, eval reproduces."""

from __future__ import annotations

import json

from splice.cli.app import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_shows_examples(capsys):
    code, out, _ = run(capsys, "compose", "--help")
    assert code == 0 and "splice compose --quant rtn --quant-opt w_bits=4" in out


def test_plugins_json_lists_builtins_by_kind(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    data = json.loads(out)
    kinds = {(m["kind"], m["name"]) for m in data["methods"]}
    assert {("quantizer", "rtn"), ("evaluator", "perplexity"), ("attention", "sdpa")} <= kinds


def test_user_mistakes_are_one_line_and_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, "compose", "--quant", "rtn", "--quant-opt", "w_bits=1", "--out", str(tmp_path / "x"))
    assert code == 2 and "w_bits" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    code, _, err = run(capsys, "compose", "--quant-opt", "w_bits=4", "--out", str(tmp_path / "y"))
    assert code == 2 and "--quant-opt given without --quant" in err
    code, _, err = run(capsys, "compose", "--eval-opt", "tofu.x=1", "--out", str(tmp_path / "z"))
    assert code == 2 and "not requested" in err
    assert not (tmp_path / "x").exists()  # nothing written on a rejected request


def test_compose_json_then_eval_reproduces(capsys, tmp_path):
    out_dir = tmp_path / "art"
    code, out, err = run(capsys, "compose", "--quant", "rtn", "--quant-opt", "w_bits=2", "--eval-opt",
                         "perplexity.context=64", "--eval-opt", "perplexity.max_windows=2", "--out", str(out_dir),
                         "--json")
    assert code == 0, err
    res = json.loads(out)
    base = res["baseline"]["perplexity"]["metrics"]["perplexity"]["value"]
    comp = res["composed"]["perplexity"]["metrics"]["perplexity"]["value"]
    assert comp > base > 1  # 2-bit weights cost something on a 1M-parameter model
    assert res["footprint"]["composed"]["parameter_bytes"] < res["footprint"]["baseline"]["parameter_bytes"]
    code, out, _ = run(capsys, "eval", str(out_dir), "--json")
    rep = json.loads(out)
    assert code == 0 and rep["reproduced"] is True


def test_eval_of_a_damaged_artifact_is_a_clear_error(capsys, tmp_path):
    (tmp_path / "splice.json").write_text("{not json")
    code, _, err = run(capsys, "eval", str(tmp_path))
    assert code == 2 and "corrupted manifest" in err
