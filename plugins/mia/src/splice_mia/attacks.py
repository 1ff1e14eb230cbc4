"""Reference-free membership-inference scores for causal LMs, and their ROC AUC.

Every score is oriented the same way: **higher means "more likely a member"** (seen in training).

- ``loss``    LOSS attack (Yeom et al., 2018): minus the mean token NLL of the text.
- ``zlib``    Carlini et al. (2021): minus the mean token NLL divided by the zlib-compressed length of
              the text in bytes (so texts that are merely simple do not look memorised).
- ``mink``    Min-K% Prob (Shi et al., 2023): mean of the k% lowest token log-probabilities.
- ``minkpp``  Min-K%++ (Zhang et al., 2024): each token's log-probability standardised by the mean and
              standard deviation of the log-probability under the model's own next-token distribution,
              ``(log p(x_t) - E_z[log p(z)]) / sd_z[log p(z)]``; mean of the k% lowest.

Token statistics are taken over the whole text (all tokens after the first, as the papers' code
does), from one forward pass per batch.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from splice.errors import ConfigError, DataError
from splice.progress import progress

ATTACKS = ("loss", "zlib", "mink", "minkpp")


@dataclass
class TokenStats:
    """Per-token statistics of one text (length = tokens - 1)."""

    text: str
    logprob: np.ndarray  # log p(x_t | x_<t)
    mu: np.ndarray  # E_{z~p(.|x_<t)} log p(z | x_<t)
    sigma: np.ndarray  # sd of log p(z | x_<t) under the same distribution


@torch.no_grad()
def token_stats(lm, texts: list[str], batch_size: int = 16, description: str = "mia") -> list[TokenStats]:
    """One forward pass per batch; mean/sd of the log-probabilities over the vocabulary for Min-K%++."""
    if not texts:
        raise DataError("mia: no texts to score")
    seqs = [lm.encode(t) for t in texts]
    limit = lm.config.max_position_embeddings
    for s, t in zip(seqs, texts):
        if len(s) < 2:
            raise DataError(f"mia: a text has fewer than two tokens: {t!r}")
        if len(s) > limit:
            raise DataError(f"mia: a text is {len(s)} tokens, longer than the context ({limit}): {t[:60]!r}")
    out: list[TokenStats] = []
    model = lm.model
    with progress(description, len(texts)) as bar:
        for i in range(0, len(seqs), batch_size):
            chunk = seqs[i:i + batch_size]
            ids, mask = lm.pad_batch(chunk)
            logits = model(ids, attention_mask=mask).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1)
            tok = logp.gather(-1, ids[:, 1:, None])[..., 0]
            p = logp.exp()
            mu = (p * logp).sum(-1)
            var = (p * logp.square()).sum(-1) - mu.square()
            sigma = var.clamp(min=0).sqrt()
            for j, s in enumerate(chunk):
                n = len(s) - 1
                out.append(TokenStats(texts[i + j], tok[j, :n].cpu().double().numpy(),
                                      mu[j, :n].cpu().double().numpy(), sigma[j, :n].cpu().double().numpy()))
            bar.advance(len(chunk))
    return out


def _lowest_mean(values: np.ndarray, k: float) -> float:
    n = max(1, int(len(values) * k))
    return float(np.sort(values)[:n].mean())


def score(stats: TokenStats, attack: str, k: float = 0.2) -> float:
    """The attack's membership score of one text (higher = more likely a member)."""
    if attack == "loss":
        return float(stats.logprob.mean())
    if attack == "zlib":
        return float(stats.logprob.mean()) / len(zlib.compress(stats.text.encode("utf-8")))
    if attack == "mink":
        return _lowest_mean(stats.logprob, k)
    if attack == "minkpp":
        z = (stats.logprob - stats.mu) / np.maximum(stats.sigma, 1e-12)
        return _lowest_mean(z, k)
    raise ConfigError(f"mia: attack: unknown {attack!r} (allowed: {', '.join(ATTACKS)})")


def scores(stats: list[TokenStats], attack: str, k: float = 0.2) -> np.ndarray:
    return np.array([score(s, attack, k) for s in stats], dtype=np.float64)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve of "score > threshold means positive": P(s+ > s-) + P(s+ = s-)/2.

    Computed from ranks (the Mann-Whitney U statistic), equal to sklearn's ``roc_auc_score``.
    """
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if len(positive) == 0 or len(negative) == 0:
        raise DataError("mia: the AUC needs at least one member and one non-member")
    if not (np.isfinite(positive).all() and np.isfinite(negative).all()):
        raise DataError("mia: non-finite attack scores (the model produced NaN/inf log-probabilities)")
    ranks = rankdata(np.concatenate([positive, negative]))
    n_p, n_n = len(positive), len(negative)
    return float((ranks[:n_p].sum() - n_p * (n_p + 1) / 2) / (n_p * n_n))


def attack_aucs(member: list[TokenStats], nonmember: list[TokenStats], attacks=ATTACKS,
                k: float = 0.2) -> dict[str, float]:
    """AUC of each attack at separating members (positives) from non-members."""
    return {a: roc_auc(scores(member, a, k), scores(nonmember, a, k)) for a in attacks}
