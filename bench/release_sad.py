"""Benchmark: write a full-size SAD release and load both configs with `datasets`.

    python bench/release_sad.py [--scale 1.0] [--cache-dir DIR] [--no-baseline]

Sizes at scale 1.0: 392,822 dialogues and 722,812 utterances (the SAD paper's counts). The
synthetic candidate (pipelines/sad/synthetic.py) yields about 3.75 utterances per dialogue, so
it is built for the dialogue count and the utterances are cut to their target count (the
utterance config is written on its own; nothing checks cross-references here).
Building the candidate is not timed; it is cached as parquet under --cache-dir, keyed by scale
and the source of synthetic.py.

Timed, each in a fresh subprocess (so peak RSS is that of the step, not of the candidate build):

* ours: ``releases.write_release`` (sort by key, shard, write through `datasets` with Features,
  card with dataset_info, manifest, checksums), then ``load_dataset(release, config)`` of both
  configs into an empty cache, then again (cached), ``verify_release`` and ``diff_releases``
  (the release against itself: every row hashed and joined).
* baseline "pandas.to_parquet": per config and split ``frame.to_pandas().to_parquet(...)``
  (unsorted, no Features), a card with only ``configs:``, then the same loads: what a release
  looks like without this layer (labels come back as plain ints).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

N_DIALOGUES = 392_822
N_UTTERANCES = 722_812
TARGET_S = 60.0
CONFIGS = ("dialogues", "utterances")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _candidate_paths(cache_dir: Path, scale: float) -> dict[str, Path]:
    src = (REPO / "pipelines" / "sad" / "synthetic.py").read_bytes()
    key = hashlib.sha256(src + f"{scale}".encode()).hexdigest()[:12]
    return {c: cache_dir / f"candidate-{scale}-{key}-{c}.parquet" for c in CONFIGS}


def build_candidate(cache_dir: Path, scale: float) -> tuple[dict[str, Path], float]:
    paths = _candidate_paths(cache_dir, scale)
    if all(p.exists() for p in paths.values()):
        return paths, 0.0
    from pipelines.sad.synthetic import synthetic_candidate

    n_dia = max(1, round(N_DIALOGUES * scale))
    n_utt = max(1, round(N_UTTERANCES * scale))
    t0 = time.perf_counter()
    cand = synthetic_candidate(n_topics=math.ceil(n_dia / 4), chains_per_topic=4, seed=0)
    elapsed = time.perf_counter() - t0
    cache_dir.mkdir(parents=True, exist_ok=True)
    frames = {"dialogues": cand["dialogues"].head(n_dia), "utterances": cand["utterances"].head(n_utt)}
    for name, df in frames.items():
        tmp = paths[name].with_suffix(".tmp")
        df.write_parquet(tmp)
        tmp.rename(paths[name])
    return paths, elapsed


def _load_all(release_dir: Path, cache: Path) -> dict[str, float]:
    import datasets

    out = {}
    for config in CONFIGS:
        t0 = time.perf_counter()
        dd = datasets.load_dataset(str(release_dir), config, cache_dir=str(cache))
        out[f"load {config} (first)"] = time.perf_counter() - t0
        out[f"rows {config}"] = sum(len(d) for d in dd.values())
    for config in CONFIGS:
        t0 = time.perf_counter()
        datasets.load_dataset(str(release_dir), config, cache_dir=str(cache))
        out[f"load {config} (cached)"] = time.perf_counter() - t0
    return out


def phase_ours(paths: dict[str, Path], work: Path) -> dict:
    import polars as pl
    import datasets

    from releases import CardText, ReleaseSpec, diff_releases, verify_release, write_release
    from schemas.sad import DIALOGUES, UTTERANCES

    datasets.disable_progress_bars()
    tables = {c: pl.read_parquet(p) for c, p in paths.items()}
    rss_before = _peak_rss_mb()
    spec = ReleaseSpec(
        dataset="sad",
        version="0.1.0",
        configs={"dialogues": DIALOGUES, "utterances": UTTERANCES},
        tables=tables,
        split_column="split",
        card=CardText(title="SAD (benchmark)", summary="Synthetic full-size candidate.", license_note="Synthetic."),
        manifest_extra={"code_revision": "bench", "validation": {"success": True}},
    )
    res: dict = {}
    t0 = time.perf_counter()
    release = write_release(spec, work / "releases")
    res["write release"] = time.perf_counter() - t0
    res["peak RSS after write MB"] = _peak_rss_mb()
    res.update(_load_all(release, work / "hf-cache"))
    t0 = time.perf_counter()
    report = verify_release(release)
    res["verify_release"] = time.perf_counter() - t0
    assert report.ok, report.render_text()
    t0 = time.perf_counter()
    diff = diff_releases(release, release)
    res["diff_releases (vs itself)"] = time.perf_counter() - t0
    assert diff.identical
    res["parquet MB"] = sum(p.stat().st_size for p in release.rglob("*.parquet")) / 2**20
    res["peak RSS MB"] = _peak_rss_mb()
    res["RSS after reading candidate MB"] = rss_before
    return res


def phase_baseline(paths: dict[str, Path], work: Path) -> dict:
    import polars as pl
    import datasets

    datasets.disable_progress_bars()
    tables = {c: pl.read_parquet(p) for c, p in paths.items()}
    rss_before = _peak_rss_mb()
    release = work / "baseline" / "sad" / "0.1.0"
    res: dict = {}
    t0 = time.perf_counter()
    release.mkdir(parents=True)
    card = ["---", "configs:"]
    for config, df in tables.items():
        (release / config).mkdir()
        card += [f"- config_name: {config}", "  data_files:"]
        for split in df["split"].unique(maintain_order=True).to_list():
            part = df.filter(pl.col("split") == split).to_pandas()
            part.to_parquet(release / config / f"{split}-00000-of-00001.parquet", index=False)
            card += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    card += ["---", ""]
    (release / "README.md").write_text("\n".join(card))
    res["write release"] = time.perf_counter() - t0
    res["peak RSS after write MB"] = _peak_rss_mb()
    res.update(_load_all(release, work / "hf-cache-baseline"))
    res["parquet MB"] = sum(p.stat().st_size for p in release.rglob("*.parquet")) / 2**20
    res["peak RSS MB"] = _peak_rss_mb()
    res["RSS after reading candidate MB"] = rss_before
    return res


def _run_phase(phase: str, paths: dict[str, Path], work: Path) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--work", str(work)]
    cmd += ["--paths", json.dumps({k: str(v) for k, v in paths.items()})]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "corpusforge-bench")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--phase", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--paths", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.phase:  # child process
        paths = {k: Path(v) for k, v in json.loads(args.paths).items()}
        fn = phase_ours if args.phase == "ours" else phase_baseline
        print(json.dumps(fn(paths, args.work)))
        return

    t0 = time.perf_counter()
    paths, synth_s = build_candidate(args.cache_dir, args.scale)
    print(
        f"candidate at scale {args.scale}: "
        + (f"synthetic_candidate {synth_s:.1f} s" if synth_s else "from cache")
        + f" ({time.perf_counter() - t0:.1f} s incl. caching) -> {args.cache_dir}",
        flush=True,
    )
    import platform

    work = Path(tempfile.mkdtemp(prefix="release-bench-"))
    try:
        ours = _run_phase("ours", paths, work)
        base = None if args.no_baseline else _run_phase("baseline", paths, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nrows: dialogues {ours['rows dialogues']:,}, utterances {ours['rows utterances']:,}; "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    name = "baseline: pandas.to_parquet, no Features"
    print(f"\n| step | ours | {name} | target |")
    print("| --- | ---: | ---: | ---: |")

    def cell(d, k, fmt="{:.2f} s"):
        return "-" if d is None else fmt.format(d[k])

    total_keys = ["write release", "load dialogues (first)", "load utterances (first)"]
    for key in total_keys + ["load dialogues (cached)", "load utterances (cached)"]:
        print(f"| {key} | {cell(ours, key)} | {cell(base, key)} | |")
    tot = sum(ours[k] for k in total_keys)
    tot_b = None if base is None else sum(base[k] for k in total_keys)
    print(f"| **write + first load of both configs** | **{tot:.2f} s** | "
          f"{'-' if tot_b is None else f'{tot_b:.2f} s'} | < {TARGET_S:.0f} s |")
    for key in ("verify_release", "diff_releases (vs itself)"):
        print(f"| {key} | {cell(ours, key)} | n/a | |")
    print(f"| parquet size | {cell(ours, 'parquet MB', '{:.0f} MB')} | {cell(base, 'parquet MB', '{:.0f} MB')} | |")
    print(f"| RSS after reading the candidate | {cell(ours, 'RSS after reading candidate MB', '{:.0f} MB')} | "
          f"{cell(base, 'RSS after reading candidate MB', '{:.0f} MB')} | |")
    print(f"| peak RSS up to the end of the write | {cell(ours, 'peak RSS after write MB', '{:.0f} MB')} | "
          f"{cell(base, 'peak RSS after write MB', '{:.0f} MB')} | |")
    print(f"| peak RSS of the whole step (loads, verify, diff) | {cell(ours, 'peak RSS MB', '{:.0f} MB')} | "
          f"{cell(base, 'peak RSS MB', '{:.0f} MB')} | |")
    verdict = "PASS" if tot < TARGET_S else "FAIL"
    print(f"\n{verdict}: write + first load {tot:.1f} s vs target {TARGET_S:.0f} s")


if __name__ == "__main__":
    main()
