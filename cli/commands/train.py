"""``splice train``: train or fine-tune a model with a given composition (also from scratch)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from splice.artifact import save_artifact
from splice.errors import ConfigError
from splice.pipeline import compose as run_compose
from splice.progress import set_quiet
from splice.recipe import Recipe

from ..output import console, emit_json, err_console
from .compose import build_recipe
from .report import result_json, result_table


def train(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="tiny (default), a folder or a hub id."),
    scratch: bool = typer.Option(False, "--scratch", help="Fresh weights: train the architecture from scratch."),
    attn: Optional[str] = typer.Option(None, "--attn", help="Attention method to train with."),
    attn_opt: Optional[list[str]] = typer.Option(None, "--attn-opt"),
    act: Optional[str] = typer.Option(None, "--act", help="Activation method to train with."),
    act_opt: Optional[list[str]] = typer.Option(None, "--act-opt"),
    evals: Optional[list[str]] = typer.Option(None, "--eval", help="Evaluator (repeatable; default perplexity)."),
    eval_opt: Optional[list[str]] = typer.Option(None, "--eval-opt", help="EVALUATOR.key=value."),
    steps: int = typer.Option(200, "--steps"),
    lr: float = typer.Option(1e-3, "--lr"),
    batch_size: int = typer.Option(8, "--batch-size"),
    seq_len: int = typer.Option(256, "--seq-len"),
    corpus: str = typer.Option("auto", "--corpus", help="Training text: auto (tiny-train for tiny, else "
                                                        "tinyshakespeare), wikitext2, tinyshakespeare or a file."),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw, sgd, or one a plugin registers."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", "-r"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    out: Optional[Path] = typer.Option(None, "--out", "-o"),
    force: bool = typer.Option(False, "--force"),
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Train a model with a composition; runs unchanged under torchrun (DDP).

    Examples:

      splice train --act polycom --scratch --steps 300

      splice train --attn sigmoid --scratch --eval sink

      torchrun --nproc-per-node 2 -m splice.cli.app train --steps 100
    """
    set_quiet(json_)
    r = build_recipe(recipe, model, attn, attn_opt, act, act_opt, None, None, None, None, evals, eval_opt, seed,
                     None)
    data = r.model_dump(by_alias=True)
    data["train"] = {"steps": steps, "lr": lr, "batch_size": batch_size, "seq_len": seq_len, "corpus": corpus,
                     "optimizer": optimizer, "init": "scratch" if scratch else "pretrained"}
    r = Recipe.parse(data)
    out = out or Path("runs") / dt.datetime.now().strftime("train-%Y%m%d-%H%M%S")
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"--out {out} exists and is not empty (use --force to replace it)")
    log = (lambda m: None) if json_ else (lambda m: err_console.print(f"[dim]· {m}[/dim]"))
    result = run_compose(r, log=log)
    from splice.train import world

    if world()[0] != 0:
        return
    path = save_artifact(result, out, force=force)
    if json_:
        emit_json({**result_json(result), "artifact": str(path)})
        return
    console.print(result_table(result))
    console.print(f"artifact: [bold]{path}[/bold]")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
