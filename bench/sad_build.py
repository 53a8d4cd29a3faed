"""Benchmark: SAD build throughput and peak memory, fast pipeline vs the pure-Python reference.

    python bench/sad_build.py --nodes 2000000           # the issue's benchmark
    python bench/sad_build.py --nodes 200000 --sizes 50000,200000   # quick look

Generates a seeded Pushshift-style CMV dump (.zst) of N nodes (cached in --workdir), builds SAD
with the pipeline (local executor) and with ``pipelines.sad.reference`` (json per line, dicts,
recursive walk), each in its own process so that peak RSS is measured per build, checks that
both produce the same examples, and prints nodes/s, peak memory and the speed-up next to the
targets (>= 5x the reference, >= 150,000 nodes/s, < 3 GB, memory independent of input size).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FAST = """
import json, sys, time
from pathlib import Path
from pipelines.core.executor import LocalExecutor
from pipelines.sad.pipeline import build_sad, read_candidate
from pipelines.sad.settings import SadSettings
start = time.perf_counter()
res = build_sad([Path(p) for p in sys.argv[4:]], SadSettings(), Path(sys.argv[1]), executor=LocalExecutor(int(sys.argv[3])))
seconds = time.perf_counter() - start
Path(sys.argv[2] + ".built").touch()  # memory is measured up to here
t = read_candidate(Path(sys.argv[1]))
d = t["dialogues"]
json.dump({"nodes": res.steps["ingest"].stats["counters"]["lines"], "build_seconds": seconds,
           "steps": {k: o.stats["seconds"] for k, o in res.steps.items()},
           "examples": dict(zip(d["example_id"], d["context_ids"].to_list())),
           "texts": dict(zip(t["utterances"]["utterance_id"], t["utterances"]["text"]))}, open(sys.argv[2], "w"))
"""

REFERENCE = """
import json, sys, time
from pathlib import Path
from pipelines.sad.reference import reference_build
start = time.perf_counter()
ref = reference_build([Path(p) for p in sys.argv[2:]])
seconds = time.perf_counter() - start
Path(sys.argv[1] + ".built").touch()  # memory is measured up to here
json.dump({"nodes": ref.nodes_read, "build_seconds": seconds,
           "examples": {d["example_id"]: d["context_ids"] for d in ref.dialogues},
           "texts": {k: v["text"] for k, v in ref.utterances.items()}}, open(sys.argv[1], "w"))
"""


def _tree_rss(root: int) -> int:
    """Resident memory of a process and all its descendants (worker processes included)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def run_measured(args: list[str], built_marker: Path) -> tuple[float, int]:
    """Wall seconds and peak resident memory (bytes) of a child process and its workers together,
    sampled every 50 ms until the child marks its build finished (what it does afterwards to
    export results for the comparison is not part of the build)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    built_marker.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env)
    peak = 0
    while proc.poll() is None:
        if not built_marker.exists():
            peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed with exit code {proc.returncode}: {args[:2]}")
    return seconds, peak


def dump_for(workdir: Path, nodes: int, seed: int) -> list[Path]:
    from pipelines.sad.generator import generate_dump

    out = workdir / f"dump-{nodes}-seed{seed}"
    done = out / "_DONE"
    if not done.exists():
        t = time.perf_counter()
        paths = generate_dump(out, nodes, seed=seed, compression="zst")
        done.write_text(json.dumps([str(p) for p in paths]))
        print(f"generated {nodes:,} nodes in {time.perf_counter() - t:.1f}s: {sum(p.stat().st_size for p in paths) / 1e6:.0f} MB zst")
    return [Path(p) for p in json.loads(done.read_text())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=2_000_000)
    ap.add_argument("--sizes", type=str, default="", help="Extra smaller sizes (comma-separated) to show memory vs size (fast build only).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--workers", type=int, default=2, help="Worker processes of the local executor (default: both cores).")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    import shutil

    rows = []
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {args.nodes})
    results: dict[int, dict] = {}
    for n in sizes:
        paths = dump_for(args.workdir, n, args.seed)
        stages = args.workdir / f"ws-{n}"
        shutil.rmtree(stages, ignore_errors=True)
        out_json = args.workdir / f"fast-{n}.json"
        _, rss = run_measured(["-c", FAST, str(stages), str(out_json), str(args.workers), *map(str, paths)], Path(f"{out_json}.built"))
        fast = json.loads(out_json.read_text())
        results[n] = fast
        rows.append((f"pipeline (local, {args.workers} worker{'s' if args.workers > 1 else ''})", fast["nodes"], fast["build_seconds"], rss, len(fast["examples"])))
        print(f"{n:,} nodes, seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in fast["steps"].items()))
    ref_row = None
    if not args.skip_reference:
        paths = dump_for(args.workdir, args.nodes, args.seed)
        out_json = args.workdir / f"reference-{args.nodes}.json"
        _, rss = run_measured(["-c", REFERENCE, str(out_json), *map(str, paths)], Path(f"{out_json}.built"))
        ref = json.loads(out_json.read_text())
        ref_row = ("reference (pure Python)", ref["nodes"], ref["build_seconds"], rss, len(ref["examples"]))
        fast = results[args.nodes]
        same_examples = fast["examples"] == ref["examples"]
        same_texts = fast["texts"] == ref["texts"]
    print()
    print(f"SAD build benchmark: {args.nodes:,}-node generated dump (.zst), {os.cpu_count()} cores")
    print("seconds: the build itself, from reading the dump to the finished tables (process start-up excluded)")
    print("peak RSS: the build process and its worker processes together")
    print(f"{'build':<28}{'nodes':>12}{'seconds':>10}{'nodes/s':>12}{'peak RSS':>12}{'examples':>11}")
    for name, nodes, secs, rss, ex in rows + ([ref_row] if ref_row else []):
        print(f"{name:<28}{nodes:>12,}{secs:>10.1f}{nodes / secs:>12,.0f}{rss / 2**30:>10.2f} GB{ex:>11,}")
    main_row = next(r for r in rows if r[1] == results[args.nodes]["nodes"])
    speed = main_row[1] / main_row[2]
    print()
    print(f"target >= 150,000 nodes/s end to end: {speed:,.0f} -> {'MET' if speed >= 150_000 else 'NOT MET'}")
    print(f"target peak memory < 3 GB: {main_row[3] / 2**30:.2f} GB -> {'MET' if main_row[3] < 3 * 2**30 else 'NOT MET'}")
    if ref_row:
        ratio = ref_row[2] / main_row[2]
        print(f"target >= 5x the reference's throughput: {ratio:.1f}x -> {'MET' if ratio >= 5 else 'NOT MET'}")
        print(f"same examples as the reference: {same_examples}; same utterance texts: {same_texts}")
    if len(rows) > 1:
        print("peak memory by input size (bounded if it does not grow with the input): "
              + ", ".join(f"{r[1]:,} nodes {r[3] / 2**30:.2f} GB" for r in rows))


if __name__ == "__main__":
    main()
