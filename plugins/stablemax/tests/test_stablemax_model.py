"""StableMax at the decoder's output site; `splice train --act stablemax --optimizer orthograd` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from splice.install import install_activation
from splice_stablemax import LogStableMax, StableMax, stablemax, stablemax_cross_entropy


def test_installs_at_output_act_and_softmax_gives_stablemax(lm_factory):
    lm = lm_factory()
    ids = torch.randint(0, lm.config.vocab_size, (2, 9))
    raw = lm.model(ids).logits
    install_activation(lm.model, StableMax())
    assert isinstance(lm.model.output_act, LogStableMax)
    out = lm.model(ids).logits
    torch.testing.assert_close(torch.softmax(out, -1), stablemax(raw), rtol=1e-5, atol=1e-7)
    # the training loop's loss on this output is the StableMax cross-entropy of the raw logits
    labels = torch.randint(0, lm.config.vocab_size, (2, 9))
    torch.testing.assert_close(F.cross_entropy(out.flatten(0, 1), labels.flatten()),
                               stablemax_cross_entropy(raw.flatten(0, 1), labels.flatten()), rtol=1e-5, atol=1e-6)


def test_cli_train_stablemax_with_orthograd(tmp_path: Path):
    from splice.errors import SpliceError
    from splice.model.loading import resolve_source

    try:
        resolve_source("tiny")
    except SpliceError as err:
        pytest.skip(f"embedded model not available: {err}")
    from splice.artifact import load_artifact
    from splice.cli.app import app
    from typer.testing import CliRunner

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--act", "stablemax", "--optimizer", "orthograd", "--steps", "3",
                                   "--batch-size", "2", "--seq-len", "64", "--eval-opt", "perplexity.context=64",
                                   "--eval-opt", "perplexity.max_windows=2", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "splice.json").read_text())
    assert manifest["recipe"]["train"]["optimizer"] == "orthograd"
    lm, _ = load_artifact(out)
    assert isinstance(lm.model.output_act, LogStableMax)
