"""Benchmark: Label Studio push and pull of 100,000 SAD tasks, against one task per request.

    python bench/annotate_labelstudio.py                        # the issue's benchmark
    python bench/annotate_labelstudio.py --items 10000 --chunk-size 2500   # a quick look

Starts its own Label Studio (``LocalLabelStudio``) on a fresh data dir and a free port, builds the
SAD recipe's spec over a synthetic SAD-like candidate (scaled to at least ``--items`` dialogues,
then trimmed to ``--items``), routes every item (``RoutingOptions()``) and measures:

* push: ``LabelStudioBackend.push`` of every item with its pre-annotation (chunked imports of
  ``--chunk-size`` tasks). Baseline: what a naive script does, ``tasks.create`` then
  ``predictions.create`` for one item after the other, on ``--baseline-sample`` items of another
  project, extrapolated linearly to ``--items``.
* pull: ``LabelStudioBackend.pull`` end to end (read, parse, snapshot) of a second project that
  holds ``--items`` tasks with ``--annotators`` annotations each, twice: as ``corpusforge annotate
  pull`` does against the local server (from its SQLite database, read-only), and through the
  export API (what it does against a remote server). Both must count what was set up and give
  the same judgments. That project is set up, untimed,
  by importing the tasks (with their predictions) and embedded annotations credited to simulated
  users through ``completed_by``, about 1% of them skipped (``was_cancelled``). Baseline: one
  ``tasks.get`` per task (the task with its annotations, each parsed with ``from_result``) on
  ``--baseline-sample`` tasks, extrapolated linearly.

Prints one table (seconds, items/s, extrapolated baseline, speed-up, target: push < 120 s and
pull < 60 s at 100,000 items) and the peak RSS of the benchmark process and of the server, and
writes the figures to bench/out/annotate_labelstudio.json. The load average before and after each
timed step is printed too: on a 2-core machine anything else running shows in the timings.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT_JSON = REPO / "bench" / "out" / "annotate_labelstudio.json"
TARGETS_S = {"push": 120.0, "pull": 60.0}  # at TARGET_ITEMS items
TARGET_ITEMS = 100_000
SETUP_CHUNK = 1000  # tasks per import while preparing the pull project


def _load() -> float:
    return os.getloadavg()[0]


def _timed(what: str, fn: Callable[[], Any]) -> tuple[Any, float, dict[str, float]]:
    """Run ``fn``; return its value, wall seconds and the 1-minute load average around it."""
    before = _load()
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    load = {"before": round(before, 2), "after": round(_load(), 2)}
    print(f"  {what}: {seconds:.1f} s (load average {load['before']:.2f} -> {load['after']:.2f})", flush=True)
    return value, seconds, load


def _peak_rss_of(pid: int | None) -> int | None:
    """Peak resident memory (bytes) of a live process, from /proc (VmHWM)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def build_spec(items: int, seed: int):
    from annotation.recipes.sad import sad_recipe
    from pipelines.sad.synthetic import SAD_FULL_SIZE, sad_like_candidate

    scale = items / SAD_FULL_SIZE["dialogues"] * 1.01  # a little more, then trim to the exact count
    tables = sad_like_candidate(scale, seed=seed)
    spec = sad_recipe(tables["dialogues"], tables["utterances"])
    if len(spec.items) < items:
        raise SystemExit(f"the synthetic candidate has {len(spec.items)} dialogues, fewer than --items {items}")
    return spec.with_items(spec.items[:items])


def _annotation_answers(pre: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """An annotator's answers: the pre-annotation, changed now and then (so answers differ)."""
    from schemas.sad import STRATEGIES

    answers = {"strategies": list(pre["strategies"]), "stance": pre["stance"], "unclear": rng.random() < 0.05}
    if rng.random() < 0.3:
        answers["strategies"] = [rng.choice(STRATEGIES)]
    if rng.random() < 0.2:
        answers["stance"] = "support" if answers["stance"] == "oppose" else "oppose"
    return answers


def prepare_pull_project(backend, spec, plan, state, annotators: int, seed: int) -> dict[str, int]:
    """Untimed set-up: a project of ``spec`` whose every task holds ``annotators`` annotations.

    Imports the tasks as a push would (data and prediction), each with embedded annotations
    credited to simulated users (``completed_by``), about 1% skipped; records the item -> task map
    in ``state`` so that ``pull`` finds it. Returns counts.
    """
    from annotation.backends.labelstudio.config import task_payload, to_result

    users = list(backend.ensure_annotators([f"bench-annotator-{k + 1}" for k in range(annotators)], simulated=True).values())
    project_id = backend.ensure_project(spec, state)
    pre = {p.item_id: p for p in spec.preannotations}
    rng = random.Random(seed)
    counts = {"tasks": 0, "annotations": 0, "skipped": 0}
    assignments = plan.assignments
    for start in range(0, len(assignments), SETUP_CHUNK):
        chunk = assignments[start : start + SETUP_CHUNK]
        rows = []
        for a in chunk:
            row = task_payload(spec, a, pre[a.item.id])
            anns = []
            for user in users:
                if rng.random() < 0.01:
                    anns.append({"completed_by": user, "result": [], "was_cancelled": True})
                    counts["skipped"] += 1
                else:
                    anns.append({"completed_by": user, "result": to_result(spec, _annotation_answers(pre[a.item.id].answers, rng)), "was_cancelled": False})
            row["annotations"] = anns
            rows.append(row)
            counts["annotations"] += len(anns)
        resp = backend.client.projects.import_tasks(project_id, request=rows, return_task_ids=True)
        task_ids = list(resp.task_ids or [])
        if len(task_ids) != len(chunk):
            raise SystemExit(f"set-up import returned {len(task_ids)} task ids for {len(chunk)} tasks")
        state.record_tasks(zip([a.item.id for a in chunk], task_ids))
        counts["tasks"] += len(chunk)
    return counts


def push_baseline(client, spec, plan, sample: int, seed: int) -> tuple[float, int]:
    """One task per request, as a naive script does: tasks.create, then predictions.create."""
    from annotation.backends.labelstudio.config import label_config, task_payload

    project = client.projects.create(title="SAD push baseline (one task per request)", label_config=label_config(spec))
    pre = {p.item_id: p for p in spec.preannotations}
    chosen = random.Random(seed).sample(list(plan.assignments), min(sample, len(plan.assignments)))
    start = time.perf_counter()
    for a in chosen:
        row = task_payload(spec, a, pre[a.item.id])
        task = client.tasks.create(project=project.id, data=row["data"])
        p = row["predictions"][0]
        client.predictions.create(task=task.id, result=p["result"], model_version=p["model_version"], score=p["score"])
    return time.perf_counter() - start, len(chosen)


def pull_baseline(client, spec, state, sample: int, seed: int) -> tuple[float, int, int]:
    """One request per task: tasks.get (with its annotations), each annotation through from_result."""
    from annotation.backends.labelstudio.config import from_result

    task_ids = sorted(state.task_map().values())
    chosen = random.Random(seed).sample(task_ids, min(sample, len(task_ids)))
    annotations = 0
    start = time.perf_counter()
    for task_id in chosen:
        task = client.tasks.get(task_id)
        for ann in task.annotations or []:
            ann = ann if isinstance(ann, dict) else ann.dict()
            annotations += 1
            if not ann.get("was_cancelled"):
                from_result(spec, ann.get("result") or [])
    return time.perf_counter() - start, len(chosen), annotations


def _check_pull(report, expected: dict[str, int], source: str) -> None:
    got = {"tasks": report.tasks, "annotations": report.annotations, "skipped": report.skipped,
           "judgments": report.judgments, "rejected": report.rejected, "deleted_tasks": len(report.deleted_tasks)}
    if got != expected:
        raise SystemExit(f"the pull's counts from the {source} {got} differ from what was set up {expected}")
    print(f"  pulled from the {report.source}: {report.tasks:,} tasks, {report.annotations:,} annotations, {report.judgments:,} judgments, "
          f"{report.skipped:,} skipped, {report.rejected} rejected: as set up", flush=True)


def main() -> None:
    from annotation.backends.labelstudio import client as ls_client
    from annotation.backends.labelstudio.client import LabelStudioBackend

    default_chunk = inspect.signature(LabelStudioBackend.push).parameters["chunk_size"].default
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=TARGET_ITEMS, help="Items pushed, and annotated tasks pulled (default 100,000).")
    ap.add_argument("--baseline-sample", type=int, default=300, help="Items of the one-per-request baselines, extrapolated linearly.")
    ap.add_argument("--workdir", type=Path, default=None, help="Where the run's data dir goes (kept); default: a temporary dir, removed.")
    ap.add_argument("--chunk-size", type=int, default=default_chunk, help=f"Tasks per import request of the push (default: the backend's, {default_chunk}).")
    ap.add_argument("--annotators", type=int, default=3, help="Annotations per task in the pulled project (default 3).")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from annotation.backends.labelstudio.server import DATABASE_FILE, LocalLabelStudio
    from annotation.routing import RoutingOptions, route
    from annotation.store import ProjectState

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="annotate-labelstudio-", dir=args.workdir))
    else:
        root = Path(tempfile.mkdtemp(prefix="annotate-labelstudio-"))
    print(f"Label Studio push/pull benchmark: {args.items:,} items, {os.cpu_count()} cores, run dir {root}", flush=True)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "items": args.items,
                               "chunk_size": args.chunk_size, "annotators": args.annotators, "baseline_sample": args.baseline_sample}
    server = LocalLabelStudio(root / "label-studio", port=0)
    try:
        spec, build_s, _ = _timed(f"spec of {args.items:,} items (sad_recipe over sad_like_candidate)", lambda: build_spec(args.items, args.seed))
        plan = route(spec, RoutingOptions())
        _, start_s, _ = _timed("server start (fresh data dir from the template)", server.start)
        results.update(spec_seconds=round(build_s, 2), server_start_seconds=round(start_s, 2), server_url=server.url)
        backend = LabelStudioBackend(server.url, server.token)

        # -- push
        push_state = ProjectState(root / "push-state")
        report, push_s, push_load = _timed(f"push of {args.items:,} tasks, chunks of {args.chunk_size}",
                                           lambda: backend.push(spec, plan, push_state, chunk_size=args.chunk_size))
        if report.created != args.items:
            raise SystemExit(f"push created {report.created} tasks, expected {args.items}")
        (base_s, base_n), _, push_base_load = _timed(
            f"push baseline, {args.baseline_sample} items one per request",
            lambda: push_baseline(backend.client, spec, plan, args.baseline_sample, args.seed))
        results["push"] = {"seconds": round(push_s, 2), "items": args.items, "load": push_load,
                           "baseline_sample": base_n, "baseline_sample_seconds": round(base_s, 2),
                           "baseline_seconds": round(base_s / base_n * args.items, 1), "baseline_load": push_base_load}

        # -- pull
        pull_spec = dataclasses.replace(spec, title="SAD pull benchmark")
        pull_state = ProjectState(root / "pull-state")
        counts, setup_s, setup_load = _timed(
            f"pull set-up (untimed in the table): import {args.items:,} tasks with {args.annotators} annotations each",
            lambda: prepare_pull_project(backend, pull_spec, plan, pull_state, args.annotators, args.seed))
        results["pull_setup"] = {**counts, "seconds": round(setup_s, 2), "load": setup_load}
        expected = {"tasks": counts["tasks"], "annotations": counts["annotations"], "skipped": counts["skipped"],
                    "judgments": counts["annotations"] - counts["skipped"], "rejected": 0, "deleted_tasks": 0}
        local = LabelStudioBackend(server.url, server.token, database=server.data_dir / DATABASE_FILE)  # as `corpusforge annotate pull`
        pulled, pull_s, pull_load = _timed(f"pull of {args.items:,} annotated tasks from the local database", lambda: local.pull(pull_spec, pull_state))
        _check_pull(pulled, expected, "local database")
        via_api, api_s, api_load = _timed(f"pull of {args.items:,} annotated tasks through the export API", lambda: backend.pull(pull_spec, pull_state))
        _check_pull(via_api, expected, "export API")
        if via_api.changes != {"new": 0, "updated": 0, "deleted": 0}:
            raise SystemExit(f"the export API's snapshot differs from the local database's: {via_api.changes}")
        (pbase_s, pbase_n, pbase_ann), _, pull_base_load = _timed(
            f"pull baseline, {args.baseline_sample} tasks one per request",
            lambda: pull_baseline(backend.client, pull_spec, pull_state, args.baseline_sample, args.seed))
        baseline = {"baseline_sample": pbase_n, "baseline_sample_annotations": pbase_ann, "baseline_sample_seconds": round(pbase_s, 2),
                    "baseline_seconds": round(pbase_s / pbase_n * pulled.tasks, 1), "baseline_load": pull_base_load}
        for key, report, seconds, load in (("pull", pulled, pull_s, pull_load), ("pull_api", via_api, api_s, api_load)):
            results[key] = {"seconds": round(seconds, 2), "items": report.tasks, "annotations": report.annotations, "source": report.source,
                            "judgments": report.judgments, "export_mb": round((report.snapshot / "export.json").stat().st_size / 1e6, 1),
                            "load": load, **baseline}
        results["pull_api"].update(export_batch=getattr(ls_client, "EXPORT_BATCH", None), export_workers=getattr(ls_client, "EXPORT_WORKERS", None))
        results["server_peak_rss_bytes"] = _peak_rss_of(server.pid)
    finally:
        server.stop()
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    results["bench_peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

    print()
    print(f"Label Studio 1.23.2 (LocalLabelStudio), {args.items:,} SAD items, "
          f"{os.cpu_count()} cores; baselines measured on {args.baseline_sample} items and extrapolated linearly")
    header = f"{'operation':<48}{'items':>9}{'seconds':>9}{'items/s':>9}{'baseline s':>12}{'speed-up':>10}{'target':>10}{'met':>5}"
    print(header)
    rows = (("push", "push", f"push with pre-annotations (chunks of {args.chunk_size})"),
            ("pull", "pull", f"pull, local database ({args.annotators} ann./task)"),
            ("pull_api", "pull", f"pull, export API ({args.annotators} ann./task)"))
    for key, kind, label in rows:
        r = results[key]
        target = TARGETS_S[kind] * args.items / TARGET_ITEMS
        met = r["seconds"] < target
        r.update(items_per_s=round(r["items"] / r["seconds"], 1), speedup=round(r["baseline_seconds"] / r["seconds"], 1),
                 target_seconds=round(target, 1), met=met)
        print(f"{label:<48}{r['items']:>9,}{r['seconds']:>9.1f}{r['items_per_s']:>9,.0f}{r['baseline_seconds']:>12,.0f}"
              f"{r['speedup']:>9.1f}x{'< ' + format(target, '.3g') + ' s':>10}{'yes' if met else 'no':>5}")
    print(f"peak RSS: benchmark process {results['bench_peak_rss_bytes'] / 2**30:.2f} GB"
          + (f", Label Studio server {results['server_peak_rss_bytes'] / 2**30:.2f} GB" if results.get("server_peak_rss_bytes") else ""))
    print(f"pull set-up (not timed above): {results['pull_setup']['seconds']:.0f} s for {results['pull_setup']['tasks']:,} tasks "
          f"with {results['pull_setup']['annotations']:,} annotations")
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {OUT_JSON}")


if __name__ == "__main__":
    main()
