"""NPO: the paper's exact limit cases, boundedness vs gradient ascent, variants, and input errors."""

from __future__ import annotations

import copy

import pytest
import torch
from splice.builtins.unlearners import GradientAscent
from splice.data.authors import generate_authors, qa_prompt
from splice.data.examples import encode_examples
from splice.data.tokenizer_training import train_bpe
from splice.errors import ConfigError, DataError
from splice.kinds.unlearner import Example, UnlearnTask
from splice.model import Decoder, DecoderConfig, LanguageModel
from splice.unlearning import answer_nll
from splice_npo import NPO, NPOConfig, kl_to_reference, npo_loss
from splice_npo.method import objective


@pytest.fixture(scope="module")
def small():
    """A small random Llama-family model with a BPE tokenizer trained on some authors' QA."""
    torch.manual_seed(0)
    authors = generate_authors(6, seed=3)
    texts = [qa_prompt(q.question) + " " + q.answer for a in authors for q in a.qa]
    tok = train_bpe(texts, 400)
    cfg = DecoderConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=96,
                        tie_word_embeddings=True, bos_token_id=tok.bos_id, eos_token_id=tok.eos_id,
                        pad_token_id=tok.pad_id)
    lm = LanguageModel(Decoder(cfg), tok, "small")
    forget = [Example(qa_prompt(q.question), q.answer) for q in authors[-1].qa[:8]]
    retain = [Example(qa_prompt(q.question), q.answer) for a in authors[:-1] for q in a.qa[:4]]
    return lm, forget, retain


def batch(lm, forget, retain):
    f = encode_examples(lm, forget)
    r = encode_examples(lm, retain[: len(forget)])
    return {"forget_ids": torch.stack([d["input_ids"] for d in f]), "forget_labels": torch.stack([d["labels"] for d in f]),
            "retain_ids": torch.stack([d["input_ids"] for d in r]), "retain_labels": torch.stack([d["labels"] for d in r])}


def grads(model, loss) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def ga_loss(model, b):
    """Gradient ascent on sequence log-likelihoods, the paper's L_GA = E[log π_θ(y|x)]."""
    return -answer_nll(model, b["forget_ids"], b["forget_labels"]).mean()


@pytest.mark.parametrize("beta", [0.1, 1.0, 5.0])
def test_gradient_equals_gradient_ascent_at_reference(small, beta):
    lm, forget, retain = small
    model = copy.deepcopy(lm.model)
    ref = copy.deepcopy(lm.model)
    b = batch(lm, forget, retain)
    loss, logs = objective(model, ref, b, NPOConfig(beta=beta))
    assert float(loss.detach()) == pytest.approx(2 / beta * torch.log(torch.tensor(2.0)).item(), rel=1e-5)  # r = 1
    assert float(logs["weight"]) == pytest.approx(1.0)
    g_npo, g_ga = grads(model, loss), grads(model, ga_loss(model, b))
    assert g_ga.norm() > 0
    torch.testing.assert_close(g_npo, g_ga, rtol=1e-5, atol=1e-7)


def test_small_beta_is_gradient_ascent_away_from_reference(small):
    lm, forget, retain = small
    model, ref = copy.deepcopy(lm.model), copy.deepcopy(lm.model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    b = batch(lm, forget, retain)
    g_npo = grads(model, objective(model, ref, b, NPOConfig(beta=1e-5))[0])
    g_ga = grads(model, ga_loss(model, b))
    # at β=0.1 the same point gives a visibly different (re-weighted) gradient
    g_01 = grads(model, objective(model, ref, b, NPOConfig(beta=0.1))[0])
    assert (g_npo - g_ga).norm() / g_ga.norm() < 1e-3
    assert (g_01 - g_ga).norm() / g_ga.norm() > 1e-2


def test_loss_formula_and_lower_bound():
    x = torch.linspace(-200, 200, 101, dtype=torch.float64)
    for beta in (0.1, 1.0):
        closed = 2 / beta * torch.log1p(torch.exp(beta * x.clamp(max=50)))  # 50: avoid overflow in the check
        keep = x <= 50
        vals = torch.stack([npo_loss(v[None], beta) for v in x])
        torch.testing.assert_close(vals[keep], closed[keep])
        assert (vals >= 0).all()
        assert float(npo_loss(torch.tensor([-1e4]), beta)) == 0.0  # infimum: forgetting completely costs nothing


def test_npo_bounded_while_ga_diverges(small):
    lm, forget, retain = small
    runs = {}
    for name, method in (("ga", GradientAscent({"lr": 3e-2, "epochs": 20, "batch_size": 8})),
                         ("npo", NPO({"lr": 3e-2, "epochs": 20, "batch_size": 8}))):
        work = lm.clone()
        task = UnlearnTask(forget=forget, retain=retain, reference=lm.clone())
        method.unlearn(work, task)
        runs[name] = method.history.losses
    ga, npo = runs["ga"], runs["npo"]
    assert ga[-1] < ga[0] - 20  # GA's loss (−NLL per token) keeps falling without bound
    assert min(npo) >= 0  # NPO's never goes below its infimum 0
    assert npo[-1] < npo[0]


def test_kl_variant_is_zero_at_reference_and_matches_definition(small):
    lm, forget, retain = small
    model, ref = copy.deepcopy(lm.model), copy.deepcopy(lm.model)
    b = batch(lm, forget, retain)
    kl0 = kl_to_reference(model, ref, b["retain_ids"], b["retain_labels"]).detach()
    assert float(kl0) == pytest.approx(0, abs=1e-6)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    got = kl_to_reference(model, ref, b["retain_ids"], b["retain_labels"])
    # independent reference: per sequence, KL over its real tokens only, with torch's kl_div
    total, count = 0.0, 0
    for i in range(len(retain[:len(forget)])):
        n = int((b["retain_labels"][i] != -100).nonzero().max()) + 1
        ids = b["retain_ids"][i:i + 1, :n]
        lp = torch.log_softmax(model(ids).logits, -1)[0]
        lr = torch.log_softmax(ref(ids).logits, -1)[0]
        total += float(torch.nn.functional.kl_div(lp, lr, reduction="sum", log_target=True))
        count += n
    assert float(got) == pytest.approx(total / count, rel=1e-4)


@pytest.mark.parametrize("variant,key", [("rt", "retain_nll"), ("kl", "retain_kl")])
def test_variants_add_their_retain_term(small, variant, key):
    lm, forget, retain = small
    method = NPO({"variant": variant, "lr": 1e-2, "epochs": 2, "batch_size": 8})
    task = UnlearnTask(forget=forget, retain=retain, reference=lm.clone())
    method.unlearn(lm.clone(), task)
    assert all(key in log for log in method.history.logs)
    ckpts = task.meta["unlearning"]["checkpoints"]
    assert [c["step"] for c in ckpts] == [1, 2] and all(key in c for c in ckpts)


def test_config_spellings_and_errors():
    assert NPO({"variant": "NPO+RT"}).config.variant == "rt"
    assert NPO({"variant": "+KL"}).config.variant == "kl"
    assert NPO({"variant": "npo"}).config.variant == "plain"
    c = NPO().config
    assert (c.beta, c.epochs, c.batch_size, c.weight_decay) == (0.1, 10, 32, 0.01)
    for bad in ({"variant": "dpo"}, {"beta": 0}, {"lr": -1}, {"colour": 1}):
        with pytest.raises(ConfigError):
            NPO(bad)


def _unchanged(model, before):
    return all(torch.equal(p, q) for p, q in zip(model.parameters(), before.parameters()))


def test_bad_input_is_rejected_before_training(small):
    lm, forget, retain = small
    work = lm.clone()
    snapshot = copy.deepcopy(work.model)
    with pytest.raises(DataError, match="forget set is empty"):
        NPO().unlearn(work, UnlearnTask(forget=[], retain=retain, reference=lm.clone()))
    with pytest.raises(DataError, match="longer than the context"):
        long = [Example(forget[0].prompt, " ".join(["word"] * 200))]
        NPO().unlearn(work, UnlearnTask(forget=forget + long, retain=retain, reference=lm.clone()))
    with pytest.raises(DataError, match="reference"):
        NPO().unlearn(work, UnlearnTask(forget=forget, retain=retain, reference=None))
    other = lm.clone()
    other_tok = train_bpe(["completely different text " * 5, "another corpus entirely"], 300)
    other.tokenizer = other_tok
    with pytest.raises(DataError, match="vocabulary|tokenizer"):
        NPO().unlearn(work, UnlearnTask(forget=forget, retain=retain, reference=other))
    same_size = lm.clone()
    same_size.tokenizer = train_bpe([qa_prompt(q.question) + " " + q.answer for a in generate_authors(6, seed=99)
                                     for q in a.qa], lm.tokenizer.vocab_size)
    assert same_size.tokenizer.vocab_size == lm.tokenizer.vocab_size
    with pytest.raises(DataError, match="tokenizer differs"):
        NPO().unlearn(work, UnlearnTask(forget=forget, retain=retain, reference=same_size))
    with pytest.raises(DataError, match="retain"):
        NPO({"variant": "rt"}).unlearn(work, UnlearnTask(forget=forget, retain=[], reference=lm.clone()))
    assert _unchanged(work.model, snapshot)
