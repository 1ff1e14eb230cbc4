"""Each command lives in its own module with a ``register(app)`` function."""

from __future__ import annotations

import importlib

import typer

MODULES = [
    "splice.cli.commands.plugins",
    "splice.cli.commands.compose",
    "splice.cli.commands.evaluate",
    "splice.cli.commands.train",
    "splice.cli.commands.check",
    "splice.cli.commands.new",
    "splice.cli.kernels_cmd",
]


def register_all(app: typer.Typer) -> None:
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # a real import error inside the module: surface it
                raise
            continue
        module.register(app)
