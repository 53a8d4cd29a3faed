"""``corpusforge export <dataset>``: write a release or the current candidate in another layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from corpusforge.cli.common import ConfigOpt, LanguagesOpt, SetOpt, WorkspaceOpt, languages_override, out, resolve

app = typer.Typer(help="Export a dataset in a published layout (from a release or the current build).", no_args_is_help=True)


@app.command("polyrefuse")
def export_polyrefuse_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write into (created; files of the same names are replaced).")],
    layout: Annotated[str, typer.Option("--layout", help="published: <label>_<split>_translated_<lang>.json, as PolyRefuse's files.")] = "published",
    version: Annotated[Optional[str], typer.Option("--version", help="Release to export, X.Y.Z; default: the current candidate.")] = None,
    languages: LanguagesOpt = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """PolyRefuse in the published file-per-split-and-language layout (translated languages only)."""
    from corpusforge.ops import polyrefuse

    settings, _ = resolve(config, workspace, list(set_ or []) + languages_override(languages))
    outcome = polyrefuse.export(settings, out_dir, version=version, layout=layout)
    result = outcome.result
    out.print(f"Exported PolyRefuse ({outcome.origin}) in the {layout} layout to {result.out_dir}: {len(result.written)} files", soft_wrap=True)
    for path, n in result.written:
        out.print(f"  {path.name}: {n:,} rows")
    if result.not_written:
        out.print(f"Not written ({len(result.not_written)}: nothing to export):", highlight=False)
        for name, reason in result.not_written:
            out.print(f"  {name}: {reason}", highlight=False, markup=False, soft_wrap=True)


@app.command("facts")
def export_facts_cmd(
    out_file: Annotated[Path, typer.Option("--out", help="JSON file to write: {lang: {relation: [{subject, object, index, frequency}]}}.")],
    version: Annotated[Optional[str], typer.Option("--version", help="Release to export, X.Y.Z; default: the current candidate.")] = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Fact frequencies in the paper's JSON layout (frequency = documents with subject and object)."""
    from corpusforge.ops import facts

    settings, _ = resolve(config, workspace, set_)
    path, origin = facts.export(settings, out_file, version=version)
    out.print(f"Exported fact frequencies ({origin}) to {path}", soft_wrap=True)


@app.command("relaionet")
def export_relaionet_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to create: one sub-folder per class (WordNet id) plus metadata.csv.")],
    version: Annotated[Optional[str], typer.Option("--version", help="Release to export, X.Y.Z; default: the current candidate's proofread images.")] = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """reLAIONet as one folder per ImageNet class (the ImageFolder layout reLAIONet is distributed in)."""
    from corpusforge.ops import relaionet

    settings, _ = resolve(config, workspace, set_)
    result, origin = relaionet.export(settings, out_dir, version=version)
    out.print(f"Exported reLAIONet ({origin}) to {out_dir}: {result}", soft_wrap=True, highlight=False)
