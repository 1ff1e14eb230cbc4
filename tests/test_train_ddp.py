"""The training loop gives the same result in one process and in two DDP processes (gloo, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = r'''
import sys, torch
from splice.model import Decoder, DecoderConfig
from splice.train import TrainConfig, init_distributed, train, world
init_distributed()
torch.manual_seed(0)
cfg = DecoderConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2)
model = Decoder(cfg)
g = torch.Generator().manual_seed(1)
data = [{"input_ids": (x := torch.randint(0, 64, (16,), generator=g)), "labels": x.clone()} for _ in range(32)]
res = train(model, data, TrainConfig(steps=6, batch_size=4, lr=1e-2, seed=0))
if world()[0] == 0:
    torch.save({"state": model.state_dict(), "losses": res.losses}, sys.argv[1])
'''


def run(tmp: Path, nproc: int) -> dict:
    script = tmp / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp / f"result{nproc}.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, str(script), str(out)]
    else:
        # --standalone: a local rendezvous on a free port (no fixed port to collide with)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               str(script), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out)


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    one, two = run(tmp_path, 1), run(tmp_path, 2)
    assert len(one["losses"]) == len(two["losses"]) == 6
    assert max(abs(a - b) for a, b in zip(one["losses"], two["losses"])) < 1e-5
    for k in one["state"]:
        assert torch.allclose(one["state"][k], two["state"][k], atol=1e-5), k
