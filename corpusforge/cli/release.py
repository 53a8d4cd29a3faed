"""``corpusforge release``: publish, verify and compare versioned releases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from corpusforge.cli.common import ConfigOpt, LanguagesOpt, SetOpt, WorkspaceOpt, languages_override, out, resolve

app = typer.Typer(help="Publish a validated dataset as an immutable versioned release; verify; diff.", no_args_is_help=True)
VersionOpt = Annotated[Optional[str], typer.Option("--version", help="Version to publish, X.Y.Z.")]
BumpOpt = Annotated[Optional[str], typer.Option("--bump", help="Or bump the latest version: major, minor or patch.")]


def _release(dataset: str, title: str, settings, version: str | None, bump: str | None, load_config: Callable[[object], str | None]) -> None:
    """Release through ``corpusforge.ops.<dataset>`` and say what was written and how to load it."""
    import importlib

    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # the release writer's own summary says enough
    if version is not None:  # before anything is read or written: a version is never a path
        from releases.versions import validate_version

        validate_version(version)
    outcome = importlib.import_module(f"corpusforge.ops.{dataset}").release(settings, version=version, bump=bump)
    out.print(f"Released {title} {outcome.version} at {outcome.path}", soft_wrap=True)
    for config_name, splits in outcome.counts.items():
        out.print(f"  {config_name}: " + ", ".join(f"{s} {n:,}" for s, n in splits.items()))
    config = load_config(outcome)
    out.print(f'Load it with: datasets.load_dataset("{outcome.path}"' + (f', "{config}")' if config else ")"), soft_wrap=True)


@app.command("sad")
def release_sad_cmd(
    version: VersionOpt = None,
    bump: BumpOpt = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Release the validated SAD build (refused while validation fails)."""
    settings, _ = resolve(config, workspace, set_)
    _release("sad", "SAD", settings, version, bump, lambda _: "dialogues")


@app.command("polyrefuse")
def release_polyrefuse_cmd(
    version: VersionOpt = None,
    bump: BumpOpt = None,
    languages: LanguagesOpt = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Release the validated PolyRefuse build: one config per language present and `parallel` (refused
    while validation fails; narrow polyrefuse.languages or allow declared gaps instead)."""
    settings, _ = resolve(config, workspace, list(set_ or []) + languages_override(languages))
    _release("polyrefuse", "PolyRefuse", settings, version, bump, lambda o: o.details["languages"][-1])


@app.command("facts")
def release_facts_cmd(
    version: VersionOpt = None,
    bump: BumpOpt = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Release the validated fact counts: one config per language and `all`, with the summary plot."""
    settings, _ = resolve(config, workspace, set_)
    _release("facts", "fact frequencies", settings, version, bump, lambda _: "all")


@app.command("relaionet")
def release_relaionet_cmd(
    version: VersionOpt = None,
    bump: BumpOpt = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Release the proofread reLAIONet images (accepted or relabelled): an Image column and a ClassLabel over the 1,000 ImageNet classes."""
    settings, _ = resolve(config, workspace, set_)
    _release("relaionet", "reLAIONet", settings, version, bump, lambda _: None)


@app.command("verify")
def verify_cmd(release_dir: Annotated[Path, typer.Argument(help="A release directory.")]) -> None:
    """Re-check every file of a release against checksums.sha256."""
    from releases import verify_release

    report = verify_release(release_dir)
    out.print(report.render_text(), highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("diff")
def diff_cmd(
    a: Annotated[Path, typer.Argument(help="Older release directory.")],
    b: Annotated[Path, typer.Argument(help="Newer release directory.")],
    max_ids: Annotated[int, typer.Option(help="Ids listed per change kind.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full diff as JSON.")] = False,
) -> None:
    """Rows added, removed and changed between two releases, by id."""
    import json

    from releases import diff_releases

    report = diff_releases(a, b)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        out.print(report.render_text(max_ids=max_ids), highlight=False, markup=False)
