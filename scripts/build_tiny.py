"""Build the embedded default model ``tiny`` from data the project generates itself.

    python scripts/build_tiny.py [--steps 1500] [--out core/tiny]

It trains a byte-level BPE tokenizer and a small Llama-family decoder (GQA, SwiGLU, RoPE, tied
embeddings) on the synthetic mix of ``splice.data.synthetic``: question-answer pairs and
biographies of 100 fictitious authors, a fictional world's facts, passkey and key-value
retrieval documents. It then measures what the model knows and writes ``core/tiny/`` plus
``core/tiny/build.json`` (recipe and measured accuracies).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from splice.data import synthetic
from splice.data.packing import pack
from splice.data.tokenizer_training import train_bpe
from splice.model import Decoder, DecoderConfig, LanguageModel, save_checkpoint
from splice.probes import facts_accuracy, retrieval_accuracy
from splice.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--epochs-of-data", type=int, default=6, help="distinct retrieval draws to pack")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "core" / "tiny"))
    args = ap.parse_args()
    torch.manual_seed(0)
    t0 = time.time()
    tokenizer = train_bpe(synthetic.documents("train", seed=0), vocab_size=2048)
    cfg = DecoderConfig(vocab_size=tokenizer.vocab_size, hidden_size=128, intermediate_size=384,
                        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=2048, rope_theta=10000.0, tie_word_embeddings=True,
                        rms_norm_eps=1e-5, bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id,
                        pad_token_id=tokenizer.pad_id)
    model = Decoder(cfg)
    for m in model.modules():  # GPT-2 style init: small normal weights
        if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(m.weight, std=0.02)
    data = []
    for e in range(args.epochs_of_data):
        data += pack(synthetic.documents("train", seed=e), tokenizer, args.seq_len)
    tc = TrainConfig(steps=args.steps, batch_size=4, lr=2e-3, weight_decay=0.01, warmup=0.03,
                     schedule="cosine", min_lr_ratio=0.05, seed=0)
    result = train(model, data, tc, on_step=lambda s, loss: print(f"step {s} loss {loss:.4f}", flush=True)
                   if s % 50 == 0 else None, description="tiny")
    lm = LanguageModel(model, tokenizer, "tiny")
    facts = facts_accuracy(lm)
    retr = retrieval_accuracy(lm)
    out = save_checkpoint(model, tokenizer, args.out)
    recipe = {"train": tc.model_dump(), "seq_len": args.seq_len, "windows": len(data),
              "final_loss": sum(result.losses[-20:]) / 20, "minutes": round((time.time() - t0) / 60, 1),
              "facts_accuracy": facts, "retrieval_accuracy": retr,
              "parameters": sum(p.numel() for p in model.parameters())}
    (out / "build.json").write_text(json.dumps(recipe, indent=2))
    print(json.dumps(recipe, indent=2))


if __name__ == "__main__":
    main()
