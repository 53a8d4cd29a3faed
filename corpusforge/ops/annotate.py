"""SAD annotation end to end: push, simulate, pull, agreement, merge, adjudicate, train.

The command line calls these. Workspace layout (``<workspace>/annotation/``)::

    label-studio/                      the local server's data dir (`corpusforge annotate serve`)
    argilla/                           the local Argilla's data dir (`corpusforge annotate serve --backend argilla`)
    sad/label-studio/                  the labelling project's state (annotation.store); sad/argilla/ with Argilla
    sad/label-studio-adjudication/     the adjudication project's state (sad/argilla-adjudication/)
    sad/reports/<snapshot>/            agreement report of each pull (markdown, JSON, heatmaps)
    sad/merged/<stamp>/                labels.parquet, queue.jsonl, merge.json
    sad/models/<model name>/           trained strategy classifiers, with evaluation.md
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from annotation.spec import AnnotationSpec, Answers
from annotation.store import ProjectState, make_read_only, utc_stamp
from corpusforge.config import Settings
from corpusforge.secrets import get_secret
from corpusforge.workspace import Workspace
from pipelines.core.errors import CorpusforgeError, InputError
from pipelines.core.fileio import atomic_write_json, atomic_write_text, read_json

DATASET = "sad"
BACKEND = "label-studio"
TOKEN_VAR = "CORPUSFORGE_LABEL_STUDIO_TOKEN"
ARGILLA_KEY_VAR = "CORPUSFORGE_ARGILLA_API_KEY"
# annotation.backend -> the folder of a project's state: each backend keeps its own task map and snapshots
STATE_DIRS = {"label_studio": BACKEND, "argilla": "argilla"}

ProgressFn = Callable[[int, int], None]


class AnnotationError(CorpusforgeError):
    pass


# --------------------------------------------------------------------------- wiring


def _ws(settings: Settings) -> Workspace:
    return Workspace.at(settings.workspace.path)


def root(settings: Settings) -> Path:
    return _ws(settings).annotation / DATASET


def state_dir(settings: Settings) -> str:
    """The folder name of a project's state for the configured backend (``label-studio`` or ``argilla``)."""
    return STATE_DIRS[settings.annotation.backend]


def project_state(settings: Settings, adjudication: bool = False) -> ProjectState:
    name = state_dir(settings)
    return ProjectState(root(settings) / (f"{name}-adjudication" if adjudication else name))


def local_server_dir(settings: Settings) -> Path:
    return _ws(settings).annotation / "label-studio"


def local_argilla_dir(settings: Settings) -> Path:
    return _ws(settings).annotation / "argilla"


def push_chunk_size(settings: Settings) -> int:
    """Tasks (Label Studio) or records (Argilla) created per request by a push to the configured backend."""
    if settings.annotation.backend == "argilla":
        return settings.annotation.argilla.chunk_size
    return settings.annotation.label_studio.chunk_size


def connect(settings: Settings):
    """The backend of ``annotation.backend``: Label Studio (:func:`connect_label_studio`) or Argilla (:func:`connect_argilla`)."""
    if settings.annotation.backend == "argilla":
        return connect_argilla(settings)
    return connect_label_studio(settings)


def connect_argilla(settings: Settings):
    """Argilla at ``annotation.argilla.url`` with the key from CORPUSFORGE_ARGILLA_API_KEY, else the local server of this workspace."""
    from annotation.backends.argilla.backend import ArgillaBackend, check_reachable
    from annotation.backends.argilla.server import find_running, read_login

    o = settings.annotation.argilla
    secret = get_secret("argilla_api_key")
    if secret is not None:
        return ArgillaBackend(o.url, secret.reveal(), workspace=o.workspace, key_source=ARGILLA_KEY_VAR, page_size=o.page_size)
    local = local_argilla_dir(settings)
    running = find_running(local)
    if running is not None:
        return ArgillaBackend(running["url"], read_login(local)["api_key"], workspace=o.workspace,
                              key_source=f"{local}/corpusforge-login.json", page_size=o.page_size)
    check_reachable(o.url)
    raise AnnotationError(
        f"no Argilla API key: set {ARGILLA_KEY_VAR} (the server's My settings -> API key), "
        f"or start the local server with `corpusforge annotate serve --backend argilla` in this workspace"
    )


def connect_label_studio(settings: Settings):
    """The backend for ``annotation.label_studio.url``; the token from the environment or the local server."""
    from annotation.backends.labelstudio.client import LabelStudioBackend
    from annotation.backends.labelstudio.server import DATABASE_FILE, find_running, read_login

    url = settings.annotation.label_studio.url
    o = settings.annotation.label_studio
    secret = get_secret("label_studio_token")
    if secret is not None:
        return LabelStudioBackend(url, secret.reveal(), token_source=TOKEN_VAR, export_batch=o.export_batch, pull_from=o.pull_from)
    local = local_server_dir(settings)
    if (local / "corpusforge-login.json").exists():
        running = find_running(local)
        login = read_login(local)
        # the local server's database: pulls read it directly (the backend checks it is this server's)
        return LabelStudioBackend(running["url"] if running else url, login["token"], token_source=f"{local}/corpusforge-login.json",
                                  export_batch=o.export_batch, database=local / DATABASE_FILE, pull_from=o.pull_from)
    # No token anywhere: say what to do, after checking whether a server is there at all.
    from annotation.backends.labelstudio.client import check_reachable

    check_reachable(url)
    raise AnnotationError(
        f"no Label Studio token: set {TOKEN_VAR} (the server's Account & Settings -> Access Token), "
        f"or start the local server with `corpusforge annotate serve` in this workspace"
    )


def load_gold(path: Path, spec: AnnotationSpec) -> dict[str, Answers]:
    """Known answers from JSONL lines ``{"item_id": ..., "answers": {...}}``; errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such gold file", "Give a JSONL file of {\"item_id\": ..., \"answers\": {...}} lines")
    gold: dict[str, Answers] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item_id, answers = row["item_id"], row["answers"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(path, f"not a gold line ({type(exc).__name__}: {exc})", 'Write {"item_id": "...", "answers": {...}}', line=n) from None
        problems = spec.check_answers(answers)
        if problems:
            raise InputError(path, "; ".join(problems), "Use the recipe's questions and labels", line=n)
        gold[item_id] = answers
    return gold


def sad_spec(settings: Settings, *, preannotator: str | None = None) -> AnnotationSpec:
    """The SAD recipe over the current build, with gold answers and the chosen pre-annotator."""
    from annotation.recipes.sad import sad_recipe, with_model_preannotations
    from pipelines.sad.pipeline import read_candidate

    tables = read_candidate(_ws(settings).stages(DATASET))
    spec = sad_recipe(tables["dialogues"], tables["utterances"], threshold=settings.sad.suggester.threshold)
    opts = settings.annotation.sad
    if opts.gold_file is not None:
        gold = load_gold(opts.gold_file, spec)
        unknown = sorted(set(gold) - {i.id for i in spec.items})
        if unknown:
            raise InputError(opts.gold_file, f"{len(unknown)} gold item(s) are not examples of the current build, e.g. {unknown[:3]}", "Rebuild SAD or fix the ids")
        spec = sad_recipe(tables["dialogues"], tables["utterances"], threshold=settings.sad.suggester.threshold, gold=gold)
    if (preannotator or opts.preannotator) == "model":
        model_dir = latest_model(settings)
        if model_dir is None:
            raise AnnotationError("no trained strategy classifier yet: run `corpusforge annotate train sad` (or use preannotator = \"rules\")")
        from annotation.assist import StrategyClassifier

        clf = StrategyClassifier.load(model_dir)
        ids = [i.id for i in spec.items]
        texts = [i.payload["target"] for i in spec.items]
        scores = clf.scores(texts)
        strategies = {i: sorted(l for l, s in sc.items() if s >= 0.5) for i, sc in zip(ids, scores)}
        confidence = {i: round(min(abs(s - 0.5) * 2 for s in sc.values()), 4) for i, sc in zip(ids, scores)}
        spec = with_model_preannotations(spec, clf.name, strategies, confidence)
    return spec


# --------------------------------------------------------------------------- push / pull


def routing_options(settings: Settings, *, all_items: bool = False, **overrides: Any):
    """The routing settings, with command-line overrides (None = keep); ``all_items`` routes every item."""
    from annotation.routing import RoutingOptions

    o = settings.annotation.sad
    values = dict(
        sample_size=o.sample_size, stratify_by=tuple(o.stratify_by), lowest_confidence_first=o.lowest_confidence_first,
        overlap=o.overlap, gold_fraction=o.gold_fraction, annotators=tuple(o.annotators), seed=o.seed,
    )
    values.update({k: v for k, v in overrides.items() if v is not None})
    if all_items:
        values["sample_size"] = None
    return RoutingOptions(**values)


def push(settings: Settings, *, progress: ProgressFn | None = None, preannotator: str | None = None, all_items: bool = False, **routing: Any):
    from annotation.routing import route

    spec = sad_spec(settings, preannotator=preannotator)
    state = project_state(settings)
    # The plan is a pure function of the build, the options and the seed: pushing again is a
    # no-op, and a larger sample_size adds the difference. Tasks already pushed are never re-sent.
    plan = route(spec, routing_options(settings, all_items=all_items, **routing))
    backend = connect(settings)
    return backend.push(spec, plan, state, chunk_size=push_chunk_size(settings), progress=progress), plan


def _gold(spec: AnnotationSpec) -> dict[str, Answers]:
    return {i.id: i.gold for i in spec.items if i.gold is not None}


def pull(settings: Settings, *, progress: ProgressFn | None = None):
    """Pull a snapshot, then write its agreement report. Returns (PullReport, report paths)."""
    spec = sad_spec(settings)
    backend = connect(settings)
    report = backend.pull(spec, project_state(settings), progress=progress)
    paths = agreement(settings, report.snapshot, spec=spec)[1]
    return report, paths


def current_judgments(snapshot: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """Latest judgment per (item, annotator) of a snapshot: an annotator's update wins."""
    import polars as pl

    df = pl.read_parquet(snapshot / "judgments.parquet").sort("updated_at", "annotation_id")
    latest = df.unique(subset=["item_id", "annotator"], keep="last", maintain_order=True)
    return [(r["item_id"], r["annotator"], json.loads(r["answers"])) for r in latest.iter_rows(named=True)]


def agreement(settings: Settings, snapshot: Path | None = None, *, spec: AnnotationSpec | None = None):
    from annotation.agreement import agreement_report

    state = project_state(settings)
    snapshot = snapshot or state.latest_snapshot()
    if snapshot is None:
        raise AnnotationError("no pulled annotations yet: run `corpusforge annotate pull sad`")
    spec = spec or sad_spec(settings)
    multi = {q.name: q.choices for q in spec.questions if q.kind == "multi_choice"}
    single = {q.name: q.choices for q in spec.questions if q.kind == "single_choice"}
    flags = tuple(q.name for q in spec.questions if q.kind == "flag")
    report = agreement_report(current_judgments(snapshot), multi, single, flags, gold=_gold(spec) or None)
    paths = report.write(root(settings) / "reports" / snapshot.name)
    return report, paths


# --------------------------------------------------------------------------- merge / adjudicate


def _decisions(settings: Settings, spec: AnnotationSpec) -> dict[str, tuple[str, Answers]]:
    snap = project_state(settings, adjudication=True).latest_snapshot()
    if snap is None:
        return {}
    return {item: (who, answers) for item, who, answers in current_judgments(snap)}


@dataclass
class MergeOutcome:
    dir: Path
    counts: dict[str, int]
    queue: int
    snapshot: str


def merge(settings: Settings) -> MergeOutcome:
    import polars as pl

    from annotation.merge import MergePolicy, merge as merge_judgments
    from schemas.annotation import LABELS

    state = project_state(settings)
    snapshot = state.latest_snapshot()
    if snapshot is None:
        raise AnnotationError("no pulled annotations yet: run `corpusforge annotate pull sad`")
    spec = sad_spec(settings)
    o = settings.annotation.sad
    policy = MergePolicy(min_annotators=o.min_annotators, min_agreement=o.min_agreement)
    result = merge_judgments(spec, current_judgments(snapshot), policy, decisions=_decisions(settings, spec))
    stamp = utc_stamp()
    out = root(settings) / "merged" / stamp
    tmp = root(settings) / "merged" / f".{stamp}.tmp"
    tmp.mkdir(parents=True)
    pl.DataFrame(result.rows(), schema=LABELS.polars_schema()).write_parquet(tmp / "labels.parquet")
    with (tmp / "queue.jsonl").open("w", encoding="utf-8") as f:
        for q in result.queue:
            f.write(json.dumps({"item_id": q.item_id, "reasons": list(q.reasons), "votes": q.votes, "answers_by_annotator": q.answers_by_annotator, "proposal": q.proposal}) + "\n")
    agreement_json = root(settings) / "reports" / snapshot.name / "agreement.json"
    atomic_write_json(tmp / "merge.json", {
        "policy": {"kind": policy.kind, "min_annotators": policy.min_annotators, "min_agreement": policy.min_agreement, "queue_flags": list(policy.queue_flags), "description": policy.describe()},
        "snapshot": snapshot.name,
        "adjudication_snapshot": (lambda s: s.name if s else None)(project_state(settings, True).latest_snapshot()),
        "counts": result.counts(),
        "agreement": read_json(agreement_json) if agreement_json.exists() else None,
    })
    make_read_only(tmp)
    tmp.rename(out)
    return MergeOutcome(out, result.counts(), len(result.queue), snapshot.name)


def latest_merge(settings: Settings) -> Path | None:
    d = root(settings) / "merged"
    if not d.exists():
        return None
    done = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "merge.json").exists())
    return done[-1] if done else None


def adjudication_push(settings: Settings, *, progress: ProgressFn | None = None):
    """Send the latest merge's queue to the adjudication project (every annotator's answers shown)."""
    from annotation.merge import QueuedItem, adjudication_spec
    from annotation.routing import RoutingOptions, route

    merged = latest_merge(settings)
    if merged is None:
        raise AnnotationError("nothing merged yet: run `corpusforge annotate merge sad`")
    queue = [
        QueuedItem(r["item_id"], tuple(r["reasons"]), r["votes"], tuple(sorted(r["answers_by_annotator"])), r["answers_by_annotator"], r["proposal"])
        for r in map(json.loads, (merged / "queue.jsonl").read_text(encoding="utf-8").splitlines())
    ]
    spec = adjudication_spec(sad_spec(settings), queue)
    plan = route(spec, RoutingOptions())
    return connect(settings).push(spec, plan, project_state(settings, adjudication=True), progress=progress), len(queue)


def adjudication_pull(settings: Settings):
    from annotation.merge import adjudication_spec

    state = project_state(settings, adjudication=True)
    spec = adjudication_spec(sad_spec(settings), [])
    return connect(settings).pull(spec, state)


# --------------------------------------------------------------------------- simulate


def simulate(settings: Settings, annotators: list[str], *, noise: float, seed: int = 0, truth_file: Path | None = None,
             truth_flip: float = 0.15, progress: ProgressFn | None = None, adjudication: bool = False):
    from annotation.merge import adjudication_spec
    from annotation.simulate import oracle_from_preannotations, simulate as run

    spec = sad_spec(settings)
    truth = load_gold(truth_file, spec) if truth_file else oracle_from_preannotations(spec, truth_flip, seed)
    truth.update(_gold(spec))  # gold items have known answers
    state = project_state(settings, adjudication)
    if adjudication:
        spec = adjudication_spec(spec, [])
    return run(connect(settings), spec, state, truth, annotators, noise=noise, seed=seed, overlap=settings.annotation.sad.overlap, progress=progress)


# --------------------------------------------------------------------------- model assistance


def latest_model(settings: Settings) -> Path | None:
    d = root(settings) / "models"
    if not d.exists():
        return None
    models = sorted((p for p in d.iterdir() if (p / "corpusforge-model.json").exists()), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


@dataclass
class TrainOutcome:
    model_dir: Path
    model_name: str
    n_train: int
    n_heldout: int
    table_markdown: str
    tables: dict[str, list[dict]]


def train(settings: Settings, *, progress: Callable[[int, float], None] | None = None) -> TrainOutcome:
    """Train the strategy classifier on merged human labels; compare it with the rules on held-out items."""
    import polars as pl

    from annotation.assist import StrategyClassifier, compare_markdown, prf_table, split_heldout, train_textcat
    from pipelines.sad.pipeline import read_candidate
    from schemas.sad import STRATEGIES

    merged = latest_merge(settings)
    if merged is None:
        raise AnnotationError("no merged human labels: run `corpusforge annotate merge sad` first")
    labels = pl.read_parquet(merged / "labels.parquet")
    tables = read_candidate(_ws(settings).stages(DATASET))
    utt = tables["utterances"].select("utterance_id", "text", "suggested_strategies")
    rows = labels.join(utt, left_on="item_id", right_on="utterance_id", how="inner")
    if rows.height < 10:
        raise AnnotationError(f"only {rows.height} merged labels match the current build; label at least 10 items before training")
    ids = rows["item_id"].to_list()
    texts = dict(zip(ids, rows["text"].to_list()))
    gold = {i: frozenset(json.loads(a)["strategies"]) for i, a in zip(ids, rows["answers"].to_list())}
    rules = {i: frozenset(STRATEGIES[k] for k in s) for i, s in zip(ids, rows["suggested_strategies"].to_list())}
    o = settings.annotation.sad
    train_ids, held = split_heldout(ids, o.heldout_fraction, o.seed)
    models = root(settings) / "models"
    models.mkdir(parents=True, exist_ok=True)
    tmp_dir = models / f".training-{utc_stamp()}"
    result = train_textcat([texts[i] for i in train_ids], [gold[i] for i in train_ids], STRATEGIES, tmp_dir, epochs=o.epochs, seed=o.seed, progress=progress)
    final = models / result.model_name
    if final.exists():  # same data, seed and epochs: the same model
        import shutil

        shutil.rmtree(tmp_dir)
    else:
        tmp_dir.rename(final)
    clf = StrategyClassifier.load(final)
    predicted = clf.predict([texts[i] for i in held]) if held else []
    tables_ = {
        "rules": prf_table([gold[i] for i in held], [rules[i] for i in held], STRATEGIES),
        clf.name: prf_table([gold[i] for i in held], list(predicted), STRATEGIES),
    }
    md = compare_markdown(tables_)
    evaluation = final / "evaluation.md"
    if not evaluation.exists():
        atomic_write_text(evaluation, f"# {clf.name} vs rules on {len(held)} held-out human-labelled items\n\nMerge: {merged.name}; trained on {len(train_ids)} items.\n\n{md}\n")
        atomic_write_json(final / "evaluation.json", {"merge": merged.name, "n_train": len(train_ids), "n_heldout": len(held), "tables": tables_})
    return TrainOutcome(final, clf.name, len(train_ids), len(held), md, tables_)
