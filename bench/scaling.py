"""How scoring time grows with context length (512 -> 4096) on SmolLM2-135M, dense and sparse attention.

For each context length L (WikiText-2 test, from the start of the corpus):

* **scoring**: one dense forward over L tokens (batch 1), which is also the prefill of the KV
  cache; the time spent inside the attention modules is measured separately (forward hooks);
* **fixed-context query**: the next 128 tokens scored against the frozen L-token context
  (``Decoder.prefill`` + ``cache.fork()``), for dense attention and for every installed
  fixed-context (sparse) attention method — those that process a frozen prefix offline
  (``on_prefix``), e.g. ``squeezed`` and its ``recency`` baseline — at their default configs.
  Reported: query time (whole model and attention modules), offline prefix time, the fraction of
  the context's keys each method attends to where it reports one, and the query tokens' NLL
  next to dense.

Methods interleave within each length (rotated order, median of ``--repeats``) so contention hits
all alike. Fixed-context methods reuse the dense prefill when their plain forward equals dense
attention (checked on 256 tokens; otherwise they get their own prefill).

    .venv/bin/python -m bench.scaling           # ~8 min on 2 shared cores
    .venv/bin/python -m bench.scaling --quick
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from bench import common, models

TITLE = "Scale: scoring time vs context length (512 → 4096), dense and sparse attention, SmolLM2-135M"
ESTIMATE_MIN = 5  # ~3 CPU-minutes, about the wall time on an idle machine (86 min on the shared one)
ORDER = 30
NAME = "scaling"
QUERY = 128


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2", help="smollm2 (default), a .gguf file, a checkpoint folder or hub id")
    p.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    p.add_argument("--repeats", type=int, default=3, help="repeats of each query measurement")
    p.add_argument("--methods", nargs="*", help="attention methods (default: every installed fixed-context method)")


class AttnTimer:
    """Seconds spent inside the attention modules (``blocks[i].attn.core``) during a forward."""

    def __init__(self, model) -> None:
        self.total = 0.0
        self._t0: dict[int, float] = {}
        self._handles = []
        for blk in model.blocks:
            core = blk.attn.core
            self._handles.append(core.register_forward_pre_hook(self._pre))
            self._handles.append(core.register_forward_hook(self._post))

    def _pre(self, mod, args):
        self._t0[id(mod)] = time.process_time()

    def _post(self, mod, args, out):
        self.total += time.process_time() - self._t0.pop(id(mod))

    def reset(self) -> None:
        self.total = 0.0

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def fixed_context_methods(names: list[str] | None, model) -> list[str]:
    from splice.install import attention_sites
    from splice.kinds.attention import AttentionModule
    from splice.registry import get_registry

    reg = get_registry()
    if names:
        return [n for n in names if n != "sdpa"]
    out = []
    for (kind, name), entry in sorted(reg.entries.items()):
        if kind != "attention" or name == "sdpa":
            continue
        try:
            mod_cls = type(entry.cls({}).build(attention_sites(model)[0]))
        except Exception as err:  # noqa: BLE001 (a method that cannot build on this model is left out)
            common.log(f"attention {name}: left out ({type(err).__name__}: {err})")
            continue
        if getattr(mod_cls, "on_prefix", AttentionModule.on_prefix) is not AttentionModule.on_prefix:
            out.append(name)
    return out


def _cache_copy(base, model):
    c = model.new_cache()
    c.keys, c.values, c.key_mask = list(base.keys), list(base.values), base.key_mask
    return c


def _reset_stats(model) -> None:
    for blk in model.blocks:
        reset = getattr(blk.attn.core, "reset_stats", None)
        if callable(reset):
            reset()


def _kept_fraction(model) -> float | None:
    """Fraction of the fixed context's keys attended, from methods that count them
    (``stats['selected'] / stats['prefix_keys']``, as squeezed and recency do)."""
    sel = offered = 0.0
    for blk in model.blocks:
        stats = getattr(blk.attn.core, "stats", None)
        if isinstance(stats, dict) and stats.get("prefix_keys"):
            sel += float(stats.get("selected", 0))
            offered += float(stats["prefix_keys"])
    return sel / offered if offered else None


def main(argv: list[str] | None = None) -> None:
    args = common.parse_args(NAME, argv, _add)
    if args.quick:
        args.lengths, args.repeats = [256, 512], 1
    name = common.page_name(NAME, args.model)
    store = common.Store(name, fresh=args.fresh)
    page = common.Page(name, TITLE if args.model == "smollm2" else f"{TITLE} ({args.model})", args)

    from splice.data.corpora import load_corpus
    from splice.install import install_attention
    from splice.model import SDPA, load
    from splice.registry import get_registry

    lm = load(str(models.resolve(args.model)))
    model = lm.model
    ids = lm.encode(load_corpus("wikitext2"))
    reg = get_registry()
    names = fixed_context_methods(args.methods, model)
    methods = {"sdpa": None} | {n: reg.get("attention", n).cls({}) for n in names}
    common.log(f"methods: {', '.join(methods)}; lengths {args.lengths}")

    def use(name: str) -> None:
        if methods[name] is None:
            for blk in model.blocks:
                blk.attn.core = SDPA()
        else:
            install_attention(model, methods[name])

    timer_rows, query_rows = [], []
    with common.progress("context lengths", len(args.lengths)) as bar, torch.no_grad():
        for L in args.lengths:
            if L + QUERY > len(ids) or L > model.config.max_position_embeddings:
                common.log(f"L={L}: skipped (corpus or model positions too short)")
                continue
            ctx_ids = torch.tensor([ids[:L]])
            q_ids = torch.tensor([ids[L:L + QUERY]])
            todo = [n for n in methods if not store.has({"length": L, "method": n})]
            if todo:
                caches, prefill = {}, {}
                for j, n in enumerate(todo[::-1] if L % 2 else todo):  # alternate who goes first
                    common.log(f"L={L}: {n}: scoring / prefill")
                    use(n)
                    timer = AttnTimer(model)
                    c = model.new_cache()
                    t0 = time.process_time()
                    logits = model(ctx_ids, cache=c).logits
                    secs = time.process_time() - t0
                    attn_s = timer.total
                    timer.remove()
                    nll = float(F.cross_entropy(logits[0, :-1], ctx_ids[0, 1:]))
                    del logits
                    t0 = time.process_time()
                    for i, blk in enumerate(model.blocks):
                        hook = getattr(blk.attn.core, "on_prefix", None)
                        if hook is not None:
                            hook(c.keys[i], c.values[i], c.layer_state[i], i)
                    caches[n] = c.freeze()
                    prefill[n] = {"s": secs, "attn_s": attn_s, "nll": nll, "offline_s": time.process_time() - t0}
                times = {n: [] for n in todo}
                attn = {n: [] for n in todo}
                nlls, kept = {}, {}
                for r in range(args.repeats):
                    order = todo[r % len(todo):] + todo[:r % len(todo)]
                    for n in order:
                        use(n)
                        _reset_stats(model)
                        timer = AttnTimer(model)
                        t0 = time.process_time()
                        logits = model(q_ids, cache=caches[n].fork()).logits
                        times[n].append(time.process_time() - t0)
                        attn[n].append(timer.total)
                        timer.remove()
                        # NLL of the query tokens after the first (predicted within the query)
                        nlls[n] = float(F.cross_entropy(logits[0, :-1], q_ids[0, 1:]))
                        kept[n] = _kept_fraction(model)
                for n in todo:
                    store.put({"length": L, "method": n}, {**prefill[n], "q_s": times[n], "q_attn_s": attn[n],
                                                           "q_nll": nlls[n], "kept": kept[n]})
                del caches
            recs = {n: store.get({"length": L, "method": n}) for n in methods}
            d = recs["sdpa"]
            timer_rows.append({"context": L, "scoring s": d["s"], "attention s": d["attn_s"],
                               "tokens/s": L / d["s"], "attention share": d["attn_s"] / d["s"],
                               "PPL (this window)": math.exp(d["nll"]),
                               **{f"{n} scoring s": recs[n]["s"] for n in names}})
            dq = common.Timing("sdpa", d["q_s"]).median
            for n in methods:
                q = recs[n]
                t = common.Timing(n, q["q_s"]).median
                query_rows.append({"context": L, "method": n, "query s": t,
                                   "attention s": common.Timing(n, q["q_attn_s"]).median,
                                   "offline prefix s": q["offline_s"] if n != "sdpa" else None,
                                   "keys kept": q["kept"] if n != "sdpa" else 1.0,
                                   "query NLL": q["q_nll"], "ΔNLL vs dense": q["q_nll"] - d["q_nll"],
                                   "speed vs dense": dq / t})
            bar.advance()

    page.text(("SmolLM2-135M-Instruct (`bench.models.smollm2()`, " if args.model == "smollm2" else f"`{args.model}` (")
              + f"{str(model.dtype).removeprefix('torch.')}), batch 1, CPU seconds (see below), "
              f"{torch.get_num_threads()} torch thread(s); contexts are the first L tokens of WikiText-2 test.")
    page.heading("Dense scoring: time vs context length")
    page.text("One forward over L tokens (the prefill), dense `sdpa`. `attention s` is the time inside the "
              "attention modules (fused `scaled_dot_product_attention`); the rest is the linear layers, norms "
              "and the LM head, which grow linearly, while attention grows quadratically. One measurement per "
              "length; `<method> scoring s` is the same forward with that method installed (fixed-context "
              "methods compute dense attention without a frozen context, plus their own bookkeeping).")
    page.table(timer_rows, formats={**{f"{n} scoring s": (lambda v: f"{v:.2f}") for n in names},
                                    "scoring s": lambda v: f"{v:.2f}", "attention s": lambda v: f"{v:.2f}",
                                    "tokens/s": lambda v: f"{v:.0f}", "attention share": lambda v: f"{v:.0%}",
                                    "PPL (this window)": lambda v: f"{v:.2f}"})
    page.heading("Fixed-context queries: dense vs sparse attention")
    if names:
        page.text(f"{QUERY} new tokens scored against a frozen L-token context. Methods: "
                  + ", ".join(f"`{n}` ({reg.get('attention', n).distribution}, defaults: "
                              f"{methods[n].config.model_dump(mode='json')})" for n in names)
                  + ". `offline prefix s`: the method's one-time processing of the frozen context "
                    "(e.g. k-means of the keys). `speed vs dense`: dense query time / method query time (> 1: "
                    "faster). `keys kept`: fraction of the context's keys attended, where the method reports it. "
                    f"Median of {args.repeats} interleaved repeats.")
    else:
        page.text("No fixed-context (sparse) attention method is installed; only dense is shown. Install e.g. "
                  "`plugins/squeezed` and rerun.")
    page.table(query_rows, formats={"query s": lambda v: f"{v:.2f}", "attention s": lambda v: f"{v:.3f}",
                                    "offline prefix s": lambda v: "-" if v is None else f"{v:.1f}",
                                    "keys kept": lambda v: "-" if v is None else f"{v:.2f}",
                                    "query NLL": lambda v: f"{v:.4f}", "ΔNLL vs dense": lambda v: f"{v:+.4f}",
                                    "speed vs dense": lambda v: f"{v:.2f}"})
    page.plot(_plot(timer_rows, query_rows), "scaling_context.png",
              "Left: dense scoring time vs context (total and inside attention). Right: attention time of "
              f"a {QUERY}-token query against a frozen context, per method.")
    page.note("All seconds are CPU time of the benchmark process (`time.process_time`, 1 torch thread), not "
              "wall-clock: on this shared machine a process waits for a core much of the time, and CPU time "
              "leaves that wait out.")
    page.note("Prefill/scoring measured once per length and method (method order alternating between lengths); "
              "queries interleaved across methods, medians of the repeats.")
    page.write()
    store.finish()


def _plot(timer_rows, query_rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    xs = [r["context"] for r in timer_rows]
    a.plot(xs, [r["scoring s"] for r in timer_rows], "o-", label="whole forward")
    a.plot(xs, [r["attention s"] for r in timer_rows], "s--", label="attention modules")
    a.set_xscale("log", base=2)
    a.set_xlabel("context length (tokens)")
    a.set_ylabel("seconds (batch 1)")
    a.set_title("dense scoring")
    a.legend()
    for m in dict.fromkeys(r["method"] for r in query_rows):
        rows = [r for r in query_rows if r["method"] == m]
        b.plot([r["context"] for r in rows], [r["attention s"] for r in rows], "o-", label=m)
    b.set_xscale("log", base=2)
    b.set_xlabel("fixed context length (tokens)")
    b.set_ylabel(f"attention seconds, {QUERY}-token query")
    b.set_title("fixed-context query")
    b.legend()
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
