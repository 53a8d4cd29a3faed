"""``corpusforge annotate``: what annotators will see; the annotation backends build on this."""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import typer
from rich.table import Table

from corpusforge.cli.common import ConfigOpt, WorkspaceOpt, console, out, resolve

app = typer.Typer(help="Annotation: suggestions to review and (with a backend) labelling in the browser.", no_args_is_help=True)


@app.command("suggestions")
def suggestions_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name (sad).")],
    examples: Annotated[int, typer.Option(help="Example utterances shown per strategy.")] = 2,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Summarise the machine suggestions of the current build (not human labels)."""
    import polars as pl

    from pipelines.sad.pipeline import read_candidate
    from schemas.sad import STRATEGIES

    if dataset != "sad":
        raise typer.BadParameter(f"no suggestions for {dataset!r}; available: sad")
    settings, ws = resolve(config, workspace, None)
    utt = read_candidate(ws.stages("sad"))["utterances"]
    exploded = utt.select("utterance_id", "text", "suggestion_source", pl.col("suggested_strategies").alias("s")).explode("s")
    table = Table(title=f"Suggested strategies over {utt.height:,} utterances (source: {utt['suggestion_source'][0] if utt.height else '-'})")
    table.add_column("strategy")
    table.add_column("utterances", justify="right")
    table.add_column("share", justify="right")
    table.add_column("examples")
    for i, name in enumerate(STRATEGIES):
        rows = exploded.filter(pl.col("s") == i)
        sample = rows.head(examples)["text"].to_list()
        table.add_row(name, f"{rows.height:,}", f"{rows.height / max(1, utt.height):.0%}", "\n".join(t[:90] for t in sample))
    out.print(table)


@app.command("serve")
def serve_cmd(
    port: Annotated[Optional[int], typer.Option(help="Port on 127.0.0.1 (0: any free port; default 8080, Argilla 6900).")] = None,
    host: Annotated[Optional[str], typer.Option(help="Address Label Studio listens on (default annotation.label_studio.host: 127.0.0.1, this machine only).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="label_studio or argilla.")] = "label_studio",
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run a local Label Studio (or Argilla) for this workspace until Ctrl-C; its database stays in the workspace."""
    if BACKENDS.get(backend) == "argilla":
        return _serve_argilla(6900 if port is None else port, workspace, config)
    if backend not in BACKENDS:
        raise typer.BadParameter(f"unknown backend {backend!r}; available: label_studio, argilla")
    from annotation.backends.labelstudio import server as module

    from corpusforge.ops.relaionet_proofread import document_root

    settings, ws = resolve(config, workspace, None)
    data_dir = ws.annotation / "label-studio"
    # local files (reLAIONet's images) are served from the workspace's annotation/media only, or annotation.relaionet.document_root
    _serve("Label Studio", module, data_dir,
           lambda: module.LocalLabelStudio(data_dir, port=8080 if port is None else port, document_root=document_root(settings),
                                           host=host or settings.annotation.label_studio.host),
           lambda server: [f"  data: {data_dir} (kept between runs); local files served from {server.document_root}"])


def _serve_argilla(port: int, workspace, config) -> None:
    """A local argilla-server 2.8 (with Redis and its worker) over ``<workspace>/annotation/argilla``."""
    from annotation.backends.argilla import server as module

    data_dir = resolve(config, workspace, None)[1].annotation / "argilla"
    _serve("Argilla", module, data_dir, lambda: module.LocalArgilla(data_dir, port=port), lambda server: [
        f"  data: {data_dir} (kept between runs); the owner's API key is in {data_dir / module.LOGIN_FILE}",
        "  commands use it with --backend argilla (or annotation.backend = \"argilla\")",
    ])


def _serve(title: str, module, data_dir: Path, make_server: Callable, details: Callable) -> None:
    """Run the local server of ``module`` (labelstudio.server or argilla.server) over ``data_dir`` until Ctrl-C."""
    running = module.find_running(data_dir)
    if running:
        login = module.read_login(data_dir)
        _say(f"{title} already runs for this workspace at {running['url']} (pid {running['pid']}).")
        _say(f"  log in as {login['username']}, password {login['password']}")
        return

    def note(message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True)

    module.ensure_environment(progress=note)
    module.ensure_template(progress=note)
    server = make_server()
    with _sigterm_as_interrupt():
        try:
            server.start()
            _say(f"{title} is running at {server.url}")
            _say(f"  log in as {server.username}, password {server.password}")
            for line in details(server):
                _say(line)
            _say("Stop it with Ctrl-C.")
            if hasattr(server, "wait"):  # Label Studio's raises when the server exits on its own
                server.wait()
            while server.is_running():  # LocalArgilla has no wait()
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            _uninterrupted(server.stop)
    _say(f"{title} stopped.")


def _say(line: str) -> None:
    out.print(line, highlight=False, markup=False, soft_wrap=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) stops the server as cleanly as Ctrl-C does."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _uninterrupted(action: Callable[[], None]) -> None:
    """Run a clean-up that a second Ctrl-C must not cut short."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        action()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- the labelling loop

DatasetArg = Annotated[str, typer.Argument(help="Dataset name: sad (strategy labelling), polyrefuse (proofreading), facts (fact verification) or relaionet (image proofreading); the last three have push, pull, simulate.")]
SetOptA = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a setting, e.g. --set annotation.sad.overlap=2 (repeatable).")]
BackendOpt = Annotated[Optional[str], typer.Option("--backend", help="Annotation server: label_studio or argilla (default: annotation.backend).")]
BACKENDS = {"label_studio": "label_studio", "label-studio": "label_studio", "argilla": "argilla"}


def _with_backend(set_: list[str] | None, backend: str | None) -> list[str] | None:
    """``--backend`` as the override of ``annotation.backend`` (after any --set, so it wins)."""
    if backend is None:
        return set_
    if backend not in BACKENDS:
        raise typer.BadParameter(f"unknown backend {backend!r}; available: label_studio, argilla")
    return [*(set_ or []), f'annotation.backend="{BACKENDS[backend]}"']


PROOFREADING_COMMANDS = ("push", "pull", "simulate")
# datasets whose annotation is a correction round (push, pull, simulate): what it is, how its corrections are applied
CORRECTION_ROUNDS = {
    "polyrefuse": ("PolyRefuse proofreading", "corpusforge build polyrefuse --corrections latest --sources ..."),
    "facts": ("Fact verification", "corpusforge build facts --facts latest --corpus ..."),
    "relaionet": ("reLAIONet image proofreading", "corpusforge build relaionet --corrections latest ..."),
}


def _settings(dataset: str, config, workspace, set_, command: str = "", backend: str | None = None):
    if dataset not in ("sad", *CORRECTION_ROUNDS):
        raise typer.BadParameter(f"no annotation recipe for {dataset!r}; available: sad, {', '.join(CORRECTION_ROUNDS)}")
    if dataset in CORRECTION_ROUNDS and command not in PROOFREADING_COMMANDS:
        what, apply = CORRECTION_ROUNDS[dataset]
        raise typer.BadParameter(
            f"`annotate {command}` is for SAD labelling; {what} has {', '.join(PROOFREADING_COMMANDS)} "
            f"(a pull turns the verdicts into corrections: apply them with `{apply}`)"
        )
    return resolve(config, workspace, _with_backend(set_, backend))[0]


@contextmanager
def _bar(description: str) -> Iterator[Callable[[int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@app.command("push")
def push_cmd(
    dataset: DatasetArg,
    sample_size: Annotated[Optional[int], typer.Option(help="Items to route (default: annotation.sad.sample_size; 0 = none).")] = None,
    all_items: Annotated[bool, typer.Option("--all", help="Route every example.")] = False,
    overlap: Annotated[Optional[int], typer.Option(help="Annotators per item (k).")] = None,
    lowest_confidence_first: Annotated[Optional[bool], typer.Option("--lowest-confidence-first/--random-order", help="Take the least certain items first.")] = None,
    preannotator: Annotated[Optional[str], typer.Option(help="rules or model (the latest trained classifier).")] = None,
    backend: BackendOpt = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOptA = None,
) -> None:
    """Create or update the labelling project and import the routed items (idempotent, resumable)."""
    from corpusforge.ops import annotate as ops

    settings = _settings(dataset, config, workspace, set_, "push", backend)
    if dataset in CORRECTION_ROUNDS:
        return _push_round(dataset, settings)
    with _bar("pushing tasks") as bar:
        report, plan = ops.push(
            settings, progress=bar, preannotator=preannotator, all_items=all_items,
            sample_size=sample_size, overlap=overlap, lowest_confidence_first=lowest_confidence_first,
        )
    _say(f"Project {report.project_id}: {report.created:,} tasks created, {report.already:,} already there"
         + (f", {report.recovered:,} recovered from an interrupted push" if report.recovered else "")
         + (f", {report.gold:,} gold" if report.gold else "") + f" ({report.seconds:.1f}s).")
    if plan.strata and len(plan.strata) > 1:
        _say("Sample by stratum: " + ", ".join(f"{'/'.join(k)} {n}" for k, n in sorted(plan.strata.items())))
    _say(f"Label at {report.project_url}")


@app.command("pull")
def pull_cmd(dataset: DatasetArg, backend: BackendOpt = None, workspace: WorkspaceOpt = None, config: ConfigOpt = None, set_: SetOptA = None) -> None:
    """Export the annotations into a new immutable snapshot and report agreement (SAD) or corrections (PolyRefuse, facts)."""
    from corpusforge.ops import annotate as ops

    settings = _settings(dataset, config, workspace, set_, "pull", backend)
    if dataset in CORRECTION_ROUNDS:
        return _pull_round(dataset, settings)
    with _bar("parsing annotations") as bar:
        report, paths = ops.pull(settings, progress=bar)
    c = report.changes
    _say(f"Snapshot {report.snapshot}: {report.tasks:,} tasks, {report.judgments:,} judgments "
         f"(new {c.get('new', 0):,}, updated {c.get('updated', 0):,}, deleted {c.get('deleted', 0):,}), "
         f"{report.skipped:,} skipped, {report.rejected:,} quarantined ({report.seconds:.1f}s).")
    if report.source:
        _say(f"Read from the {report.source}.")
    if report.rejected:
        console.print(f"[yellow]warning:[/yellow] {report.rejected:,} annotations did not match the recipe; reasons in {report.snapshot / 'rejects.jsonl'}")
    if report.deleted_tasks:
        console.print(f"[yellow]warning:[/yellow] {len(report.deleted_tasks):,} tasks were deleted on the server (e.g. {report.deleted_tasks[:3]}); "
                      f"earlier snapshots keep their annotations")
    _say(f"Agreement report: {paths['markdown']}")


@app.command("agreement")
def agreement_cmd(dataset: DatasetArg, workspace: WorkspaceOpt = None, config: ConfigOpt = None, set_: SetOptA = None) -> None:
    """Print the agreement of the latest pull (and rewrite its report)."""
    from corpusforge.ops import annotate as ops

    report, paths = ops.agreement(_settings(dataset, config, workspace, set_, "agreement"))
    out.print(report.to_markdown(), markup=False, highlight=False)
    _say(f"Heatmaps: {', '.join(str(p) for k, p in paths.items() if k.startswith('confusion'))}")


@app.command("merge")
def merge_cmd(dataset: DatasetArg, workspace: WorkspaceOpt = None, config: ConfigOpt = None, set_: SetOptA = None) -> None:
    """Merge the latest pull (and adjudications) into labels; queue what the policy cannot settle."""
    from corpusforge.ops import annotate as ops

    outcome = ops.merge(_settings(dataset, config, workspace, set_, "merge"))
    counts = ", ".join(f"{k} {v:,}" for k, v in outcome.counts.items())
    _say(f"Merged snapshot {outcome.snapshot}: {counts}.")
    _say(f"Labels: {outcome.dir / 'labels.parquet'}")
    if outcome.queue:
        _say(f"{outcome.queue:,} items need adjudication: corpusforge annotate adjudicate {dataset}")
    _say(f"Next: corpusforge build {dataset} --input ... --labels latest")


@app.command("adjudicate")
def adjudicate_cmd(
    dataset: DatasetArg,
    pull: Annotated[bool, typer.Option("--pull", help="Fetch the adjudicators' decisions instead of pushing the queue.")] = False,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOptA = None,
) -> None:
    """Send the merge queue to the adjudication project, or (--pull) fetch the decisions."""
    from corpusforge.ops import annotate as ops

    settings = _settings(dataset, config, workspace, set_, "adjudicate")
    if pull:
        report = ops.adjudication_pull(settings)
        _say(f"Adjudication snapshot {report.snapshot}: {report.judgments:,} decisions. Run `corpusforge annotate merge {dataset}` to apply them.")
        return
    report, queued = ops.adjudication_push(settings)
    _say(f"{queued:,} queued items; {report.created:,} new adjudication tasks. Decide at {report.project_url}")


@app.command("simulate")
def simulate_cmd(
    dataset: DatasetArg,
    simulated: Annotated[bool, typer.Option("--simulated", help="Required: confirms these annotations are synthetic (demo, tests, benchmarks).")] = False,
    annotators: Annotated[int, typer.Option(help="Number of simulated annotators when annotation.sad.annotators names none.")] = 3,
    noise: Annotated[float, typer.Option(min=0, max=1, help="Probability of flipping each answer.")] = 0.05,
    truth: Annotated[Optional[Path], typer.Option(help="JSONL of known answers; default: the pre-annotations with seeded noise.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    adjudicator: Annotated[bool, typer.Option("--adjudicator", help="Answer the adjudication queue instead (one simulated adjudicator).")] = False,
    answers: Annotated[Optional[Path], typer.Option(help="relaionet: JSONL answer key, lines {\"sample_id\", \"answers\"[, \"annotator\"]}; default: everyone confirms.")] = None,
    backend: BackendOpt = None,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOptA = None,
) -> None:
    """Simulated annotators submit through the real API (explicit --simulated flag required)."""
    from corpusforge.ops import annotate as ops

    if not simulated:
        raise typer.BadParameter("simulated annotations are for demos, tests and benchmarks only: pass --simulated to confirm")
    settings = _settings(dataset, config, workspace, set_, "simulate", backend)
    if dataset in CORRECTION_ROUNDS:
        return _simulate_round(dataset, settings, seed, answers)
    configured = list(settings.annotation.sad.annotators)
    names = ["sim-adjudicator"] if adjudicator else configured or [f"sim-annotator-{k + 1}" for k in range(annotators)]
    with _bar("submitting annotations") as bar:
        report = ops.simulate(settings, names, noise=noise, seed=seed, truth_file=truth, progress=bar, adjudication=adjudicator)
    _say(f"{report.submitted:,} simulated annotations submitted by {', '.join(names)} ({report.already:,} already there).")
    if report.left_to_others:
        _say(f"{report.left_to_others:,} assignments belong to other annotators and were left to them.")


@app.command("train")
def train_cmd(dataset: DatasetArg, workspace: WorkspaceOpt = None, config: ConfigOpt = None, set_: SetOptA = None) -> None:
    """Train the strategy classifier on merged human labels; compare it with the rules on held-out labels."""
    from corpusforge.ops import annotate as ops

    settings = _settings(dataset, config, workspace, set_, "train")
    with _bar("training epochs") as bar:
        epochs = settings.annotation.sad.epochs
        outcome = ops.train(settings, progress=lambda epoch, loss: bar(epoch, epochs))
    _say(f"{outcome.model_name}: trained on {outcome.n_train:,} items, evaluated on {outcome.n_heldout:,} held-out items.")
    out.print(outcome.table_markdown, markup=False, highlight=False)
    _say(f"Model: {outcome.model_dir}. Use it: corpusforge annotate push {dataset} --preannotator model")


# --------------------------------------------------------------------------- correction rounds: PolyRefuse proofreading, fact verification


def _round_ops(dataset: str):
    from corpusforge.ops import proofread, relaionet_proofread, verify_facts

    return {"polyrefuse": proofread, "facts": verify_facts, "relaionet": relaionet_proofread}[dataset]


# per round: (project noun, what the strata are, what people do there)
ROUND_WORDS = {
    "polyrefuse": ("Proofreading", "language and flag", "Proofread"),
    "facts": ("Verification", "language and reason", "Verify"),
    "relaionet": ("Proofreading", "proofreaders (double: two)", "Proofread"),
}


def _push_round(dataset: str, settings) -> None:
    noun, strata, verb = ROUND_WORDS[dataset]
    with _bar(f"pushing {noun.lower()} tasks") as bar:
        report, plan, *written = _round_ops(dataset).push(settings, progress=bar)
    if written:
        _say(f"Image files: {written[0]:,} written to {_round_ops(dataset).images_dir(settings)}.")
    _say(f"{noun} project {report.project_id}: {report.created:,} tasks created, {report.already:,} already there"
         + (f", {report.recovered:,} recovered from an interrupted push" if report.recovered else "") + f" ({report.seconds:.1f}s).")
    _say(f"Items by {strata}: " + (", ".join(f"{'/'.join(k)} {n}" for k, n in sorted(plan.strata.items())) or "none"))
    _say(f"{verb} at {report.project_url}")


def _pull_round(dataset: str, settings) -> None:
    with _bar("parsing verdicts") as bar:
        outcome = _round_ops(dataset).pull(settings, progress=bar)
    report = outcome.report
    _say(f"Snapshot {report.snapshot.name}: {report.judgments:,} verdicts on {report.tasks:,} tasks, "
         f"{report.rejected:,} quarantined ({report.seconds:.1f}s).")
    _say("Corrections: " + (", ".join(f"{k} {v:,}" for k, v in outcome.counts.items()) or "none yet") + f" -> {outcome.corrections}")
    if outcome.problems:
        shown = "; ".join(f"{i}: {p}" for i, p in outcome.problems[:3])
        console.print(f"[yellow]warning:[/yellow] {len(outcome.problems):,} items not settled (not applied), e.g. {shown}",
                      highlight=False, soft_wrap=True)
    if dataset == "facts":
        _say_fact_changes(outcome)
    if "agreement" in outcome.added:
        _say_agreement(outcome.added["agreement"])
    _say(f"Apply them: {CORRECTION_ROUNDS[dataset][1]}")


def _say_fact_changes(outcome) -> None:
    applied = outcome.added["applied"]
    _say(f"Corrected facts: {outcome.corrections.parent / outcome.added['facts']} "
         f"({applied['facts_changed']:,} facts changed, {len(applied['unchanged']):,} fixes already in the current build).")
    if applied["unknown"]:
        console.print(f"[yellow]warning:[/yellow] {len(applied['unknown']):,} fixes name facts the current build does not hold "
                      f"(not applied), e.g. {', '.join(applied['unknown'][:3])}", highlight=False, soft_wrap=True)


def _say_agreement(a: dict) -> None:
    if not a["items"]:
        _say("Agreement: no image has two usable verdicts yet.")
        return

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    _say(f"Agreement on verdict and class over {a['items']:,} double-proofread images: {a['percent_agreement']:.1f}% "
         f"({a['agreeing']:,} agree), Krippendorff's alpha {fmt(a['krippendorff_alpha'])}, Fleiss' kappa {fmt(a['fleiss_kappa'])}.")


def _simulate_round(dataset: str, settings, seed: int, answers: Path | None = None) -> None:
    ops = _round_ops(dataset)
    if answers is not None and dataset != "relaionet":
        raise typer.BadParameter("--answers is for relaionet; other rounds simulate their own verdicts")
    extra = {"answers": ops.load_answer_key(answers) if answers else None} if dataset == "relaionet" else {}
    with _bar("submitting verdicts") as bar:
        report = ops.simulate(settings, seed=seed, progress=bar, **extra)
    _say(f"{report.submitted:,} simulated verdicts submitted ({report.already:,} already there).")
