"""Configs of ``squeezed`` and of the recency baseline, with the paper's defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator
from splice import MethodConfig

ClusterCount = StrictInt | StrictFloat


def _check_count(value: float, field: str) -> float:
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{field}: an integer count must be >= 1 (got {value})")
    elif not 0 < value <= 1:
        raise ValueError(f"{field}: a fraction of the keys must lie in (0, 1]; give an integer for a count "
                         f"(got {value})")
    return value


def resolve_count(value: float, keys: int) -> int:
    """Clusters for ``keys`` clustered keys: an int is a count, a float a fraction (at least 1)."""
    return value if isinstance(value, int) else max(1, int(value * keys))


class SqueezedConfig(MethodConfig):
    budget: float = Field(0.3, gt=0, le=1, description=(
        "KV budget: target fraction of the fixed context's keys each query attends to (the observation "
        "window included); 1.0 keeps every cluster, i.e. exact dense attention. Paper: 70% sparsity (0.3) "
        "is its 3x budget cut without accuracy loss"))
    clusters: ClusterCount = Field(0.05, description=(
        "clusters per KV head at the (fine) level: a fraction of the clustered keys (paper: 5%) or an "
        "integer count"))
    hierarchical: bool = Field(False, description="two-level lookup: coarse centroids first, then only the "
                                                  "fine centroids under the coarse clusters that passed")
    coarse_clusters: ClusterCount = Field(0.01, description=(
        "clusters per KV head at the coarse level (hierarchical): a fraction of the clustered keys or a count; "
        "fewer than the fine level"))
    coarse_factor: float = Field(3.0, ge=1, description=(
        "the coarse level keeps this many times the budget's share of keys (the released code pairs a coarse "
        "keep of 30% with a fine keep of 10%)"))
    observation_window: int = Field(100, ge=1, description=(
        "the fixed context's last tokens: never clustered, always attended, and their queries calibrate the "
        "threshold (paper: 100). Capped at 1/16 of the context on short contexts"))
    selection: Literal["shared", "per_query"] = Field("shared", description=(
        "shared: the new tokens of one forward share one set of keys (their scores averaged, as the paper's "
        "prefill kernel); per_query: every query token selects its own keys (what decoding does)"))
    calibration: Literal["context", "model"] = Field("context", description=(
        "context: calibrate the threshold on each fixed context's observation window to hit the budget (the "
        "paper); model: one absolute threshold calibrated by calibrate() and saved with the model, so the "
        "fraction of keys kept falls as contexts grow"))
    kmeans_iters: int = Field(300, ge=1, description="at most this many Lloyd iterations (paper: 300)")
    seed: int = Field(0, description="k-means++ seed")
    no_prefix: Literal["dense", "error"] = Field("dense", description=(
        "a forward without a frozen fixed context: dense attention (plain forwards, perplexity), or an error"))

    @field_validator("clusters", "coarse_clusters")
    @classmethod
    def _counts(cls, value: float, info) -> float:
        return _check_count(value, info.field_name)

    @model_validator(mode="after")
    def _levels(self) -> SqueezedConfig:
        if type(self.clusters) is type(self.coarse_clusters) and self.coarse_clusters >= self.clusters:
            raise ValueError(f"coarse_clusters ({self.coarse_clusters}) must be fewer than clusters "
                             f"({self.clusters})")
        return self


class RecencyConfig(MethodConfig):
    budget: float = Field(0.3, gt=0, le=1, description=(
        "fraction of the fixed context's keys kept: the most recent ones (1.0: exact dense attention)"))
