"""k-means as the paper runs it: planted clusters recovered, raw-key centroids, no empty clusters."""

from __future__ import annotations

import torch
from splice_squeezed.kmeans import cosine_kmeans, kmeans


def planted(n_per: int = 40, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    dirs = torch.nn.functional.normalize(torch.randn(3, d, generator=g), dim=-1) * 4
    truth = torch.arange(3).repeat_interleave(n_per)
    pts = dirs[truth] + 0.3 * torch.randn(3 * n_per, d, generator=g)
    perm = torch.randperm(3 * n_per, generator=g)
    return pts[perm], truth[perm]


def test_recovers_planted_clusters() -> None:
    pts, truth = planted()
    res = kmeans(torch.nn.functional.normalize(pts, dim=-1)[None], 3, seed=0)
    labels = res.labels[0]
    for c in range(3):  # each true cluster is exactly one found cluster
        assert labels[truth == c].unique().numel() == 1
    assert labels.unique().numel() == 3
    assert res.sizes[0].sort().values.tolist() == [40.0, 40.0, 40.0]


def test_cosine_kmeans_centroids_are_means_of_raw_keys() -> None:
    pts, _ = planted(seed=1)
    scaled = pts * torch.rand(pts.shape[0], 1) * 5  # cosine clustering ignores the norms ...
    cents, res = cosine_kmeans(scaled[None], 3, seed=0)
    for c in range(3):  # ... but the centroid is the mean of the raw (unnormalised) keys
        assert torch.allclose(cents[0, c], scaled[res.labels[0] == c].mean(0), atol=1e-5)


def test_deterministic_and_batched() -> None:
    a, ta = planted(seed=2)
    b, tb = planted(seed=3)
    both = kmeans(torch.nn.functional.normalize(torch.stack([a, b]), dim=-1), 3, seed=7)
    again = kmeans(torch.nn.functional.normalize(torch.stack([a, b]), dim=-1), 3, seed=7)
    assert torch.equal(both.labels, again.labels)
    for labels, truth in zip(both.labels, (ta, tb)):  # each set is clustered on its own
        assert all(labels[truth == c].unique().numel() == 1 for c in range(3))


def test_no_empty_cluster_with_duplicate_points() -> None:
    pts = torch.cat([torch.zeros(30, 4) + torch.tensor([1.0, 0, 0, 0]), torch.randn(10, 4, generator=torch.Generator().manual_seed(0))])
    res = kmeans(pts[None], 8, seed=0)
    assert bool((res.sizes > 0).all())
    assert int(res.sizes.sum()) == 40
