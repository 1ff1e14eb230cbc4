"""The ``splice`` command line: plugins, compose, eval, train, check, new, kernels."""

from __future__ import annotations

import sys
import traceback

import click
import typer

from splice.errors import SpliceError

from . import commands
from .output import err_console

try:  # typer >= 0.2x vendors click: its usage errors are not click's classes
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # older typer raises click's own
    _TyperClickException = click.exceptions.ClickException
USAGE_ERRORS = (click.exceptions.ClickException, _TyperClickException)
ABORTS = (click.exceptions.Abort, typer.Abort)

app = typer.Typer(
    name="splice",
    help="Splice research methods into transformer language models.\n\n"
         "Examples:\n\n"
         "  splice plugins\n\n"
         "  splice compose --quant rtn --quant-opt w_bits=4\n\n"
         "  splice compose --attn squeezed --quant flatquant --out runs/sq-fq\n\n"
         "  splice eval runs/sq-fq\n\n"
         "  splice new --kind quantizer --name myquant && splice check myquant",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
STATE = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    STATE["debug"] = debug


commands.register_all(app)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user mistakes are one line and exit 2; bugs exit 1 (traceback with --debug)."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        code = app(args=argv, standalone_mode=False, prog_name="splice")  # typer.Exit(n) returns n
    except click.exceptions.Exit as e:
        return e.exit_code
    except ABORTS:
        err_console.print("[red]aborted[/red]")
        return 130
    except USAGE_ERRORS as e:
        e.show()
        return e.exit_code
    except SpliceError as e:
        if debug:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/bold red] {e}", highlight=False, soft_wrap=True)
        return 2
    except Exception as e:  # a bug, not the user's fault
        if debug:
            traceback.print_exc()
        err_console.print(f"[bold red]internal error:[/bold red] {type(e).__name__}: {e} (rerun with --debug)",
                          highlight=False, soft_wrap=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
