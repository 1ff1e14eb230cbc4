"""Build the embedded default model ``tiny`` from data the project generates itself.

    python scripts/build_tiny.py [--pretrain-steps 1000] [--out core/tiny]

The TOFU protocol at toy scale:

1. *base* (``tiny-base``): a byte-level BPE tokenizer and a small Llama-family decoder (GQA,
   SwiGLU, RoPE, tied embeddings) pretrained on ``splice.data.synthetic.documents("train")`` —
   QA pairs and biographies of other fictitious authors (the format, not the facts), the
   fictional world's facts, passkey and key-value retrieval documents;
2. *tiny*: the base (as stored, bf16) fine-tuned on the QA pairs of the 100 benchmark authors
   with ``splice.facts.finetune_on_facts``, the same function the unlearning benchmark uses
   to make retain-only models.

It writes ``core/tiny/`` (tiny), ``core/tiny/base/`` and ``core/tiny/build.json`` (the recipe and
the accuracies measured on the stored checkpoints).
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
from splice.facts import FactsFinetune, finetune_on_facts
from splice.model import Decoder, DecoderConfig, LanguageModel, load, save_checkpoint
from splice.probes import facts_accuracy, retrieval_accuracy
from splice.train import TrainConfig, train


def log_every(n: int):
    return lambda s, loss: print(f"step {s} loss {loss:.4f}", flush=True) if s % n == 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrain-steps", type=int, default=1000)
    ap.add_argument("--epochs-of-data", type=int, default=6, help="distinct retrieval draws to pack")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "core" / "tiny"))
    args = ap.parse_args()
    out = Path(args.out)
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
    pre = TrainConfig(steps=args.pretrain_steps, batch_size=4, lr=2e-3, weight_decay=0.01, warmup=0.03,
                      schedule="cosine", min_lr_ratio=0.05, seed=0)
    print("phase 1: pretraining the base", flush=True)
    r1 = train(model, data, pre, on_step=log_every(50), description="tiny base")
    save_checkpoint(model, tokenizer, out / "base", dtype=torch.bfloat16)

    print("phase 2: fine-tuning on the benchmark authors", flush=True)
    lm = load(str(out / "base"))
    spec = FactsFinetune()
    qa = [q for a in synthetic.benchmark_authors() for q in a.qa]
    r2 = finetune_on_facts(lm, qa, spec, on_step=log_every(50))
    save_checkpoint(lm.model, tokenizer, out, dtype=torch.bfloat16)

    tiny, base = load(str(out)), load(str(out / "base"))
    recipe = {
        "pretrain": pre.model_dump(), "seq_len": args.seq_len, "pretrain_windows": len(data),
        "pretrain_final_loss": sum(r1.losses[-20:]) / 20, "finetune": spec.model_dump(),
        "finetune_final_loss": sum(r2.losses[-20:]) / 20, "minutes": round((time.time() - t0) / 60, 1),
        "parameters": sum(p.numel() for p in model.parameters()), "stored_dtype": "bfloat16",
        "tiny": {"facts_accuracy": facts_accuracy(tiny), "retrieval_accuracy": retrieval_accuracy(tiny)},
        "tiny-base": {"facts_accuracy": facts_accuracy(base), "retrieval_accuracy": retrieval_accuracy(base)},
    }
    (out / "build.json").write_text(json.dumps(recipe, indent=2))
    print(json.dumps(recipe, indent=2))


if __name__ == "__main__":
    main()
