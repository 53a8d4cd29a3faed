"""reLAIONet proofreading end to end: push the candidate images, pull people's verdicts as
corrections (with agreement on the double-proofread share), and (for demos and tests) simulate
proofreaders. The command line calls these.

Workspace layout (``<workspace>/annotation/relaionet/``)::

    (the image files are in the workspace's media folder: ``annotation/media/relaionet/<sample id>.<ext>``)
    label-studio/                     the proofreading project's state (annotation.store); argilla/ with Argilla
    corrections/<snapshot>/           corrections.parquet and summary.json (with agreement) of each pull

Images: Label Studio serves local files only from below its document root
(``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``): :func:`document_root` is
``annotation.relaionet.document_root``, or the workspace's media folder
(``<workspace>/annotation/media``) when that is null, which is what ``corpusforge annotate serve``
gives the local server: it serves nothing else of the workspace (not the stages, not its own
database). The image files (:func:`images_dir`, ``annotation/media/relaionet/``) must lie below it.
Argilla gets them inlined into its records.

The items are the candidates of the current build (``pipelines.relaionet.pipeline.read_candidates``),
or the frame given as ``candidates`` (tests, demos). Their proposed class is ``caption_class``,
which corrections never change, so pushing after a rebuild that applied corrections is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from annotation.spec import AnnotationSpec, Answers
from corpusforge.config import Settings
from corpusforge.ops.annotate import AnnotationError, ProgressFn, connect, local_server_dir, push_chunk_size
from corpusforge.ops.review_rounds import PullOutcome, RoundPaths, latest_round, pull_corrections, simulate_round
from corpusforge.workspace import Workspace
from pipelines.core.errors import InputError
from pipelines.core.fileio import atomic_write_bytes

DATASET = "relaionet"
PATHS = RoundPaths(DATASET)
root, project_state = PATHS.root, PATHS.state
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
MAGIC = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF8", "gif"), (b"BM", "bmp"))


def document_root(settings: Settings) -> Path:
    """The folder Label Studio serves local files from: the setting, or the workspace's media folder."""
    configured = settings.annotation.relaionet.document_root
    return Path(configured or Workspace.at(settings.workspace.path).media).absolute()


def images_dir(settings: Settings) -> Path:
    """``<workspace>/annotation/media/relaionet``: the image files annotators are shown."""
    return Workspace.at(settings.workspace.path).media / DATASET


def read_glosses(path: Path | None = None) -> list[str]:
    """The WordNet gloss of each class id (the bundled class file by default)."""
    from pipelines.relaionet.classes import read_class_info
    from schemas.relaionet import CLASS_FILE

    return read_class_info(Path(str(path or CLASS_FILE)))["gloss"].to_list()


def read_current_candidates(settings: Settings) -> pl.DataFrame:
    """The CANDIDATES rows of the current build (``corpusforge build relaionet``)."""
    from pipelines.relaionet.pipeline import read_candidates

    return read_candidates(Workspace.at(settings.workspace.path).stages(DATASET))


# --------------------------------------------------------------------------- image files


def _extension(data: bytes, path: str | None) -> str:
    for magic, ext in MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    suffix = Path(path or "").suffix.lower().lstrip(".")
    return suffix if suffix.isalnum() else "bin"


def image_file_name(sample_id: str, data: bytes, path: str | None = None) -> str:
    """``<sample id>.<ext>``; an id that is not a safe file name gets a hash-suffixed sanitised name."""
    stem = sample_id
    if not SAFE_NAME.fullmatch(sample_id):
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", sample_id)[:60].lstrip(".") + "-" + hashlib.sha256(sample_id.encode()).hexdigest()[:12]
    return f"{stem}.{_extension(data, path)}"


def image_paths(settings: Settings, candidates: pl.DataFrame, *, write: bool) -> tuple[dict[str, Path], int]:
    """``sample_id -> image file`` under :func:`images_dir`, and how many files were written.

    With ``write``, each image's bytes are written atomically unless an identical file is there.
    """
    folder = images_dir(settings)
    paths: dict[str, Path] = {}
    written = 0
    for sid, image in candidates.select("sample_id", "image").iter_rows():
        data = (image or {}).get("bytes")
        if not data:
            raise AnnotationError(f"candidate {sid!r} has no image bytes; rebuild relaionet")
        path = folder / image_file_name(sid, data, image.get("path"))
        paths[sid] = path
        if write and not (path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data):
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
            written += 1
    return paths, written


# --------------------------------------------------------------------------- the round


def proofreading_spec(settings: Settings, candidates: pl.DataFrame | None = None, *, write_images: bool = False) -> tuple[AnnotationSpec, int]:
    """The recipe over the candidates (with their image files), and how many files were written."""
    from annotation.recipes.relaionet import proofreading_recipe

    rows = read_current_candidates(settings) if candidates is None else candidates
    paths, written = image_paths(settings, rows, write=write_images)
    o = settings.annotation.relaionet
    return proofreading_recipe(rows, paths, read_glosses(), double_fraction=o.double_fraction, seed=o.seed), written


def _backend(settings: Settings):
    """The backend; Label Studio's is told where the server serves local files from (a local server
    of this workspace that serves another folder is an error saying what to do). Argilla needs no
    document root: the images travel inside the records as data URLs."""
    from annotation.backends.labelstudio.server import find_running, running_document_root

    backend = connect(settings)
    if settings.annotation.backend == "argilla":
        return backend
    wanted = document_root(settings)
    running = find_running(local_server_dir(settings))
    served = running_document_root(local_server_dir(settings))
    if running and running["url"] == backend.url and served is not None and served.resolve() != wanted.resolve():
        raise AnnotationError(
            f"the local Label Studio at {backend.url} serves local files from {served}, but reLAIONet's images are "
            f"addressed from {wanted}: set annotation.relaionet.document_root={served}, or restart the server with "
            f"`corpusforge annotate serve` using the same settings"
        )
    backend.document_root = wanted
    return backend


def push(settings: Settings, candidates: pl.DataFrame | None = None, *, progress: ProgressFn | None = None):
    """Write the image files, then create or update the project with the routed items (idempotent).

    Returns (PushReport, RoutingPlan, image files written).
    """
    from annotation.recipes.relaionet import route_double

    spec, written = proofreading_spec(settings, candidates, write_images=True)
    o = settings.annotation.relaionet
    try:
        plan = route_double(spec, o.annotators, seed=o.seed)
    except ValueError as exc:
        raise AnnotationError(f"{exc}: set annotation.relaionet.annotators, e.g. --set 'annotation.relaionet.annotators=[\"anna\", \"ben\"]'") from None
    report = _backend(settings).push(spec, plan, project_state(settings), chunk_size=push_chunk_size(settings), progress=progress)
    return report, plan, written


def _add_agreement(corrections: pl.DataFrame, folder: Path) -> Mapping[str, Any]:
    from annotation.recipes.relaionet import agreement_summary

    return {"agreement": agreement_summary(corrections)}


def pull(settings: Settings, candidates: pl.DataFrame | None = None, *, progress: ProgressFn | None = None) -> PullOutcome:
    """Pull a snapshot of the verdicts and turn it into corrections; agreement goes into the summary
    (``outcome.added["agreement"]``)."""
    from annotation.recipes.relaionet import corrections_from_judgments

    spec, _ = proofreading_spec(settings, candidates)
    return pull_corrections(settings, spec, project_state(settings), PATHS.corrections(settings), corrections_from_judgments,
                            add_files=_add_agreement, progress=progress)


def latest_corrections(settings: Settings) -> Path | None:
    return latest_round(PATHS.corrections(settings))


# --------------------------------------------------------------------------- simulation

CONFIRMED: Answers = {"verdict": "confirm"}


def load_answer_key(path: Path) -> dict[str, Any]:
    """An answer key from JSONL lines ``{"sample_id": ..., "answers": {...}}``, optionally with
    ``"annotator": name`` (that proofreader's answer only). Errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such answer file", 'Give a JSONL file of {"sample_id": ..., "answers": {...}} lines')
    key: dict[str, Any] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            sid, answers, who = str(row["sample_id"]), dict(row["answers"]), row.get("annotator")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(path, f"not an answer line ({type(exc).__name__}: {exc})",
                             'Write {"sample_id": "...", "answers": {"verdict": "confirm"}} (optionally "annotator": "name")', line=n) from None
        if who is None:
            key[sid] = answers
        else:
            key.setdefault(sid, {})[str(who)] = answers
    return key


def _answers_for(spec: AnnotationSpec, entry: Mapping[str, Any] | None, annotator: str) -> Answers:
    """An entry is one answer set for everyone (its keys are question names) or ``{annotator: answers}``."""
    if entry is None:
        return CONFIRMED
    names = {q.name for q in spec.questions}
    if set(entry) & names:
        return entry
    return entry.get(annotator, CONFIRMED)


def simulate(settings: Settings, answers: Mapping[str, Any] | None = None, candidates: pl.DataFrame | None = None, *,
             seed: int = 0, progress: ProgressFn | None = None):
    """Every pushed image answered by its assigned (simulated) proofreaders through the real API.

    By default every proofreader confirms; ``answers`` (``sample_id -> answers``, or
    ``sample_id -> {annotator: answers}`` for proofreaders who disagree) says otherwise. Answers
    the recipe does not accept are refused before anything is submitted. Resumable: a rerun
    submits only what is missing. Returns the summed :class:`annotation.simulate.SimulationReport`.
    """
    from annotation.simulate import SimulationReport

    spec, _ = proofreading_spec(settings, candidates)
    names = list(dict.fromkeys(settings.annotation.relaionet.annotators))
    if not names:
        raise AnnotationError("no proofreaders configured: set annotation.relaionet.annotators")
    key = dict(answers or {})
    unknown = sorted(set(key) - {i.id for i in spec.items})
    if unknown:
        raise AnnotationError(f"the answer key names {len(unknown)} image(s) that are not candidates, e.g. {', '.join(unknown[:3])}")
    for sid, entry in key.items():
        for who in names:
            problems = spec.check_answers(_answers_for(spec, entry, who))
            if problems:
                raise AnnotationError(f"answer key for {sid!r} ({who}): {'; '.join(problems)}")
    total = SimulationReport({}, 0, 0, 0, 0)
    state = project_state(settings)
    for who in names:  # one proofreader at a time: each gets their own answers
        truth = {i.id: _answers_for(spec, key.get(i.id), who) for i in spec.items}
        report = simulate_round(settings, spec, state, truth, [who], seed=seed, overlap=1, progress=progress)
        total.annotators.update(report.annotators)
        total.submitted += report.submitted
        total.already += report.already
    return total
