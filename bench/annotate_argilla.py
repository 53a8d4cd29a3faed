"""Benchmark: push and pull of the same SAD items on Label Studio and on Argilla, side by side.

    python bench/annotate_argilla.py                      # 1,000 records, one simulated annotator
    python bench/annotate_argilla.py --items 300 --annotators 2

Starts its own local servers (``LocalLabelStudio``, ``LocalArgilla``) on fresh data dirs and free
ports, builds the SAD recipe over a synthetic SAD-like candidate (``bench/annotate_labelstudio.py``'s
``build_spec``), routes every item and, per backend, times:

* push: ``backend.push`` of every item with its pre-annotation (a fresh project / dataset);
* a second push (nothing to do: the idempotency check);
* pull: ``backend.pull`` end to end (listing, parsing, snapshot) after ``--annotators`` simulated
  annotators answered every item (``annotation.simulate``; not timed, its seconds are printed).

Prints one table and writes bench/out/annotate_argilla.json. The load average around each step is
recorded: other jobs on the machine show in the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

OUT_JSON = REPO / "bench" / "out" / "annotate_argilla.json"


def _timed(fn):
    before = os.getloadavg()[0]
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start, {"load_before": round(before, 2), "load_after": round(os.getloadavg()[0], 2)}


def run_backend(name: str, backend, spec, plan, state_dir: Path, annotators: int, seed: int) -> dict:
    from annotation.simulate import oracle_from_preannotations, simulate
    from annotation.store import ProjectState

    state = ProjectState(state_dir / name)
    push, push_s, push_load = _timed(lambda: backend.push(spec, plan, state))
    again, again_s, _ = _timed(lambda: backend.push(spec, plan, state))
    truth = oracle_from_preannotations(spec, 0.15, seed)
    names = [f"bench-{k + 1}" for k in range(annotators)]
    sim, sim_s, _ = _timed(lambda: simulate(backend, spec, state, truth, names, noise=0.1, seed=seed, overlap=annotators))
    pull, pull_s, pull_load = _timed(lambda: backend.pull(spec, state))
    return {
        "push_s": round(push_s, 2), "created": push.created, "second_push_s": round(again_s, 2), "second_push_created": again.created,
        "simulate_s": round(sim_s, 2), "submitted": sim.submitted,
        "pull_s": round(pull_s, 2), "pulled_records": pull.tasks, "judgments": pull.judgments,
        "push_load": push_load, "pull_load": pull_load,
    }


def main() -> None:
    from annotate_labelstudio import build_spec

    from annotation.backends.argilla.backend import ArgillaBackend
    from annotation.backends.argilla.server import LocalArgilla
    from annotation.backends.argilla.server import ensure_environment as argilla_environment
    from annotation.backends.argilla.server import ensure_template as argilla_template
    from annotation.backends.labelstudio.client import LabelStudioBackend
    from annotation.backends.labelstudio.server import LocalLabelStudio, ensure_environment, ensure_template
    from annotation.routing import RoutingOptions, route

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1000, help="Records pushed and pulled per backend (default 1,000).")
    ap.add_argument("--annotators", type=int, default=1, help="Simulated annotators answering every item before the pull.")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    spec = build_spec(args.items, args.seed)
    plan = route(spec, RoutingOptions(overlap=args.annotators))
    work = Path(tempfile.mkdtemp(prefix="bench-annotate-"))
    results = {}
    try:
        ensure_environment()
        ensure_template()
        argilla_environment()
        argilla_template()
        with LocalLabelStudio(work / "label-studio", port=0) as ls:
            results["label_studio"] = run_backend("label-studio", LabelStudioBackend(ls.url, ls.token), spec, plan, work, args.annotators, args.seed)
        with LocalArgilla(work / "argilla", port=0) as ar:
            results["argilla"] = run_backend("argilla", ArgillaBackend(ar.url, ar.api_key, workspace="bench"), spec, plan, work, args.annotators, args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [("push (s)", "push_s"), ("second push (s)", "second_push_s"), ("records/s pushed", None),
            ("simulate, untimed (s)", "simulate_s"), ("pull (s)", "pull_s"), ("records/s pulled", None), ("judgments", "judgments")]
    print(f"\n{args.items:,} SAD records, {args.annotators} annotator(s) each\n")
    print(f"| {'step':<24} | {'Label Studio':>12} | {'Argilla':>12} |")
    print(f"|{'-' * 26}|{'-' * 14}|{'-' * 14}|")
    for label, key in rows:
        cells = []
        for b in ("label_studio", "argilla"):
            r = results[b]
            if key is None:
                value = r["created"] / r["push_s"] if "pushed" in label else r["pulled_records"] / r["pull_s"]
                cells.append(f"{value:,.0f}")
            else:
                cells.append(f"{r[key]:,}" if isinstance(r[key], int) else f"{r[key]:.2f}")
        print(f"| {label:<24} | {cells[0]:>12} | {cells[1]:>12} |")
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps({"items": args.items, "annotators": args.annotators, "results": results}, indent=2) + "\n")
    print(f"\nwritten: {OUT_JSON}")


if __name__ == "__main__":
    main()
