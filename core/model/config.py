"""Decoder configuration, read from and written to Hugging Face ``config.json`` files."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from ..errors import ConfigError

# model_type -> the defaults that distinguish the family in our decoder.
FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {},
    "mistral": {},
    "qwen2": {"attention_bias": True},
}


class DecoderConfig(BaseModel):
    """The Llama-family decoder: RMSNorm, RoPE, GQA, (gated) MLP, tied or untied embeddings.

    Field names follow transformers' so a ``config.json`` maps one to one. ``mlp_gated`` is
    splice's own: False gives the ungated MLP ``down(act(up(x)))`` used when training
    architectures from scratch with ungated activations.
    """

    model_config = ConfigDict(extra="ignore")

    model_type: str = "llama"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    hidden_act: str = "silu"
    mlp_gated: bool = True
    sliding_window: int | None = None
    use_sliding_window: bool | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    torch_dtype: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            mt = data.get("model_type", "llama")
            if mt not in FAMILIES:
                raise ValueError(
                    f"model_type {mt!r} is not a Llama-family decoder the core supports "
                    f"(supported: {', '.join(FAMILIES)}); a model-provider plugin can add it"
                )
            data = {**FAMILIES[mt], **data}
            rp = data.pop("rope_parameters", None)  # transformers >= 5 keeps theta and scaling here
            if isinstance(rp, dict):
                data.setdefault("rope_theta", rp.get("rope_theta", 10000.0))
                if rp.get("rope_type", "default") != "default":
                    data.setdefault("rope_scaling", rp)
            if mt == "qwen2" and not data.get("use_sliding_window"):
                data["sliding_window"] = None
        return data

    @model_validator(mode="after")
    def _check(self) -> "DecoderConfig":
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError("hidden_size must be divisible by num_attention_heads")
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads (GQA)")
        if self.rope_scaling is not None:
            kind = self.rope_scaling.get("rope_type", self.rope_scaling.get("type", "default"))
            if kind not in ("default", "linear", "llama3"):
                raise ValueError(f"rope_scaling type {kind!r} is not supported (default, linear, llama3)")
        return self

    @classmethod
    def from_hf(cls, data: dict[str, Any]) -> "DecoderConfig":
        try:
            return cls.model_validate(data)
        except Exception as err:  # pydantic's message is long; keep the first useful line
            raise ConfigError(f"config.json: {err}") from None

    @property
    def n_kv_groups(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads  # type: ignore[operator]

    @property
    def eos_ids(self) -> list[int]:
        if self.eos_token_id is None:
            return []
        return list(self.eos_token_id) if isinstance(self.eos_token_id, list) else [self.eos_token_id]

    def to_hf(self) -> dict[str, Any]:
        """A config.json transformers can read (our extension fields are kept; it ignores them)."""
        out = self.model_dump(exclude_none=True)
        arch = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}
        out["architectures"] = [arch[self.model_type]]
        return out
