"""The offline side (clustering a fixed context, calibrating thresholds) and the online lookup.

Offline, per layer (``cluster_prefix``): the fixed context's last W keys form the observation
window (always attended); the other keys are clustered per KV head (fine level, and for the
hierarchical lookup a coarse level over the fine centroids). Thresholds (``calibrate``): the
window's own queries are scored against the centroids exactly as queries will be online, and one
threshold for all layers and heads is set at the quantile that keeps the budget's share of the
clustered keys (the paper's global threshold). Online (``select``): score the centroids against
the new queries, keep the clusters above the threshold, expand them to their keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from splice.errors import DataError

from .config import SqueezedConfig, resolve_count
from .kernels import centroid_scores
from .kmeans import cosine_kmeans, kmeans

STATE_KEY = "squeezed"


@dataclass
class Level:
    """One level of centroids for every (batch, KV head)."""

    centroids: torch.Tensor  # B×Hkv×K×D float32, mean of the raw keys (fine) / fine centroids (coarse)
    sizes: torch.Tensor  # B×Hkv×K float32, keys per cluster
    labels: torch.Tensor  # B×Hkv×Pc long, cluster of every clustered key

    @property
    def count(self) -> int:
        return int(self.centroids.shape[2])


@dataclass
class PrefixClusters:
    """What ``on_prefix`` keeps for one layer of a frozen fixed context."""

    length: int  # P, keys of the fixed context
    window: int  # W, its last keys: not clustered, always attended
    fine: Level | None  # None when nothing is left to cluster (P == W)
    coarse: Level | None  # hierarchical only
    parent: torch.Tensor | None  # B×Hkv×K long: coarse cluster of each fine cluster
    window_queries: torch.Tensor  # B×Hq×W×D, the window's queries (threshold calibration)
    scale: float
    signature: dict  # the clustering settings, so a module with other settings is refused
    thresholds: dict = field(default_factory=dict)  # memo: calibration settings -> (fine, coarse), each B

    @property
    def clustered(self) -> int:
        return self.length - self.window


def clustering_signature(cfg: SqueezedConfig) -> dict:
    """The settings a clustering depends on (not the budget: one clustering serves every budget)."""
    return {"clusters": cfg.clusters, "observation_window": cfg.observation_window, "kmeans_iters": cfg.kmeans_iters,
            "seed": cfg.seed, "coarse_clusters": cfg.coarse_clusters if cfg.hierarchical else None}


def signature_mismatch(stored: dict, cfg: SqueezedConfig) -> str | None:
    """Why a context clustered with ``stored`` settings cannot serve a module configured as ``cfg``."""
    want = clustering_signature(cfg)
    for key, value in want.items():
        if key == "coarse_clusters" and value is None:
            continue  # a one-level lookup can use the fine level of a two-level clustering
        if stored[key] != value:
            return f"{key}={stored[key]!r} (this layer: {value!r})"
    return None


def effective_window(cfg: SqueezedConfig, length: int) -> int:
    """The observation window on a context of ``length`` keys: the paper's window (100 tokens, about 1%
    of its contexts) capped at 1/16 of the context on short ones, at least 1."""
    return max(1, min(cfg.observation_window, length // 16, length))


def cluster_prefix(keys: torch.Tensor, window_queries: torch.Tensor | None, cfg: SqueezedConfig,
                   scale: float) -> PrefixClusters:
    """Cluster one layer's fixed-context keys (B×Hkv×P×D); ``window_queries`` are the last queries seen."""
    b, hkv, p, d = keys.shape
    w = effective_window(cfg, p)
    if window_queries is None or window_queries.shape[2] < w:
        got = 0 if window_queries is None else window_queries.shape[2]
        raise DataError(f"squeezed: the fixed context's last {w} queries (observation window) were not seen "
                        f"while it was prefilled ({got} were); prefill it with Decoder.prefill() after "
                        "installing squeezed")
    pc = p - w
    fine = coarse = parent = None
    if pc > 0:
        k_fine = resolve_count(cfg.clusters, pc)
        if k_fine > pc:
            raise DataError(f"squeezed: clusters={cfg.clusters} exceeds the {pc} keys of the fixed context outside "
                            f"the observation window ({p} keys, window {w}); use fewer clusters or a fraction")
        flat = keys[:, :, :pc].reshape(b * hkv, pc, d)
        cents, res = cosine_kmeans(flat, k_fine, iters=cfg.kmeans_iters, seed=cfg.seed)
        fine = Level(cents.view(b, hkv, k_fine, d), res.sizes.view(b, hkv, k_fine), res.labels.view(b, hkv, pc))
        if cfg.hierarchical:
            k_coarse = resolve_count(cfg.coarse_clusters, pc)
            if k_coarse >= k_fine:
                raise DataError(f"squeezed: coarse_clusters={cfg.coarse_clusters} gives {k_coarse} coarse clusters, "
                                f"not fewer than the {k_fine} fine ones on this {p}-key context")
            normed = torch.nn.functional.normalize(cents, dim=-1)
            top = kmeans(normed, k_coarse, iters=cfg.kmeans_iters, seed=cfg.seed)
            par = top.labels  # (B·Hkv)×K_fine
            sums = torch.zeros(b * hkv, k_coarse, d).scatter_add_(1, par[..., None].expand(-1, -1, d), cents)
            n_members = torch.zeros(b * hkv, k_coarse).scatter_add_(1, par, torch.ones_like(par, dtype=torch.float))
            c_cents = sums / n_members.clamp_min(1)[..., None]  # plain mean of the fine centroids (paper)
            c_sizes = torch.zeros(b * hkv, k_coarse).scatter_add_(1, par, res.sizes)  # keys under each
            key_parent = par.gather(1, res.labels)
            coarse = Level(c_cents.view(b, hkv, k_coarse, d), c_sizes.view(b, hkv, k_coarse),
                           key_parent.view(b, hkv, pc))
            parent = par.view(b, hkv, k_fine)
    return PrefixClusters(length=p, window=w, fine=fine, coarse=coarse, parent=parent,
                          window_queries=window_queries[:, :, -w:].detach().float().clone(), scale=scale,
                          signature=clustering_signature(cfg))


# -- scoring and selection -----------------------------------------------------------------------------

def _per_query_head(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.repeat_interleave(heads // x.shape[1], dim=1)


def level_scores(q: torch.Tensor, level: Level, group_size: int, scale: float,
                 allowed: torch.Tensor | None = None) -> torch.Tensor:
    """B×H×G×K mean size-weighted softmax estimate of each cluster for each query group."""
    b, h, t, _ = q.shape
    g = t // group_size
    log_sizes = _per_query_head(level.sizes, h).log()[:, :, None, :].expand(b, h, g, level.count)
    if allowed is not None:
        log_sizes = log_sizes.masked_fill(~allowed, float("-inf"))
    return centroid_scores(q, level.centroids.to(q.dtype), log_sizes.contiguous(), group_size=group_size,
                           scale=scale)


@dataclass
class Selection:
    keys: torch.Tensor  # B×H×G×P bool, fixed-context keys attended by each query group
    comparisons: torch.Tensor  # B×H×G centroids compared per query (K, or K_coarse + fine visited)


def select(q: torch.Tensor, pc: PrefixClusters, thr_fine: torch.Tensor, thr_coarse: torch.Tensor | None,
           group_size: int, hierarchical: bool) -> Selection:
    """Keys of the fixed context that each group of queries attends to (window keys always)."""
    b, h, t, _ = q.shape
    g = t // group_size
    window = torch.ones(b, h, g, pc.window, dtype=torch.bool, device=q.device)
    if pc.fine is None:
        return Selection(window, torch.zeros(b, h, g))
    fine = pc.fine
    if hierarchical:
        assert pc.coarse is not None and pc.parent is not None
        cs = level_scores(q, pc.coarse, group_size, pc.scale)
        keep_coarse = (cs > thr_coarse.view(b, 1, 1, 1)) & (_per_query_head(pc.coarse.sizes, h)[:, :, None] > 0)
        parent = _per_query_head(pc.parent, h)[:, :, None].expand(b, h, g, fine.count)
        allowed = keep_coarse.gather(-1, parent)
        fs = level_scores(q, fine, group_size, pc.scale, allowed=allowed)
        keep = (fs > thr_fine.view(b, 1, 1, 1)) & allowed
        comparisons = pc.coarse.count + allowed.sum(-1).float()
    else:
        fs = level_scores(q, fine, group_size, pc.scale)
        keep = fs > thr_fine.view(b, 1, 1, 1)
        comparisons = torch.full((b, h, g), float(fine.count))
    keep = keep & (_per_query_head(fine.sizes, h)[:, :, None] > 0)
    labels = _per_query_head(fine.labels, h)[:, :, None].expand(b, h, g, pc.clustered)
    keys = torch.cat([keep.gather(-1, labels), window], dim=-1)
    return Selection(keys, comparisons)


def to_indices(mask: torch.Tensor) -> torch.Tensor:
    """B×H×G×P bool -> B×H×G×n int32 positions of the selected keys (ascending, -1 padded)."""
    p = mask.shape[-1]
    n = max(int(mask.sum(-1).max()) if mask.numel() else 0, 1)
    keyed = torch.where(mask, torch.arange(p, device=mask.device), p)
    idx = keyed.sort(dim=-1).values[..., :n]
    return torch.where(idx == p, -1, idx).to(torch.int32).contiguous()


# -- threshold calibration -----------------------------------------------------------------------------

def weighted_cut(scores: torch.Tensor, weights: torch.Tensor, fraction: float) -> float:
    """Threshold T such that the items with score > T carry ``fraction`` of the total weight (nearest)."""
    if fraction >= 1:
        return float("-inf")
    s = scores.flatten().double()
    w = weights.flatten().double().expand_as(s) if weights.numel() == 1 else weights.flatten().double()
    order = torch.argsort(s, descending=True)
    s, w = s[order], w[order]
    target = fraction * float(w.sum())
    inside = (torch.cumsum(w, 0) - w / 2) <= target
    m = int(inside.sum())  # the highest-scoring items whose weight best matches the target
    return float("-inf") if m >= len(s) else float(s[m])


def clustered_fraction(budget: float, length: int, window: int) -> float:
    """Share of the clustered keys to keep so that window + kept = budget · length."""
    if length == window:
        return 1.0
    return min(1.0, max(0.0, (budget * length - window) / (length - window)))


def _calibration_groups(pc: PrefixClusters, selection: str) -> int:
    return pc.window if selection == "shared" else 1


def calibration_items(states: list[PrefixClusters], level: str, selection: str, batch: int,
                      thr_coarse: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of the window queries for every (layer, head, group, cluster) of context ``batch`` and
    their weights (keys per cluster); with ``thr_coarse``, fine clusters under dropped coarse clusters
    score -inf (their keys count in the total, never in the kept share)."""
    scores, weights = [], []
    for pc in states:
        if pc.fine is None:
            continue
        q = pc.window_queries[batch:batch + 1]
        h = q.shape[1]
        gs = _calibration_groups(pc, selection)
        g = q.shape[2] // gs
        lvl = pc.coarse if level == "coarse" else pc.fine
        assert lvl is not None
        one = Level(lvl.centroids[batch:batch + 1], lvl.sizes[batch:batch + 1], lvl.labels[batch:batch + 1])
        allowed = None
        if level == "fine" and thr_coarse is not None:
            assert pc.coarse is not None and pc.parent is not None
            c = Level(pc.coarse.centroids[batch:batch + 1], pc.coarse.sizes[batch:batch + 1],
                      pc.coarse.labels[batch:batch + 1])
            cs = level_scores(q, c, gs, pc.scale)
            keep_coarse = cs > float(thr_coarse[batch])
            parent = _per_query_head(pc.parent[batch:batch + 1], h)[:, :, None].expand(1, h, g, one.count)
            allowed = keep_coarse.gather(-1, parent)
        s = level_scores(q, one, gs, pc.scale, allowed=allowed)
        if allowed is not None:
            s = s.masked_fill(~allowed, float("-inf"))
        scores.append(s.flatten())
        weights.append(_per_query_head(one.sizes, h)[:, :, None].expand_as(s).flatten())
    if not scores:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat(scores), torch.cat(weights)


def calibrate_thresholds(states: list[PrefixClusters], budget: float, selection: str, hierarchical: bool,
                         coarse_factor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One global threshold per context (B) for the fine level, and for the coarse level."""
    ref = states[0]
    batch = ref.window_queries.shape[0]
    fine_t, coarse_t = torch.full((batch,), float("-inf")), torch.full((batch,), float("-inf"))
    frac = clustered_fraction(budget, ref.length, ref.window)
    if frac >= 1 or ref.fine is None:
        return fine_t, coarse_t
    for bi in range(batch):
        if hierarchical:
            s, w = calibration_items(states, "coarse", selection, bi)
            coarse_t[bi] = weighted_cut(s, w, min(1.0, frac * coarse_factor))
        s, w = calibration_items(states, "fine", selection, bi, coarse_t if hierarchical else None)
        fine_t[bi] = weighted_cut(s, w, frac)
    return fine_t, coarse_t


def pooled_thresholds(runs: list[list[PrefixClusters]], budget: float, selection: str,
                      hierarchical: bool, coarse_factor: float) -> tuple[float, float]:
    """Absolute thresholds pooled over several calibration contexts (``calibration='model'``)."""
    frac = [clustered_fraction(budget, r[0].length, r[0].window) for r in runs]
    if min(frac) >= 1:
        return float("-inf"), float("-inf")
    f = sum(frac) / len(frac)
    coarse = float("-inf")
    if hierarchical:
        parts = [calibration_items(r, "coarse", selection, bi) for r in runs for bi in range(r[0].window_queries.shape[0])]
        coarse = weighted_cut(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
                              min(1.0, f * coarse_factor))
    parts = []
    for r in runs:
        for bi in range(r[0].window_queries.shape[0]):
            tc = torch.full((r[0].window_queries.shape[0],), coarse) if hierarchical else None
            parts.append(calibration_items(r, "fine", selection, bi, tc))
    fine = weighted_cut(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), f)
    return fine, coarse

