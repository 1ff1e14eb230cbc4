"""bench.models: a GGUF written here (llama.cpp's layout) converts to an HF folder splice loads.

The reference is the transformers model the GGUF was written from, not transformers' GGUF
reader: so the test fails if the q/k row permutation llama.cpp applies is not undone, if the
tokenizer is lost, or if tied embeddings / config fields go missing on the way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")

HEADS, KV_HEADS, HIDDEN, LAYERS, FFN = 4, 2, 64, 2, 128


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _vocab() -> tuple[list[str], list[str]]:
    """A byte-level BPE vocabulary: the 256 byte symbols, a few merges, two special tokens."""
    byte = _bytes_to_unicode()
    tokens = ["<|endoftext|>", "<|im_start|>"] + [byte[b] for b in range(256)]
    sp = byte[ord(" ")]
    merges = [f"{sp} t", "h e", f"{sp}t he", "i n", f"{sp} a"]
    tokens += [m.replace(" ", "") for m in merges]
    return tokens, merges


def _permute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """llama.cpp's convert_hf_to_gguf row order for q/k (interleaved rotary halves)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _write_gguf(model, tokens: list[str], merges: list[str], path: Path, tied: bool) -> None:
    cfg = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-test")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(len(tokens))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL] * 2 + [gguf.TokenType.NORMAL] * (len(tokens) - 2))
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(0)
    w.add_add_bos_token(False)
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"].numpy())
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        q = _permute(sd[p + "self_attn.q_proj.weight"], cfg.num_attention_heads)
        k = _permute(sd[p + "self_attn.k_proj.weight"], cfg.num_key_value_heads)
        for name, t in [("attn_norm", sd[p + "input_layernorm.weight"]), ("attn_q", q), ("attn_k", k),
                        ("attn_v", sd[p + "self_attn.v_proj.weight"]), ("attn_output", sd[p + "self_attn.o_proj.weight"]),
                        ("ffn_norm", sd[p + "post_attention_layernorm.weight"]),
                        ("ffn_gate", sd[p + "mlp.gate_proj.weight"]), ("ffn_up", sd[p + "mlp.up_proj.weight"]),
                        ("ffn_down", sd[p + "mlp.down_proj.weight"])]:
            w.add_tensor(f"blk.{i}.{name}.weight", t.contiguous().numpy())
    w.add_tensor("output_norm.weight", sd["model.norm.weight"].numpy())
    if not tied:
        w.add_tensor("output.weight", sd["lm_head.weight"].numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("tied", [True, False])
def test_gguf_to_hf_matches_the_source_model(tmp_path, tied):
    from splice.model import load

    from bench import models

    tokens, merges = _vocab()
    cfg = transformers.LlamaConfig(vocab_size=len(tokens), hidden_size=HIDDEN, intermediate_size=FFN,
                                   num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                   max_position_embeddings=256, tie_word_embeddings=tied, rms_norm_eps=1e-5)
    torch.manual_seed(0)
    src = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # non-trivial norms, so a lost norm weight shows
        for name, p in src.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    gguf_path = tmp_path / "tiny.gguf"
    _write_gguf(src, tokens, merges, gguf_path, tied)
    assert models.gguf_precision(gguf_path) == {"F32": 2 + 9 * LAYERS + (0 if tied else 1)}

    out = models.gguf_to_hf(gguf_path, tmp_path / "hf", check=True)
    info = json.loads((out / "splice_conversion.json").read_text())
    assert info["check"]["max_abs_diff"] < 1e-4  # splice vs transformers' GGUF reader

    lm = load(str(out))
    assert lm.config.tie_word_embeddings == tied
    text = "the thin tan hat in the attic"
    ids = lm.encode(text)
    assert lm.tokenizer.decode(ids) == text
    assert len(ids) < len(text.encode())  # the merges are in use, not just bytes
    x = torch.tensor([ids])
    with torch.no_grad():
        ref = src(x).logits
        got = lm.model(x).logits
    assert (ref - got).abs().max() < 1e-4  # q/k permutation undone, every tensor in place


def test_gguf_to_hf_rejects_a_missing_file(tmp_path):
    from bench import models

    with pytest.raises(FileNotFoundError, match="no such GGUF"):
        models.gguf_to_hf(tmp_path / "absent.gguf", tmp_path / "out")


def test_bf16_load_matches_transformers(tmp_path):
    """The memory benchmark's BF16 row: splice in bf16 computes what transformers does in bf16
    (RoPE frequencies kept in float32 by both)."""
    from splice.model import load_decoder

    cfg = transformers.LlamaConfig(vocab_size=300, hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
                                   num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=512,
                                   rope_theta=10000.0)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    ours = load_decoder(tmp_path, dtype=torch.bfloat16)
    assert ours.rotary.inv_freq.dtype == torch.float32
    x = torch.randint(0, 300, (1, 500), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (hf(x).logits.float() - ours(x).logits).abs().max()
    assert diff < 1e-3
