"""Benchmark of validate_sad on a full-size synthetic SAD candidate, against the naive way.

    python bench/validate_sad.py [--scale 1.0] [--naive-scale 0.1] [--broken] [--out DIR]

* corpusforge: ``validate_sad`` as shipped (GX sees scalar columns, indicator columns and
  exploded lists only).
* naive baseline: the same checks, but every table frame handed to GX still carries its
  list/struct columns (context_ids, history, strategies, suggestion_scores...), as
  docs/toolchain.md warns against: GX then pickles each frame to fingerprint it. It is measured
  at ``--naive-scale`` and extrapolated linearly to ``--scale``; when that extrapolation is
  under 2 minutes it is also measured at ``--scale`` (the table says which).
* ``--broken``: also a candidate whose every utterance fails two checks and most dialogues one
  (failing ids of ~1.8M rows named by GX).

Each run is a fresh interpreter (its own peak RSS); GX's import time is reported apart (about
3 s with bytecode caches, about 10 s without: this environment sets PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 30.0
NAIVE_FULL_LIMIT_S = 120.0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(kind: str, scale: float, out: Path) -> dict:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import polars as pl

    from pipelines.sad.settings import SadValidationBounds
    from pipelines.sad.synthetic import sad_like_candidate

    t = time.perf_counter()
    tables = sad_like_candidate(scale, seed=0)
    build_s = time.perf_counter() - t
    if kind == "broken":
        tables["utterances"] = tables["utterances"].with_columns(pl.col("n_words") + 1, pl.lit(2, pl.Int64).alias("stance"))
        tables["dialogues"] = tables["dialogues"].with_columns(pl.lit("test").alias("split"))
    rss_before = _rss_mb()
    t = time.perf_counter()
    import great_expectations  # noqa: F401

    import_s = time.perf_counter() - t
    bounds = SadValidationBounds()
    t = time.perf_counter()
    if kind == "naive":
        from schemas.sad import TABLES
        from validation.gx_suite import run_checks
        from validation.sad import sad_checks

        checks = sad_checks(tables, bounds)
        for name, table in TABLES.items():
            frame = checks.frames[name]
            nested = [c.name for c in table.released_columns if c.name not in frame.df.columns
                      and c.name in tables[name].columns]
            frame.df = frame.df.hstack(tables[name].select(nested))  # rows are aligned
        run = run_checks(checks.frames, checks.specs, out, name="sad_naive", allow_nested=True)
        success, n_checks = run.success, len(run.checks)
    else:
        from validation.sad import validate_sad

        report = validate_sad(tables, bounds, out)
        success, n_checks = report.success, len(report.checks)
    validate_s = time.perf_counter() - t
    return {
        "kind": kind,
        "scale": scale,
        "rows": {k: v.height for k, v in tables.items()},
        "build_s": build_s,
        "gx_import_s": import_s,
        "validate_s": validate_s,
        "success": success,
        "n_checks": n_checks,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _rss_mb(),
    }


def spawn(kind: str, scale: float, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--scale", str(scale), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="size relative to the real SAD (1.0 = 392,822 dialogues)")
    ap.add_argument("--naive-scale", type=float, default=0.1, help="size at which the naive baseline is measured")
    ap.add_argument("--broken", action="store_true", help="also time a candidate failing on most rows")
    ap.add_argument("--out", type=Path, default=None, help="where runs write their reports (default: a temp dir)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print(json.dumps(child(args.child, args.scale, args.out)))
        return

    root = args.out or Path(tempfile.mkdtemp(prefix="bench_validate_sad_"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, reports under {root}")
    runs: list[tuple[str, dict, str]] = []

    ours = spawn("corpusforge", args.scale, root / "corpusforge")
    runs.append(("corpusforge validate_sad", ours, "measured"))
    print(f"  corpusforge done: {ours['validate_s']:.1f} s", flush=True)

    # naive: two small scales give fixed cost + cost per unit of scale; extrapolate that line
    s2 = min(args.naive_scale, args.scale)
    s1 = s2 / 2
    p1 = spawn("naive", s1, root / "naive_half")
    p2 = spawn("naive", s2, root / "naive_small")
    runs += [("naive: list columns to GX", p1, "measured"), ("naive: list columns to GX", p2, "measured")]
    print(f"  naive at scales {s1:g}, {s2:g} done: {p1['validate_s']:.1f} s, {p2['validate_s']:.1f} s", flush=True)
    slope = (p2["validate_s"] - p1["validate_s"]) / (s2 - s1)
    extrapolated = p2["validate_s"] + slope * (args.scale - s2)
    if s2 < args.scale:
        if extrapolated < NAIVE_FULL_LIMIT_S:
            print(f"  naive extrapolated to {extrapolated:.0f} s at scale {args.scale:g}: measuring it", flush=True)
            naive_full = spawn("naive", args.scale, root / "naive_full")
            runs.append(("naive: list columns to GX", naive_full, f"measured (extrapolation said {extrapolated:.0f} s)"))
        else:
            factor = args.scale / s2
            est = dict(p2, scale=args.scale, validate_s=extrapolated, peak_rss_mb=None,
                       rows={k: round(v * factor) for k, v in p2["rows"].items()})
            runs.append(("naive: list columns to GX", est, f"extrapolated: line through scales {s1:g} and {s2:g}"))
    if args.broken:
        broken = spawn("broken", args.scale, root / "broken")
        runs.append(("corpusforge, broken candidate", broken, "measured"))

    header = f"{'run':<32} {'scale':>5} {'dialogues':>10} {'utterances':>10} {'validate s':>10} {'peak RSS MB':>11}  {'vs target':>9}  how"
    print()
    print(header)
    print("-" * len(header))
    for label, r, how in runs:
        rss = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "-"
        verdict = "PASS" if r.get("success") else "FAIL"
        ratio = f"{r['validate_s'] / TARGET_S:.2f}x"
        print(
            f"{label:<32} {r['scale']:>5g} {r['rows']['dialogues']:>10,} {r['rows']['utterances']:>10,} "
            f"{r['validate_s']:>10.1f} {rss:>11}  {ratio:>9}  {how}; verdict {verdict}"
        )
    print(f"{'target (full size SAD)':<32} {1:>5g} {392822:>10,} {722812:>10,} {TARGET_S:>10.1f} {'':>11}  {'1.00x':>9}")
    print()
    print(
        f"corpusforge: build {ours['build_s']:.1f} s (not timed), GX import {ours['gx_import_s']:.1f} s (not timed), "
        f"RSS before validation {ours['rss_before_mb']:.0f} MB, peak {ours['peak_rss_mb']:.0f} MB, "
        f"{ours['n_checks']} checks"
    )
    speedup = [r for label, r, how in runs if label.startswith("naive") and r["scale"] == args.scale]
    if speedup:
        print(f"naive / corpusforge at scale {args.scale:g}: {speedup[-1]['validate_s'] / ours['validate_s']:.1f}x")


if __name__ == "__main__":
    main()
