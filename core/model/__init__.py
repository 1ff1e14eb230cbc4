"""The reference decoder, its checkpoints, tokenizer and generation."""

from .cache import KVCache
from .config import DecoderConfig
from .context import AttnContext, dense_attention, repeat_kv
from .decoder import SDPA, Attention, Block, Decoder, DecoderOutput, MLP, RMSNorm
from .generate import generate
from .lm import LanguageModel, sequence_nll
from .loading import load_decoder, load_tokenizer, resolve_source, save_checkpoint
from .tokenizer import Tokenizer


def load(source: str = "tiny", dtype=None, device: str = "cpu") -> LanguageModel:
    """Load a checkpoint (``tiny``, a folder or a hub id) with its tokenizer."""
    return LanguageModel(load_decoder(source, dtype=dtype, device=device), load_tokenizer(source), str(source))


__all__ = [
    "AttnContext", "Attention", "Block", "Decoder", "DecoderConfig", "DecoderOutput", "KVCache",
    "LanguageModel", "MLP", "RMSNorm", "SDPA", "Tokenizer", "dense_attention", "generate", "load",
    "load_decoder", "load_tokenizer", "repeat_kv", "resolve_source", "save_checkpoint", "sequence_nll",
]
