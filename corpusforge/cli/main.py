"""The ``corpusforge`` command: one sub-app per noun; commands are thin wrappers."""

from __future__ import annotations

import errno
import sys

import typer

from corpusforge.cli import annotate, build, demo, experiment, export, generate, release, validate
from corpusforge.cli.common import console

app = typer.Typer(
    name="corpusforge",
    help="Build, annotate, validate, version and release research datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(build.app, name="build")
app.add_typer(annotate.app, name="annotate")
app.add_typer(validate.app, name="validate")
app.add_typer(release.app, name="release")
app.add_typer(export.app, name="export")
app.add_typer(experiment.app, name="experiment")
app.add_typer(generate.app, name="generate")
app.command("demo")(demo.demo)


def _known_errors() -> tuple[type[BaseException], ...]:
    from pipelines.core.errors import CorpusforgeError
    from releases.errors import ReleaseError

    return (CorpusforgeError, ReleaseError)


def _interrupted() -> None:
    console.print("[yellow]Interrupted: finished work is kept; run the same command again to resume.[/yellow]")


def _click_exceptions() -> tuple[type[BaseException], ...]:
    # typer ships its own copy of click; options parsed by it raise that copy's exceptions
    import click

    kinds: list[type[BaseException]] = [click.exceptions.ClickException]
    try:
        from typer._click.exceptions import ClickException as TyperClickException

        kinds.append(TyperClickException)
    except ImportError:
        pass
    return tuple(kinds)


_STORAGE_ERRORS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only file system",
                   errno.EACCES: "permission denied", errno.EPERM: "permission denied"}


def _storage_message(exc: OSError) -> str:
    """A full disk or an unwritable folder: what, where, what to do; no traceback."""
    path = exc.filename or "(unknown path)"
    what = _STORAGE_ERRORS[exc.errno]
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = "free space there (or point -w/--workspace at a larger disk)"
    else:
        todo = "make that folder writable (or point -w/--workspace at a writable folder)"
    return (f"{what} while writing {path}: {todo}, then run the same command again. "
            f"Earlier stages, releases and snapshots are untouched, and finished work is kept.")


def main() -> None:
    try:
        # standalone_mode=False lets us render our own errors; click then returns exit codes
        code = app(standalone_mode=False)
        if code == 130:  # typer turns KeyboardInterrupt into exit code 130
            _interrupted()
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console.print("[red]Aborted.[/red]")
        sys.exit(130)
    except KeyboardInterrupt:
        _interrupted()
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the known errors are reported without a traceback
        if isinstance(exc, _click_exceptions()):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, _known_errors()):
            console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
            sys.exit(2)
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRORS:
            console.print(f"[bold red]error:[/bold red] {_storage_message(exc)}", highlight=False)
            sys.exit(2)
        raise
