"""The `azc` command line: thin typer commands over the library.

Each command's work lives in the library; this module parses arguments, turns AzcError into a
message and exit status 2, and decides what the user sees.
"""

import functools
import sys

import typer
from rich.console import Console
from rich.markup import escape

from azc.errors import AzcError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Evolve machine-learning algorithms from scratch (AutoML-Zero).")
err = Console(stderr=True)


def user_errors(command):
    """Report AzcError (and missing files) as a one-line message with exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except AzcError as error:
            err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def main():
    app(prog_name="azc")


if __name__ == "__main__":
    sys.exit(main())
