"""``splice compose``: apply methods to a model, compare with the baseline, write an artifact."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from splice.artifact import save_artifact
from splice.errors import ConfigError
from splice.method import parse_options
from splice.pipeline import compose as run_compose
from splice.progress import set_quiet
from splice.recipe import Recipe, Step

from ..output import console, emit_json, err_console
from .report import result_json, result_table

KIND_FLAGS = {"attn": "attention", "act": "activation", "unlearn": "unlearner", "quant": "quantizer"}


def _step(name: str | None, opts: list[str] | None, flag: str, base: Step | None) -> Step | None:
    if name is None:
        if opts and base is None:
            raise ConfigError(f"--{flag}-opt given without --{flag}")
        if opts and base is not None:
            return Step(name=base.name, options={**base.options, **parse_options(opts)})
        return base
    return Step(name=name, options={**(base.options if base and base.name == name else {}), **parse_options(opts)})


def eval_steps(names: list[str] | None, opts: list[str] | None, base: list[Step]) -> list[Step]:
    """--eval NAME (repeatable) and --eval-opt NAME.key=value."""
    steps = [Step(name=n) for n in names] if names else [s.model_copy(deep=True) for s in base]
    for o in opts or []:
        target, dot, kv = o.partition(".")
        if not dot or "=" not in kv:
            raise ConfigError(f"--eval-opt {o!r}: expected EVALUATOR.key=value")
        match = [s for s in steps if s.name == target]
        if not match:
            raise ConfigError(f"--eval-opt {o!r}: evaluator {target!r} is not requested "
                              f"(requested: {', '.join(s.name for s in steps)})")
        match[0].options.update(parse_options([kv]))
    return steps


def build_recipe(recipe: Optional[Path], model: Optional[str], attn, attn_opt, act, act_opt, unlearn, unlearn_opt,
                 quant, quant_opt, evals, eval_opt, seed: Optional[int], forget: Optional[int],
                 train_steps: Optional[int] = None) -> Recipe:
    r = Recipe.from_toml(recipe) if recipe else Recipe()
    data = r.model_dump(by_alias=True)
    if model:
        data["model"] = model
    if seed is not None:
        data["seed"] = seed
    for flag, name, opts in (("attn", attn, attn_opt), ("act", act, act_opt), ("unlearn", unlearn, unlearn_opt),
                             ("quant", quant, quant_opt)):
        step = _step(name, opts, flag, getattr(r, flag))
        data[flag] = step.model_dump() if step else None
    data["eval"] = [s.model_dump() for s in eval_steps(evals, eval_opt, r.evals)]
    if forget is not None:
        data["task"]["forget_percent"] = forget
    if train_steps is not None:
        data["train"] = {**(data.get("train") or {}), "steps": train_steps}
    return Recipe.parse(data)


def compose(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="tiny (default), a checkpoint folder or a hub id."),
    attn: Optional[str] = typer.Option(None, "--attn", help="Attention method."),
    attn_opt: Optional[list[str]] = typer.Option(None, "--attn-opt", help="key=value for the attention method."),
    act: Optional[str] = typer.Option(None, "--act", help="Activation method."),
    act_opt: Optional[list[str]] = typer.Option(None, "--act-opt", help="key=value for the activation method."),
    unlearn: Optional[str] = typer.Option(None, "--unlearn", help="Unlearning method."),
    unlearn_opt: Optional[list[str]] = typer.Option(None, "--unlearn-opt", help="key=value for the unlearner."),
    quant: Optional[str] = typer.Option(None, "--quant", help="Quantizer."),
    quant_opt: Optional[list[str]] = typer.Option(None, "--quant-opt", help="key=value for the quantizer, e.g. w_bits=4."),
    evals: Optional[list[str]] = typer.Option(None, "--eval", help="Evaluator (repeatable; default perplexity)."),
    eval_opt: Optional[list[str]] = typer.Option(None, "--eval-opt", help="EVALUATOR.key=value."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", "-r", help="TOML recipe; flags override it."),
    forget: Optional[int] = typer.Option(None, "--forget", help="Forget split of the authors task: 1, 5 or 10 (%)."),
    train_steps: Optional[int] = typer.Option(None, "--train-steps", help="Heal/train this many steps after swaps."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Artifact folder (default runs/<time>)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing artifact folder."),
    json_: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Compose methods on a model: baseline vs composed table, and an artifact.

    Order: load -> attention/activation -> train -> unlearn -> quantize -> evaluate -> save.

    Examples:

      splice compose --quant rtn --quant-opt w_bits=4

      splice compose --unlearn npo --eval tofu --eval muse --forget 5

      splice compose --recipe recipes/w4a4.toml --out runs/w4a4
    """
    set_quiet(json_)
    r = build_recipe(recipe, model, attn, attn_opt, act, act_opt, unlearn, unlearn_opt, quant, quant_opt,
                     evals, eval_opt, seed, forget, train_steps)
    out = out or Path("runs") / dt.datetime.now().strftime("compose-%Y%m%d-%H%M%S")
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"--out {out} exists and is not empty (use --force to replace it)")
    log = (lambda m: None) if json_ else (lambda m: err_console.print(f"[dim]· {m}[/dim]"))
    result = run_compose(r, log=log)
    path = save_artifact(result, out, force=force)
    if json_:
        emit_json({**result_json(result), "artifact": str(path)})
        return
    console.print(result_table(result))
    console.print(f"artifact: [bold]{path}[/bold]  (reproduce: splice eval {path})")


def register(app: typer.Typer) -> None:
    app.command("compose")(compose)
