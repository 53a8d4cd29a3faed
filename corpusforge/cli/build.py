"""``corpusforge build <dataset>``: run a dataset's pipeline into the workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from corpusforge.cli.common import ConfigOpt, LanguagesOpt, PipelineBars, SetOpt, WorkspaceOpt, console, languages_override, out, resolve

app = typer.Typer(help="Build a dataset from its sources into the workspace (resumable).", no_args_is_help=True)


def executor_overrides(set_: list[str] | None, workers: int | None, executor: str | None) -> list[str]:
    """The --set overrides plus what --workers and --executor say (the same for every dataset)."""
    return (list(set_ or []) + ([f"executor.workers={workers}"] if workers else [])
            + ([f"executor.kind={json.dumps(executor)}"] if executor else []))


@app.command("sad")
def build_sad_cmd(
    input: Annotated[list[Path], typer.Option("--input", "-i", help="Dump files or folders (Reddit .jsonl/.gz/.zst), or a published SAD folder (sent.json + argument.json).")],
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes for partitioned steps.")] = None,
    executor: Annotated[str | None, typer.Option("--executor", help="local or ray: overrides executor.kind (ray needs the ray extra installed).")] = None,
    labels: Annotated[str | None, typer.Option(help="Merged human labels to apply: a labels.parquet, or 'latest' (the newest `corpusforge annotate merge sad`).")] = None,
) -> None:
    """Build SAD dialogues from r/ChangeMyView dumps or the published release."""
    from corpusforge.ops import sad

    overrides = executor_overrides(set_, workers, executor)
    settings, ws = resolve(config, workspace, overrides)
    with PipelineBars(console) as progress:
        result = sad.build(input, settings, progress, labels=labels)
    print_build_summary(result, ws.stages("sad"))


@app.command("polyrefuse")
def build_polyrefuse_cmd(
    sources: Annotated[Path, typer.Option("--sources", help="English sources: the folder holding splits/ (and raw/, processed/alpaca.json), or the six split files.")],
    backend: Annotated[Optional[str], typer.Option("--backend", help="Translation backend (polyrefuse.translation.backend): published, seq2seq, causal or http.")] = None,
    translations: Annotated[Optional[Path], typer.Option("--translations", help="published backend: folder of <label>_<split>_translated_<lang>.json files.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="seq2seq / causal: the local model directory; http: the served model name.")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="http backend: the OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.")] = None,
    back_translation: Annotated[Optional[str], typer.Option("--back-translation", help="Back-translation backend: none, same (the translation model), or set polyrefuse.translation.back_translation.* for another.")] = None,
    corrections: Annotated[Optional[str], typer.Option("--corrections", help="Proofreading corrections to apply: latest (the last `annotate pull polyrefuse`), a corrections.parquet, or none.")] = None,
    languages: LanguagesOpt = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    executor: Annotated[str | None, typer.Option("--executor", help="local or ray: overrides executor.kind (ray needs the ray extra installed).")] = None,
) -> None:
    """Build PolyRefuse: English prompts, translations, automatic checks, one row per prompt and language."""
    from corpusforge.ops import polyrefuse

    overrides = executor_overrides(set_, None, executor)
    if backend is not None:
        overrides.append(f"polyrefuse.translation.backend={json.dumps(backend)}")
    if translations is not None:
        overrides.append(f"polyrefuse.translation.translations_dir={json.dumps(str(translations.expanduser().resolve()))}")
    if model is not None:
        if backend == "http" or url is not None:  # a served model's name
            overrides.append(f"polyrefuse.translation.model.model={json.dumps(model)}")
        else:  # a local model directory (checked, with the advice, when the build starts)
            overrides.append(f"polyrefuse.translation.model.model_dir={json.dumps(str(Path(model).expanduser().resolve()))}")
    if url is not None:
        overrides.append(f"polyrefuse.translation.model.url={json.dumps(url)}")
    if back_translation is not None:
        overrides.append(f"polyrefuse.translation.back_translation.backend={json.dumps(back_translation)}")
    overrides += languages_override(languages)
    settings, ws = resolve(config, workspace, overrides)
    with PipelineBars(console) as progress:
        result = polyrefuse.build(sources, settings, progress, corrections=polyrefuse.corrections_file(settings, corrections))
    print_step_table("PolyRefuse build", result)
    bad = {k: v for d in result.dropped().values() for k, v in d.items()}
    if bad:
        console.print(
            f"[yellow]warning:[/yellow] {sum(bad.values()):,} source rows rejected "
            f"({', '.join(f'{k} {v:,}' for k, v in sorted(bad.items()))}); each with its file, row and reason in "
            f"{ws.stages('polyrefuse')}/<step>/_rejects/"
        )
    counters = result.steps["import"].stats["counters"]
    gaps = {k.removeprefix("declared_missing_"): v for k, v in counters.items() if k.startswith("declared_missing_")}
    if gaps:
        out.print("Declared missing (prompts without a translation, with a reason in the missing table): "
                  + ", ".join(f"{lang} {n:,}" for lang, n in gaps.items()), soft_wrap=True)
    out.print(f"Candidate ready in {ws.stages('polyrefuse')}. Next: corpusforge validate polyrefuse", soft_wrap=True)


@app.command("facts")
def build_facts_cmd(
    facts: Annotated[Path, typer.Option("--facts", help="Facts: a KLAR folder (<lang>/<relation>.json), a table (.jsonl, .csv, .parquet: lang, relation, index, subject, object[, subject_aliases, object_aliases]), or latest (the corrected facts of the last `annotate pull facts`).")],
    corpus: Annotated[list[Path], typer.Option("--corpus", help="Corpus shards or folders of shards (Dolma-style .jsonl/.gz/.zst, parquet with a text column, .txt one document per line); repeatable.")],
    checkpoints: Annotated[Optional[str], typer.Option("--checkpoints", help="Training steps for cumulative counts, comma-separated (needs facts.corpus.step_field or facts.order_file).")] = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (local) or CPUs of a local Ray.")] = None,
    executor: Annotated[str | None, typer.Option("--executor", help="local or ray: overrides executor.kind (for a cluster also set executor.ray_address).")] = None,
) -> None:
    """Count, for every fact, the corpus documents that mention its subject, its object and both."""
    from corpusforge.ops import facts as ops

    overrides = executor_overrides(set_, workers, executor)
    if checkpoints is not None:
        steps = [s.strip() for s in checkpoints.split(",") if s.strip()]
        if not all(s.isdigit() for s in steps):
            raise typer.BadParameter(f"--checkpoints takes training steps such as 1000,2000, got {checkpoints!r}")
        overrides.append(f"facts.checkpoints=[{', '.join(steps)}]")
    settings, ws = resolve(config, workspace, overrides)
    if str(facts) == "latest":  # the verified facts: corrections of the last `annotate pull facts` applied
        from corpusforge.ops.verify_facts import corrected_facts_path

        facts = corrected_facts_path(settings)
        out.print(f"Facts: {facts} (the latest verified facts)", soft_wrap=True, highlight=False)
    with PipelineBars(console) as progress:
        result = ops.build(facts, corpus, settings, progress)
    print_step_table("Fact frequencies", result)
    count = result.steps["count"].stats
    skipped = count["dropped"]
    if skipped:
        console.print(
            f"[yellow]warning:[/yellow] skipped {', '.join(f'{k} {v:,}' for k, v in sorted(skipped.items()))}; file, line "
            f"and reason of each are in {ws.stages('facts')}/count/_rejects/", highlight=False, soft_wrap=True,
        )
    merged = result.steps["merge"].stats["counters"]
    out.print(f"{count['counters'].get('documents', 0):,} documents in {count['tasks']:,} shards; "
              f"{merged.get('facts_with_cooccurrence', 0):,} of {merged.get('facts', 0):,} facts co-occur at least once.", soft_wrap=True)
    out.print(f"Candidate ready in {ws.stages('facts')}. Next: corpusforge validate facts", soft_wrap=True)


@app.command("relaionet")
def build_relaionet_cmd(
    input: Annotated[list[Path], typer.Option("--input", "-i", help="img2dataset output (webdataset .tar shards or parquet with images), LAION metadata .parquet, or a folder of images with captions (<name>.txt, captions.csv or captions.jsonl); repeatable.")],
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="Text encoder of the similarity filter: clip, sentence or none (relaionet.similarity.encoder).")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", help="Local folder of the text encoder (relaionet.similarity.model_dir); nothing is downloaded.")] = None,
    corrections: Annotated[Optional[str], typer.Option("--corrections", help="Proofreading to apply: latest (the last `annotate pull relaionet`), a corrections.parquet, or none.")] = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (local) or CPUs of a local Ray.")] = None,
    executor: Annotated[str | None, typer.Option("--executor", help="local or ray: overrides executor.kind (for a cluster also set executor.ray_address).")] = None,
) -> None:
    """Build reLAIONet: captions matched to ImageNet classes (LAIONet rules), filtered, images checked, deduplicated."""
    from corpusforge.ops import relaionet

    overrides = executor_overrides(set_, workers, executor)
    if encoder is not None:
        overrides.append(f"relaionet.similarity.encoder={json.dumps(encoder)}")
    if model is not None:
        overrides.append(f"relaionet.similarity.model_dir={json.dumps(str(model.expanduser().resolve()))}")
    settings, ws = resolve(config, workspace, overrides)
    with PipelineBars(console) as progress:
        result = relaionet.build(input, settings, progress, corrections=relaionet.corrections_file(settings, corrections))
    print_step_table("reLAIONet build", result)
    dropped = {k: v for d in result.dropped().values() for k, v in d.items()}
    if dropped:
        out.print(f"Dropped {sum(dropped.values()):,} samples ({', '.join(f'{k} {v:,}' for k, v in sorted(dropped.items()))}); "
                  f"each with its id, file and reason in {ws.stages('relaionet')}/<step>/_rejects/", soft_wrap=True, highlight=False)
    statuses = {k.removeprefix("proofread_"): v for k, v in result.steps["proofread"].stats["counters"].items() if v}
    kept = result.counts.get("meta", 0)
    out.print(f"{kept:,} candidate images" + (f" ({', '.join(f'{k} {v:,}' for k, v in sorted(statuses.items()))})"
              if set(statuses) - {"pending"} else " waiting for proofreading: corpusforge annotate push relaionet"), soft_wrap=True)
    out.print(f"Candidate ready in {ws.stages('relaionet')}. Next: corpusforge validate relaionet", soft_wrap=True)


def print_step_table(title: str, result) -> None:
    table = Table(title=title, show_lines=False)
    for col in ("step", "status", "rows out", "dropped"):
        table.add_column(col)
    for name, o in result.steps.items():
        rows = ", ".join(f"{k} {v:,}" for k, v in o.stats["rows_out"].items())
        dropped = ", ".join(f"{k} {v:,}" for k, v in o.stats["dropped"].items()) or "-"
        table.add_row(name, "up to date" if o.skipped else f"built in {o.stats['seconds']:.1f}s", rows, dropped)
    out.print(table)


def print_build_summary(result, stages: Path) -> None:
    print_step_table(f"SAD build ({result.kind} source)", result)
    bad = {k: v for d in result.dropped().values() for k, v in d.items() if k in BAD_INPUT_REASONS}
    if bad:
        console.print(
            f"[yellow]warning:[/yellow] {sum(bad.values()):,} bad input records quarantined "
            f"({', '.join(f'{k} {v:,}' for k, v in sorted(bad.items()))}); file, line and reason of each are in "
            f"{stages}/<step>/_rejects/"
        )
    out.print(f"Candidate ready in {stages}. Next: corpusforge validate sad")


BAD_INPUT_REASONS = {
    "malformed_json", "not_an_object", "wrong_type", "missing_field", "bad_id", "bad_reference",
    "ambiguous_kind", "unknown_kind", "truncated_file", "duplicate_id", "submission_missing",
    "parent_missing", "parent_mismatch", "malformed_example", "attitude_mismatch", "unknown_utterance",
    "bad_attitude", "bad_strategies", "inconsistent_history", "conflicting_example",
}
