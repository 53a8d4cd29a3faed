"""Annotation under load (issue 9, scope 3) against the real Label Studio server.

Simulated annotators submit continuously from several threads while the main thread pulls and
merges again and again (through ``corpusforge.ops.annotate``). At the end one more pull: every
annotation the threads got an id for is in the latest snapshot exactly once, and the merged
labels agree with it. The load held (annotations/s) and the pull latency are printed; the same
code, bigger, is ``bench/annotation_load.py``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from annotation.backends.labelstudio.client import LabelStudioBackend
from annotation.simulate import noisy
from annotation.spec import AnnotationSpec
from corpusforge.config import Settings, load_settings
from corpusforge.ops import annotate as ops_annotate

pytestmark = pytest.mark.slow


def synthetic_spec(items: int, seed: int = 0) -> AnnotationSpec:
    """The SAD recipe over a synthetic SAD-like candidate, trimmed to ``items`` items."""
    from annotation.recipes.sad import sad_recipe
    from pipelines.sad.synthetic import SAD_FULL_SIZE, sad_like_candidate

    tables = sad_like_candidate(items / SAD_FULL_SIZE["dialogues"] * 1.05, seed=seed)
    spec = sad_recipe(tables["dialogues"], tables["utterances"])
    assert len(spec.items) >= items, f"the synthetic candidate has only {len(spec.items)} items"
    return spec.with_items(spec.items[:items])


@dataclass
class LoadResult:
    submitted: dict[int, tuple[str, str]]  # annotation id -> (item id, annotator e-mail)
    submit_seconds: float
    pulls: list[float]  # seconds of each ops pull (export, snapshot, agreement report) while the annotators worked, then the final one
    exports: list[float]  # of those, the backend's pull alone (export + snapshot: PullReport.seconds)
    merges: int
    final_snapshot: Path
    final_merge: Path
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.submitted) / self.submit_seconds if self.submit_seconds else 0.0


def settings_for(url: str, workspace: Path, overlap: int) -> Settings:
    return load_settings(None, [f"annotation.label_studio.url='{url}'", f"annotation.sad.overlap={overlap}"], workspace=workspace)


def run_load(settings: Settings, spec: AnnotationSpec, url: str, token: str, *, annotators: int, overlap: int,
             min_pulls: int = 3, seed: int = 0) -> LoadResult:
    """Push ``spec`` (overlap ``overlap``), then ``annotators`` threads submit every routed
    (item, annotator) pair while the main thread pulls and merges until they are done (at least
    ``min_pulls`` pulls while they work); then one final pull and merge.

    ``ops.annotate.sad_spec`` must return ``spec`` (the caller patches it)."""
    report, plan = ops_annotate.push(settings, all_items=True)
    assert report.created == len(spec.items)
    names = [f"load{n}" for n in range(annotators)]
    admin = LabelStudioBackend(url, token)
    users = admin.ensure_annotators(names, simulated=True)
    emails = admin._users()  # user id -> e-mail, as pulls name annotators
    state = ops_annotate.project_state(settings)
    task_map = state.task_map()
    truth = {p.item_id: dict(p.answers) for p in spec.preannotations}
    # the routing has no named annotators: item n goes to annotators n, n+1, ... (as simulate does)
    jobs: dict[str, list[str]] = {name: [] for name in names}
    for n, item_id in enumerate(sorted(task_map)):
        for j in range(min(overlap, annotators)):
            jobs[names[(n + j) % annotators]].append(item_id)

    submitted: dict[int, tuple[str, str]] = {}
    errors: list[str] = []
    finished: list[float] = []
    lock = threading.Lock()

    def annotate(name: str) -> None:
        backend = LabelStudioBackend(url, token)  # one client per thread, like one browser per person
        rng = random.Random(f"{seed}:{name}")
        for item_id in jobs[name]:
            answers = noisy(spec, truth[item_id], 0.2, rng)
            try:
                ann_id = backend.submit(spec, state, item_id, users[name], answers, task_id=task_map[item_id])
            except Exception as exc:  # noqa: BLE001 - reported by the main thread
                with lock:
                    errors.append(f"{name} on {item_id}: {type(exc).__name__}: {exc}")
                return
            with lock:
                if ann_id in submitted:
                    errors.append(f"annotation id {ann_id} returned twice")
                submitted[ann_id] = (item_id, emails[users[name]])
        with lock:
            finished.append(time.perf_counter())

    threads = [threading.Thread(target=annotate, args=(n,), name=f"annotator-{n}") for n in names]
    pulls: list[float] = []
    exports: list[float] = []
    merges = 0
    started = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads) or len(pulls) < min_pulls:
        t0 = time.perf_counter()
        pulled, _ = ops_annotate.pull(settings)
        pulls.append(time.perf_counter() - t0)
        exports.append(pulled.seconds)
        seen = pl.read_parquet(pulled.snapshot / "judgments.parquet")["annotation_id"]
        assert seen.n_unique() == seen.len(), "an annotation twice in one snapshot"
        ops_annotate.merge(settings)
        merges += 1
    for t in threads:
        t.join()
    submit_seconds = max((max(finished) if finished else time.perf_counter()) - started, 1e-9)
    t0 = time.perf_counter()
    final, _ = ops_annotate.pull(settings)
    pulls.append(time.perf_counter() - t0)
    exports.append(final.seconds)
    merged = ops_annotate.merge(settings)
    return LoadResult(submitted, submit_seconds, pulls, exports, merges + 1, final.snapshot, merged.dir, errors)


def describe(result: LoadResult, annotators: int) -> str:
    during, exports = sorted(result.pulls[:-1]), sorted(result.exports[:-1])
    return (f"load: {len(result.submitted)} annotations by {annotators} threads in {result.submit_seconds:.1f} s "
            f"= {result.rate:.1f} annotations/s; {len(during)} pulls+merges meanwhile; pull latency (with agreement "
            f"report) median {during[len(during) // 2]:.2f} s, max {during[-1]:.2f} s (export+snapshot alone median "
            f"{exports[len(exports) // 2]:.2f} s); final pull {result.pulls[-1]:.2f} s")


def check_complete(result: LoadResult, spec: AnnotationSpec) -> None:
    """Every submitted annotation exactly once in the final snapshot; merged labels consistent with it."""
    assert not result.errors, result.errors[:5]
    judgments = pl.read_parquet(result.final_snapshot / "judgments.parquet")
    ids = judgments["annotation_id"].to_list()
    assert len(ids) == len(set(ids)), "an annotation appears twice in the latest snapshot"
    assert set(ids) == set(result.submitted), (
        f"missing {sorted(set(result.submitted) - set(ids))[:5]}, unexpected {sorted(set(ids) - set(result.submitted))[:5]}"
    )
    for row in judgments.iter_rows(named=True):
        assert (row["item_id"], row["annotator"]) == result.submitted[row["annotation_id"]]
    summary = json.loads((result.final_snapshot / "summary.json").read_text())
    assert summary["judgments"] == len(result.submitted) and summary["rejected"] == 0
    labels = pl.read_parquet(result.final_merge / "labels.parquet")
    items = set(judgments["item_id"])
    assert labels["item_id"].n_unique() == labels.height
    assert set(labels["item_id"]) <= items
    merge_info = json.loads((result.final_merge / "merge.json").read_text())
    assert merge_info["snapshot"] == result.final_snapshot.name
    queued = [json.loads(line)["item_id"] for line in (result.final_merge / "queue.jsonl").read_text().splitlines()]
    assert set(labels["item_id"]) | set(queued) == items, "an annotated item is neither merged nor queued"
    by_item = judgments.group_by("item_id").agg(pl.col("annotator").sort())
    annotators = dict(zip(by_item["item_id"], by_item["annotator"].to_list()))
    for row in labels.iter_rows(named=True):
        assert sorted(row["annotators"]) == annotators[row["item_id"]], row["item_id"]


@pytest.mark.parametrize("source", ["export API", "local database"])
def test_pulls_and_merges_while_annotators_submit_keep_every_annotation_once(label_studio, tmp_path, monkeypatch, source):
    # small enough for the suite on a loaded 2-core machine; bench/annotation_load.py runs it bigger
    items, overlap, annotators = 60, 3, 3
    spec = synthetic_spec(items)
    ws = tmp_path / "ws"
    if source == "export API":  # a server reached by URL and token
        monkeypatch.setenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", label_studio.token)
    else:  # the workspace's own server: pulls read its database while the annotators write to it
        monkeypatch.delenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", raising=False)
        (ws / "annotation").mkdir(parents=True)
        (ws / "annotation" / "label-studio").symlink_to(label_studio.data_dir)
    monkeypatch.setattr(ops_annotate, "sad_spec", lambda settings, preannotator=None: spec)
    settings = settings_for(label_studio.url, ws, overlap)
    sources = []
    real_pull = ops_annotate.pull

    def pull(*args, **kwargs):
        report, paths = real_pull(*args, **kwargs)
        sources.append(report.source.split(" /")[0])
        return report, paths

    monkeypatch.setattr(ops_annotate, "pull", pull)
    result = run_load(settings, spec, label_studio.url, label_studio.token, annotators=annotators, overlap=overlap)
    check_complete(result, spec)
    assert len(result.submitted) == items * overlap
    assert set(sources) == {source}, sources
    print("\n" + describe(result, annotators))
    assert len(result.pulls) - 1 >= 3
