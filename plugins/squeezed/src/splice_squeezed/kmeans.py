"""Batched k-means over the keys of every (batch, KV head) at once, as the paper clusters them.

The paper (and its code) clusters each head's keys by cosine similarity: k-means with k-means++
initialisation on L2-normalised keys (at most 300 Lloyd iterations), then represents every
cluster by the mean of its *unnormalised* keys, the vector queries are compared with online.
The hierarchical lookup clusters the fine centroids once more into coarse clusters (again on
normalised vectors; a coarse centroid is the plain mean of its fine centroids, as in the code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class KMeansResult:
    labels: torch.Tensor  # N×P long, cluster of every point
    sizes: torch.Tensor  # N×K float, points per cluster
    iterations: int


def _sq_dist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """N×P×K squared Euclidean distances (clamped at 0)."""
    d = (x * x).sum(-1, keepdim=True) - 2 * torch.matmul(x, c.transpose(-1, -2)) + (c * c).sum(-1)[:, None, :]
    return d.clamp_min_(0)


def kmeans_pp_init(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii): each next centre drawn with probability ∝ D²."""
    n, p, _ = x.shape
    rows = torch.arange(n, device=x.device)
    first = torch.randint(0, p, (n,), generator=gen).to(x.device)
    centres = [x[rows, first]]
    d2 = ((x - centres[0][:, None]) ** 2).sum(-1)
    for _ in range(1, k):
        w = d2.cpu().double()
        w = torch.where(w.sum(-1, keepdim=True) > 0, w, torch.ones_like(w))  # all points equal: any
        nxt = torch.multinomial(w, 1, generator=gen)[:, 0].to(x.device)
        c = x[rows, nxt]
        centres.append(c)
        d2 = torch.minimum(d2, ((x - c[:, None]) ** 2).sum(-1))
    return torch.stack(centres, dim=1)


def kmeans(x: torch.Tensor, k: int, iters: int = 300, seed: int = 0, tol: float = 1e-4) -> KMeansResult:
    """Lloyd's k-means of N independent point sets x (N×P×D) into k clusters each.

    Empty clusters are re-seeded at the point farthest from its centre (as scikit-learn does), so
    every cluster ends with at least one point when P >= k. Stops when the assignment no longer
    changes or the centres move less than ``tol`` (relative to the data's variance), at most
    ``iters`` rounds. Deterministic for a given ``seed``.
    """
    n, p, _ = x.shape
    if not 1 <= k <= p:
        raise ValueError(f"k-means: {k} clusters for {p} points")
    x = x.float()
    gen = torch.Generator().manual_seed(seed)
    centres = kmeans_pp_init(x, k, gen)
    tol_abs = tol * float(x.var(dim=1).mean()) if p > 1 else 0.0
    labels = torch.full((n, p), -1, dtype=torch.long, device=x.device)
    it = 0
    for it in range(1, iters + 1):
        dist = _sq_dist(x, centres)
        new = dist.argmin(-1)
        sums = torch.zeros_like(centres).scatter_add_(1, new[..., None].expand_as(x), x)
        counts = torch.zeros(n, k, device=x.device).scatter_add_(1, new, torch.ones_like(new, dtype=torch.float))
        moved = torch.where(counts[..., None] > 0, sums / counts.clamp_min(1)[..., None], centres)
        empty = counts == 0
        if bool(empty.any()):  # re-seed each empty cluster at the currently worst-served point
            best = dist.gather(-1, new[..., None])[..., 0]
            for i, j in empty.nonzero().tolist():
                far = int(best[i].argmax())
                moved[i, j] = x[i, far]
                best[i, far] = -1.0
        shift = float(((moved - centres) ** 2).sum(-1).max())
        centres = moved
        converged = bool((new == labels).all()) and not bool(empty.any())
        labels = new
        if converged or shift <= tol_abs:
            break
    labels = _sq_dist(x, centres).argmin(-1)  # the final assignment to the final centres
    sizes = torch.zeros(n, k, device=x.device).scatter_add_(1, labels, torch.ones_like(labels, dtype=torch.float))
    return KMeansResult(labels, sizes, it)


def cluster_means(points: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """N×K×D mean of the points of each cluster (zeros for an empty one, as the paper's code)."""
    n, _, d = points.shape
    pts = points.float()
    sums = torch.zeros(n, k, d, device=pts.device).scatter_add_(1, labels[..., None].expand(-1, -1, d), pts)
    counts = torch.zeros(n, k, device=pts.device).scatter_add_(1, labels, torch.ones_like(labels, dtype=torch.float))
    return sums / counts.clamp_min(1)[..., None]


def cosine_kmeans(keys: torch.Tensor, k: int, iters: int = 300, seed: int = 0) -> tuple[torch.Tensor, KMeansResult]:
    """k-means on L2-normalised rows of ``keys`` (N×P×D); returns (centroids of the raw rows N×K×D, result)."""
    res = kmeans(F.normalize(keys.float(), dim=-1), k, iters=iters, seed=seed)
    return cluster_means(keys, res.labels, k), res
