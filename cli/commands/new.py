"""``splice new``: a new plugin from the copier template (templates/plugin), passing ``splice check`` as rendered."""

from __future__ import annotations

import enum
import importlib.metadata as md
import importlib.util
import keyword
import os
import re
from pathlib import Path

import typer
from splice.errors import ConfigError
from splice.registry import get_registry

from ..output import console, emit_json

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ARXIV = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")


class Kind(str, enum.Enum):
    attention = "attention"
    activation = "activation"
    quantizer = "quantizer"
    unlearner = "unlearner"
    evaluator = "evaluator"


def template_dir() -> Path:
    """$SPLICE_TEMPLATE, else templates/plugin beside the ``splice`` package folders: in a checkout
    (editable install) the repository's ``templates/plugin``; in a wheel, ``splice/templates/plugin``
    (shipped as the ``splice.templates`` package data)."""
    env = os.environ.get("SPLICE_TEMPLATE")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "templates" / "plugin"
    if not (path / "copier.yml").is_file():
        raise ConfigError(f"the plugin template is not at {path} (set SPLICE_TEMPLATE to templates/plugin of a "
                          "splice checkout)")
    return path


def validate_name(name: str) -> None:
    """A new plugin's name: a lowercase identifier nobody installed uses yet."""
    if not NAME.match(name) or keyword.iskeyword(name):
        raise ConfigError(f"--name {name!r}: must be a lowercase Python identifier (a-z, 0-9, _; starting with a "
                          "letter; not a keyword), e.g. myquant")
    reg = get_registry()
    taken = reg.find(name)
    if taken:
        e = taken[0]
        raise ConfigError(f"--name {name!r}: already provided by {e.distribution} ({e.kind} {e.name!r}); "
                          "choose another name")
    if any(f.plugin == name for f in reg.failures):
        raise ConfigError(f"--name {name!r}: an installed plugin of that name exists (it fails to load)")
    for dist in (f"splice-plugin-{name}",):
        try:
            md.distribution(dist)
        except md.PackageNotFoundError:
            continue
        raise ConfigError(f"--name {name!r}: the distribution {dist} is already installed")
    if importlib.util.find_spec(f"splice_{name}") is not None:
        raise ConfigError(f"--name {name!r}: a module splice_{name} is already importable")


def new(
    kind: Kind = typer.Option(..., "--kind", "-k", help="Kind of method.", case_sensitive=False),
    name: str = typer.Option(..., "--name", "-n", help="Method name: the paper's short name, lowercase."),
    dir_: Path = typer.Option(Path("plugins"), "--dir", "-d", help="Folder the plugin folder is created in."),
    title: str | None = typer.Option(None, "--title", help="Paper title."),
    arxiv: str | None = typer.Option(None, "--arxiv", help="arXiv id of the paper, e.g. 2402.04291."),
    claim: str | None = typer.Option(None, "--claim", help="The claim the plugin reproduces."),
    json_: bool = typer.Option(False, "--json", help="Print what was created as JSON."),
) -> None:
    """Create a plugin from the template: a working method of the kind, tests, README, entry point.

    Examples:

      splice new --kind quantizer --name myquant

      splice new --kind unlearner --name npo --title "Negative Preference Optimization" --arxiv 2404.05868

    Then: pip install -e plugins/NAME && splice check NAME
    """
    import copier

    validate_name(name)
    if arxiv is not None and not ARXIV.match(arxiv):
        raise ConfigError(f"--arxiv {arxiv!r}: expected an arXiv id such as 2402.04291")
    dest = dir_ / name
    if dest.exists():
        raise ConfigError(f"{dest} already exists; choose another --name or --dir")
    data = {"name": name, "kind": kind.value}
    data.update({k: v for k, v in (("title", title), ("arxiv", arxiv), ("claim", claim)) if v is not None})
    dir_.mkdir(parents=True, exist_ok=True)
    copier.run_copy(str(template_dir()), str(dest), data=data, defaults=True, quiet=True, unsafe=False,
                    overwrite=False)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    if json_:
        emit_json({"path": str(dest), "kind": kind.value, "name": name, "files": files})
        return
    console.print(f"created [bold]{dest}[/bold]: {kind.value} [bold]{name}[/bold] (distribution "
                  f"splice-plugin-{name})")
    for f in files:
        console.print(f"  {f}")
    console.print(f"next: [bold]pip install -e {dest}[/bold] && [bold]splice check {name}[/bold]; then replace the "
                  f"template's method in {dest}/src/splice_{name}/method.py and fill in README.md")


def register(app: typer.Typer) -> None:
    app.command("new")(new)
