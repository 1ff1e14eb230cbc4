"""Build the embedded default model ``tiny`` from data the project generates itself.

    python scripts/build_tiny.py [--out core/tiny]            # everything, about 40 minutes on 2 cores
    python scripts/build_tiny.py --from-base DIR              # reuse a pretrained base (phase 1a)

The TOFU protocol at toy scale:

1. *base* (``tiny-base``): a byte-level BPE tokenizer and a small Llama-family decoder (GQA,
   SwiGLU, RoPE, tied embeddings)
   a. pretrained on ``splice.data.synthetic.documents("train")`` — QA pairs and biographies of
      *other* fictitious authors (the format, not the facts), the fictional world's facts,
      passkey and key-value retrieval documents (next-token loss on everything);
   b. a retrieval curriculum (``--curriculum-steps``, 800): passkey / key-value examples, mostly
      short, with the loss on the whole example, mixed with pretraining text. Phase 1a alone
      does not teach this 1M-parameter model to copy from its context (its retrieval accuracy
      is 0); see ``retrieval_curriculum``;
2. *tiny*: the base (as stored, bf16) fine-tuned on the QA pairs of the 100 benchmark authors
   with ``splice.facts.finetune_on_facts`` — the same function the unlearning benchmark uses to
   make retain-only models (with replay of world facts and retrieval, see FactsFinetune).

It writes ``core/tiny/`` (tiny), ``core/tiny/base/`` and ``core/tiny/build.json`` (the recipe and
the accuracies measured on the stored checkpoints).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from splice.data import synthetic
from splice.data.examples import encode_examples
from splice.data.packing import pack
from splice.data.retrieval import kv_lookup, passkey
from splice.data.tokenizer_training import train_bpe
from splice.facts import FactsFinetune, finetune_on_facts
from splice.kinds.unlearner import Example
from splice.model import Decoder, DecoderConfig, LanguageModel, load, save_checkpoint
from splice.probes import facts_accuracy, retrieval_accuracy
from splice.train import TrainConfig, train


def log_every(n: int):
    return lambda s, loss: print(f"step {s} loss {loss:.4f}", flush=True) if s % n == 0 else None


def pretrain(steps: int, seq_len: int, epochs_of_data: int) -> tuple[LanguageModel, dict]:
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
    for e in range(epochs_of_data):
        data += pack(synthetic.documents("train", seed=e), tokenizer, seq_len)
    tc = TrainConfig(steps=steps, batch_size=4, lr=2e-3, weight_decay=0.01, warmup=0.03, schedule="cosine",
                     min_lr_ratio=0.05, seed=0)
    res = train(model, data, tc, on_step=log_every(50), description="tiny base")
    return LanguageModel(model, tokenizer, "tiny-base"), {"config": tc.model_dump(), "seq_len": seq_len,
                                                          "windows": len(data),
                                                          "final_loss": sum(res.losses[-20:]) / 20}


def retrieval_curriculum(lm: LanguageModel, steps: int) -> dict:
    """Phase 1b: teach the base to copy from its context.

    Passkey and key-value examples with the next-token loss on the *whole* example (the needle
    states its key twice, so every example holds two copies to learn from, not only the answer),
    mostly short (so the copy is found before it must be found far away) with a tail out to 30
    filler sentences / 40 records, mixed 3:1 with windows of the pretraining text so the base keeps
    its language model. An answer-only loss on long examples (600 steps) taught nothing; this
    curriculum reached 23% passkey accuracy at 2 filler sentences by step 300 in a trial run.
    """
    rng = random.Random(77)
    examples = []
    for i in range(12000):
        band = rng.random()
        hi = 6 if band < 0.5 else 15 if band < 0.8 else 30
        ex = passkey(rng, rng.randint(0, hi)) if i % 2 else kv_lookup(rng, rng.randint(2, 2 + round(1.3 * hi)))
        examples.append(Example(ex.prompt, ex.answer.strip()))
    data = encode_examples(lm, examples, what="curriculum", pad=False)
    for d in data:
        d["labels"] = d["input_ids"].clone()
    text = pack(synthetic.documents("train", seed=100), lm.tokenizer, 256)
    data += text[: len(data) // 3]
    tc = TrainConfig(steps=steps, batch_size=32, lr=2e-3, weight_decay=0.01, warmup=0.05, schedule="cosine",
                     min_lr_ratio=0.1, seed=3)
    res = train(lm.model, data, tc, on_step=log_every(50), description="retrieval curriculum")
    return {"config": tc.model_dump(), "examples": len(examples), "text_windows": len(data) - len(examples),
            "final_loss": sum(res.losses[-20:]) / 20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrain-steps", type=int, default=1000)
    ap.add_argument("--curriculum-steps", type=int, default=800)
    ap.add_argument("--epochs-of-data", type=int, default=6, help="distinct retrieval draws to pack")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--from-base", help="a checkpoint of phase 1a to continue from")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "core" / "tiny"))
    args = ap.parse_args()
    out = Path(args.out)
    torch.manual_seed(0)
    t0 = time.time()
    recipe: dict = {}
    if args.from_base:
        lm = load(args.from_base)
        earlier = Path(args.from_base).parent / "build.json"  # core/tiny/base -> core/tiny/build.json
        recipe["pretrain"] = (json.loads(earlier.read_text())["pretrain"] if earlier.is_file()
                              else {"from": "an earlier run of phase 1a with the defaults above"})
    else:
        print("phase 1a: pretraining the base", flush=True)
        lm, recipe["pretrain"] = pretrain(args.pretrain_steps, args.seq_len, args.epochs_of_data)
    if args.curriculum_steps:
        print("phase 1b: retrieval curriculum", flush=True)
        recipe["curriculum"] = retrieval_curriculum(lm, args.curriculum_steps)
    save_checkpoint(lm.model, lm.tokenizer, out / "base", dtype=torch.bfloat16)

    print("phase 2: fine-tuning on the benchmark authors", flush=True)
    tuned = load(str(out / "base"))
    spec = FactsFinetune()
    res = finetune_on_facts(tuned, [q for a in synthetic.benchmark_authors() for q in a.qa], spec,
                            on_step=log_every(50))
    save_checkpoint(tuned.model, tuned.tokenizer, out, dtype=torch.bfloat16)
    recipe["finetune"] = {**spec.model_dump(), "final_loss": sum(res.losses[-20:]) / 20}

    tiny, base = load(str(out)), load(str(out / "base"))
    recipe.update({
        "minutes": round((time.time() - t0) / 60, 1), "parameters": sum(p.numel() for p in tiny.model.parameters()),
        "stored_dtype": "bfloat16",
        "tiny": {"facts_accuracy": facts_accuracy(tiny), "retrieval_accuracy": retrieval_accuracy(tiny)},
        "tiny-base": {"facts_accuracy": facts_accuracy(base), "retrieval_accuracy": retrieval_accuracy(base)},
    })
    (out / "build.json").write_text(json.dumps(recipe, indent=2))
    print(json.dumps({k: recipe[k] for k in ("tiny", "tiny-base", "minutes")}, indent=2))


if __name__ == "__main__":
    main()
