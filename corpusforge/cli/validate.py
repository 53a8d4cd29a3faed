"""``corpusforge validate <dataset>``: Great Expectations checks of the current build."""

from __future__ import annotations

import typer

from corpusforge.cli.common import ConfigOpt, LanguagesOpt, SetOpt, WorkspaceOpt, console, languages_override, out, resolve

app = typer.Typer(help="Validate a dataset's release candidate with Great Expectations.", no_args_is_help=True)


@app.command("sad")
def validate_sad_cmd(workspace: WorkspaceOpt = None, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Validate the current SAD build; prints the verdict and names failing rows by id."""
    from corpusforge.ops import sad

    settings, _ = resolve(config, workspace, set_)
    with console.status("validating with Great Expectations ..."):
        report = sad.validate(settings)
    out.print(report.render_text(show_passed=False), highlight=False, markup=False, soft_wrap=True)
    if not report.success:
        raise typer.Exit(1)


@app.command("polyrefuse")
def validate_polyrefuse_cmd(
    languages: LanguagesOpt = None, workspace: WorkspaceOpt = None, config: ConfigOpt = None, set_: SetOpt = None
) -> None:
    """Validate the current PolyRefuse build for the configured languages (polyrefuse.languages); names
    absent languages, declared gaps and failing rows by id."""
    from corpusforge.ops import polyrefuse

    settings, _ = resolve(config, workspace, list(set_ or []) + languages_override(languages))
    with console.status("validating with Great Expectations ..."):
        report = polyrefuse.validate(settings)
    out.print(report.render_text(show_passed=False), highlight=False, markup=False, soft_wrap=True)
    if not report.success:
        raise typer.Exit(1)


@app.command("facts")
def validate_facts_cmd(workspace: WorkspaceOpt = None, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Validate the current fact-frequency build: facts per language, identical indices, counts
    consistent, cumulative checkpoint counts; names failing facts."""
    from corpusforge.ops import facts

    settings, _ = resolve(config, workspace, set_)
    with console.status("validating with Great Expectations ..."):
        report = facts.validate(settings)
    out.print(report.render_text(show_passed=False), highlight=False, markup=False, soft_wrap=True)
    if not report.success:
        raise typer.Exit(1)


@app.command("relaionet")
def validate_relaionet_cmd(workspace: WorkspaceOpt = None, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Validate the images a reLAIONet release would hold: labels and WordNet ids, proofreading status,
    no near-duplicates, image sizes, captions still matching their class; names failing images."""
    from corpusforge.ops import relaionet

    settings, _ = resolve(config, workspace, set_)
    with console.status("validating with Great Expectations ..."):
        report = relaionet.validate(settings)
    out.print(report.render_text(show_passed=False), highlight=False, markup=False, soft_wrap=True)
    if not report.success:
        raise typer.Exit(1)
