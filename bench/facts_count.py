"""Benchmark: counting fact mentions per document, our engine against grep, libraries and a naive loop.

    python bench/facts_count.py                          # 1 GB generated corpus (generation ~1 min)
    python bench/facts_count.py --size 100MB             # quick look
    python bench/facts_count.py --corpus /tmp/synth-1gb  # reuse the corpus there (or generate it there)
    python bench/facts_count.py --json out.json          # also write the results as JSON

Corpus: :func:`pipelines.facts.generator.generate_corpus` over the KLAR facts (12 languages,
28,728 phrases), seeded, with planted mentions whose counts are known exactly; ``--size`` is the
UTF-8 size of the documents' text, and every MB/s below is over those bytes (1 MB = 10^6 bytes).
Everything runs single-threaded in this one process (``POLARS_MAX_THREADS=1``), so each figure
is per core. Documents are streamed from the ``.jsonl.zst`` shards in batches (``--batch``), and
every method gets the same batches, in one pass: each batch goes to ours, then to the
baselines, so all are timed under the same conditions (the machine's speed drifts over minutes).

* ``ours``: :class:`pipelines.facts.count.FactCounter` on the raw texts (the default engine,
  ``facts.matching``: NFKC + casefold, one automaton pass, the boundary rules, per-fact counts
  by checkpoint bucket), checked against the planted truth when the whole corpus is read.
  ``read`` (zstd + JSON) is timed apart.
* ``grep -F -c -f``: GNU grep (``LC_ALL=C``) over a file of the normalised documents, one per
  line, with the distinct normalised phrases: the floor, detection only (does a line hold any
  phrase), no per-phrase sets, no boundaries.
* libraries, raw match sets without boundary rules, on the normalised texts (conversion to the
  library's input included, normalisation not: it is the ``normalise`` row): polars
  ``str.extract_many`` (overlapping, unique per document), ``ahocorasick_rs``, ``pyahocorasick``,
  ``hyperscan`` (literal database, ``HS_FLAG_SINGLEMATCH``: each phrase reported once per
  document). The last three are the ``bench`` extra (``pip install -e '.[bench]'``); one that is
  not installed is skipped with a note. They run on ``--subsample`` bytes of batches spread over
  the whole pass.
* ``naive``: for each normalised document, for each distinct phrase, ``phrase in text``, on the
  first ``--naive-bytes``, extrapolated.

Targets (from the issue): ours >= 150 MB/s per core end to end; >= 0.85x the best library's
match-set speed; >= 300x the naive loop. Peak RSS (``getrusage``) of ``ours`` alone is read in
two fresh processes, over the first eighth and the first half of the corpus (``--only-ours
--max-bytes``): streaming keeps it flat in corpus size.
"""

from __future__ import annotations

import os

os.environ["POLARS_MAX_THREADS"] = "1"  # before polars is imported: every figure is per core
os.environ["RAYON_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterator, Sequence  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from pipelines.facts.count import FactCounter, add_partials, buckets_of, compile_phrases, merge_partials  # noqa: E402
from pipelines.facts.facts import read_facts  # noqa: E402
from pipelines.facts.generator import MANIFEST, GeneratedCorpus, generate_corpus, iter_documents, load_generated  # noqa: E402
from pipelines.core.phrases import MatchSettings, normalise_many  # noqa: E402

FACTS = Path(os.environ.get("KLAR_DIR", REPO.parent / "shared" / "data" / "klar"))
TARGET_MB_S = 150.0
TARGET_VS_LIBRARY = 0.85
TARGET_VS_NAIVE = 300.0
UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMG]?B?)\s*", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size like 2MB, 500KB or 1GB, got {text!r}")
    return int(float(match.group(1)) * UNITS[match.group(2)])


@dataclass
class Timed:
    """Seconds, bytes and documents a method was timed on."""

    name: str
    kind: str  # ours, prep, floor, library, naive
    seconds: float = 0.0
    bytes: int = 0
    docs: int = 0
    extrapolated: bool = False
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, seconds: float, nbytes: int, ndocs: int) -> None:
        self.seconds += seconds
        self.bytes += nbytes
        self.docs += ndocs

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else float("nan")

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds if self.seconds else float("nan")

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "mb_per_s": round(self.mb_per_s, 3),
                "docs_per_s": round(self.docs_per_s, 1), "seconds": round(self.seconds, 3), "bytes": self.bytes,
                "docs": self.docs, "extrapolated": self.extrapolated, "note": self.note, **self.extra}


# --------------------------------------------------------------------------- corpus


def prepare_corpus(args: argparse.Namespace, facts: pl.DataFrame) -> tuple[GeneratedCorpus, Path | None]:
    """The corpus in ``--corpus`` (reused when its manifest is there) or a generated one in a
    temporary folder (returned second, for removal)."""
    if args.corpus and (args.corpus / MANIFEST).is_file():
        corpus = load_generated(args.corpus)
        print(f"corpus: reusing {args.corpus} ({corpus.text_bytes / 1e6:,.1f} MB of text, {corpus.n_docs:,} documents)")
        return corpus, None
    out = args.corpus or Path(tempfile.mkdtemp(prefix="facts-bench-corpus-"))
    start = time.perf_counter()
    corpus = generate_corpus(facts, out, target_bytes=args.size, seed=args.seed, shard_bytes=args.shard)
    seconds = time.perf_counter() - start
    print(f"corpus: generated {corpus.text_bytes / 1e6:,.1f} MB of text, {corpus.n_docs:,} documents in {seconds:.1f} s "
          f"({corpus.text_bytes / 1e6 / seconds:.1f} MB/s) -> {out}")
    return corpus, (None if args.corpus else out)


def iter_batches(corpus: GeneratedCorpus, batch_bytes: int, limit: int | None) -> Iterator[tuple[list[str], list[int | None], int, float]]:
    """(texts, steps, text bytes, seconds spent reading) per batch, up to ``limit`` text bytes."""
    texts: list[str] = []
    steps: list[int | None] = []
    size = total = 0
    start = time.perf_counter()
    for path in corpus.files["jsonl.zst"]:
        for text, step in iter_documents(path):
            n = len(text.encode("utf-8"))
            texts.append(text)
            steps.append(step)
            size += n
            total += n
            if size >= batch_bytes or (limit is not None and total >= limit):
                yield texts, steps, size, time.perf_counter() - start
                texts, steps, size = [], [], 0
                if limit is not None and total >= limit:
                    return
                start = time.perf_counter()
    if texts:
        yield texts, steps, size, time.perf_counter() - start


# --------------------------------------------------------------------------- library baselines


def _polars_sets(patterns: list[str]) -> Callable[[list[str]], int]:
    def match_sets(docs: list[str]) -> int:
        sets = pl.Series(docs, dtype=pl.String).str.extract_many(patterns, overlapping=True).list.unique()
        return int(sets.list.len().sum())

    return match_sets


def _ahocorasick_rs_sets(module: Any, patterns: list[str]) -> Callable[[list[str]], int]:
    automaton = module.AhoCorasick(patterns, matchkind=module.MatchKind.Standard)

    def match_sets(docs: list[str]) -> int:
        return sum(len({m[0] for m in automaton.find_matches_as_indexes(doc, overlapping=True)}) for doc in docs)

    return match_sets


def _pyahocorasick_sets(module: Any, patterns: list[str]) -> Callable[[list[str]], int]:
    automaton = module.Automaton()
    for k, p in enumerate(patterns):
        automaton.add_word(p, k)
    automaton.make_automaton()

    def match_sets(docs: list[str]) -> int:
        return sum(len({k for _, k in automaton.iter(doc)}) for doc in docs)

    return match_sets


def _hyperscan_sets(module: Any, patterns: list[str]) -> Callable[[list[str]], int]:
    database = module.Database()
    database.compile(expressions=[p.encode("utf-8") for p in patterns], ids=list(range(len(patterns))),
                     elements=len(patterns), flags=module.HS_FLAG_SINGLEMATCH, literal=True)

    def on_match(pid: int, start: int, end: int, flags: int, found: set[int]) -> None:
        found.add(pid)

    def match_sets(docs: list[str]) -> int:
        pairs = 0
        for doc in docs:
            found: set[int] = set()
            database.scan(doc.encode("utf-8"), match_event_handler=on_match, context=found)
            pairs += len(found)
        return pairs

    return match_sets


# (row name, module, pip package, builder): the ``bench`` extra's libraries.
OPTIONAL_LIBRARIES = (
    ("ahocorasick_rs", "ahocorasick_rs", "ahocorasick-rs", _ahocorasick_rs_sets),
    ("pyahocorasick", "ahocorasick", "pyahocorasick", _pyahocorasick_sets),
    ("hyperscan", "hyperscan", "hyperscan", _hyperscan_sets),
)


def library_baselines(patterns: list[str]) -> tuple[list[tuple[str, Callable[[list[str]], int], float]], list[str]]:
    """(name, match-set function returning the number of distinct (doc, phrase) pairs, build
    seconds) per installed library, and notes for the missing ones."""
    found: list[tuple[str, Callable[[list[str]], int], float]] = [("polars str.extract_many", _polars_sets(patterns), 0.0)]
    notes: list[str] = []
    for name, module_name, package, build in OPTIONAL_LIBRARIES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            notes.append(f"{name}: not installed (pip install -e '.[bench]' or {package}), skipped")
            continue
        start = time.perf_counter()
        match_sets = build(module, patterns)
        found.append((name, match_sets, time.perf_counter() - start))
    return found, notes


def naive_sets(docs: list[str], patterns: list[str]) -> int:
    return sum(1 for doc in docs for p in patterns if p in doc)


# --------------------------------------------------------------------------- the run


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = MatchSettings()
    facts = read_facts(args.facts).facts
    corpus, temporary = prepare_corpus(args, facts)
    try:
        return _measure(args, settings, facts, corpus)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def _measure(args: argparse.Namespace, settings: MatchSettings, facts: pl.DataFrame, corpus: GeneratedCorpus) -> dict[str, Any]:
    start = time.perf_counter()
    phrases, sides = compile_phrases(facts, settings)
    counter = FactCounter(phrases, sides)
    counter.count(["warm-up"], buckets_of(None, 1, []))  # numba kernels: loaded from the cache, or compiled once
    compile_seconds = time.perf_counter() - start
    patterns = list(phrases.patterns)
    engine = "compiled (numba)" if counter.compiled is not None else "python"
    print(f"phrases: {phrases.n_phrases:,} ({len(patterns):,} distinct normalised), engine {engine}, "
          f"compiled in {compile_seconds:.2f} s (automaton, tables and kernels)")

    ours = Timed("ours", "ours", note="normalise + match with boundaries + per-fact counts")
    read = Timed("read (zstd + JSON)", "prep", note="decompress and parse the shards")
    norm = Timed("normalise (NFKC + casefold)", "prep", note="input of grep, the libraries and the naive loop")
    libraries, notes = ([], []) if args.only_ours else library_baselines(patterns)
    lib_rows = [Timed(name, "library", note=f"build {built:.2f} s", extra={"pairs": 0}) for name, _, built in libraries]
    naive = Timed("naive loop", "naive", extrapolated=True, note="for doc: for phrase: phrase in doc", extra={"pairs": 0})
    partials: list[pl.DataFrame] = []
    workdir = Path(tempfile.mkdtemp(prefix="facts-bench-"))
    grep_docs = workdir / "docs.txt"
    (workdir / "phrases.txt").write_text("\n".join(patterns) + "\n", encoding="utf-8")
    try:
        # One pass: each batch goes to our engine (as the pipeline runs it), then to the
        # baselines, so that all are timed under the same conditions: this machine's speed drifts
        # by 20-30% over minutes, and two passes (ours, then the baselines) put ours and the
        # libraries up to a minute apart. The libraries take a batch while their share of the
        # text so far is under subsample / corpus, so their batches spread over the whole run.
        target = min(corpus.text_bytes, args.max_bytes or corpus.text_bytes)
        lib_share = min(1.0, args.subsample / target) if target else 1.0
        with open(grep_docs, "w", encoding="utf-8", newline="\n") as grep_out:
            for texts, steps, nbytes, read_seconds in iter_batches(corpus, args.batch, args.max_bytes):
                read.add(read_seconds, nbytes, len(texts))
                t0 = time.perf_counter()
                has_steps = bool(corpus.checkpoints) and steps[0] is not None
                counted = counter.count(texts, buckets_of(steps if has_steps else None, len(texts), corpus.checkpoints))
                partials.append(counted)
                if len(partials) >= 64:  # fold as the pipeline does: memory stays flat
                    partials = [add_partials(partials)]
                ours.add(time.perf_counter() - t0, nbytes, len(texts))
                if args.only_ours:
                    continue
                t0 = time.perf_counter()
                normalised = normalise_many(texts, settings)
                norm.add(time.perf_counter() - t0, nbytes, len(texts))
                grep_out.write("\n".join(t.replace("\n", " ") for t in normalised) + "\n")
                if lib_rows and lib_rows[0].bytes < lib_share * ours.bytes:
                    for row, (_, fn, _) in zip(lib_rows, libraries):
                        t0 = time.perf_counter()
                        row.extra["pairs"] += fn(normalised)
                        row.add(time.perf_counter() - t0, nbytes, len(texts))
                if naive.bytes < args.naive_bytes:
                    _naive_batch(naive, texts, normalised, patterns, args.naive_bytes)
        t0 = time.perf_counter()
        totals, at = merge_partials(facts, add_partials(partials), corpus.checkpoints)
        ours.seconds += time.perf_counter() - t0
        whole = args.max_bytes is None or args.max_bytes >= corpus.text_bytes
        truth_ok = _equals_truth(totals, at, corpus) if whole else None
        grep_row = None if args.only_ours else _run_grep(workdir, grep_docs, ours.bytes, ours.docs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [ours, Timed("ours incl. read", "ours", ours.seconds + read.seconds, ours.bytes, ours.docs,
                        note="the same, from the compressed shards"), read]
    if not args.only_ours:
        rows += [norm, *([grep_row] if grep_row else []), *lib_rows, naive]
    if args.only_ours:
        rss = {"peak_rss_mb": round(peak_rss_mb(), 1), "bytes": ours.bytes}
    else:
        rss = None if args.no_rss else rss_probe(args, corpus)
    ray = None if args.only_ours or args.no_ray else ray_comparison(args, corpus)
    return _report(args, corpus, rows, notes, truth_ok, rss, ray, compile_seconds)


def _naive_batch(naive: Timed, texts: list[str], normalised: list[str], patterns: list[str], limit: int) -> None:
    for raw, doc in zip(texts, normalised):
        if naive.bytes >= limit:
            return
        t0 = time.perf_counter()
        naive.extra["pairs"] += naive_sets([doc], patterns)
        naive.add(time.perf_counter() - t0, len(raw.encode("utf-8")), 1)


def rss_probe(args: argparse.Namespace, corpus: GeneratedCorpus) -> dict[str, Any]:
    """Peak RSS of ``ours`` alone (a fresh process each: this one holds the libraries) over the
    first eighth and the first half of the corpus: flat when batches stream."""
    out: dict[str, Any] = {"runs": []}
    for fraction in (8, 2):
        limit = max(corpus.text_bytes // fraction, 1)
        with tempfile.TemporaryDirectory(prefix="facts-bench-rss-") as tmp:
            result = Path(tmp) / "rss.json"
            run = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--corpus", str(corpus.out_dir), "--facts", str(args.facts),
                 "--only-ours", "--max-bytes", str(limit), "--batch", str(args.batch), "--json", str(result)],
                capture_output=True, text=True,
            )
            if run.returncode != 0:
                print(f"RSS probe over {limit / 1e6:,.1f} MB failed: {run.stderr.strip()[-300:]}")
                continue
            probe = json.loads(result.read_text(encoding="utf-8"))["peak_rss_mb"]
        out["runs"].append({"bytes": probe["bytes"], "peak_rss_mb": probe["peak_rss_mb"]})
    return out


def _equals_truth(totals: pl.DataFrame, at: pl.DataFrame, corpus: GeneratedCorpus) -> bool:
    cols = ["fact_id", "subject_docs", "object_docs", "cooccurrence_docs"]
    same_totals = totals.select(cols).sort("fact_id").equals(corpus.truth.select(cols).sort("fact_id"))
    at_cols = ["fact_id", "checkpoint", *cols[1:]]
    same_at = at.select(at_cols).sort("fact_id", "checkpoint").equals(corpus.checkpoint_truth.select(at_cols).sort("fact_id", "checkpoint"))
    return same_totals and same_at


def _run_grep(workdir: Path, docs: Path, nbytes: int, ndocs: int) -> Timed | None:
    grep = shutil.which("grep")
    if grep is None:
        print("grep: not found, skipped")
        return None
    start = time.perf_counter()
    out = subprocess.run([grep, "-F", "-c", "-f", str(workdir / "phrases.txt"), str(docs)],
                         capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    seconds = time.perf_counter() - start
    if out.returncode not in (0, 1):
        print(f"grep failed ({out.returncode}): {out.stderr.strip()[:200]}")
        return None
    lines = int(out.stdout.strip() or 0)
    return Timed("grep -F -c -f", "floor", seconds, nbytes, ndocs, note="LC_ALL=C, normalised text; detection only",
                 extra={"docs_with_a_phrase": lines})


# --------------------------------------------------------------------------- Ray (through the pipeline)


def ray_comparison(args: argparse.Namespace, corpus: GeneratedCorpus) -> dict[str, Any]:
    """RAY COMPARISON: the fact-frequency pipeline (``build_facts``) on 1 and on 2 local Ray
    workers over the same shards, when the pipeline is there; otherwise a note."""
    try:
        from pipelines.core.executor import make_executor
        from pipelines.facts.corpus import CorpusSettings
        from pipelines.facts.pipeline import build_facts, read_candidate
        from pipelines.facts.settings import FactsSettings
    except ImportError as exc:
        print(f"Ray comparison: not available (pipelines.facts.pipeline.build_facts cannot be imported: {exc})")
        return {"available": False, "reason": str(exc)}
    try:
        import ray  # noqa: F401
    except ImportError:
        print("Ray comparison: not available (ray is not installed: pip install -e '.[ray]')")
        return {"available": False, "reason": "ray not installed"}
    out: dict[str, Any] = {"available": True, "runs": []}
    settings = FactsSettings(checkpoints=corpus.checkpoints, corpus=CorpusSettings(step_field="metadata.step"))
    for workers in (1, 2):
        stages = Path(tempfile.mkdtemp(prefix=f"facts-bench-ray{workers}-"))
        executor = make_executor("ray", workers=workers)
        try:
            start = time.perf_counter()
            executor.connect()  # Ray's own start-up, timed apart: a fixed cost, whatever the corpus
            started = time.perf_counter()
            build_facts(args.facts, corpus.files["jsonl.zst"], settings, stages, executor)
            seconds = time.perf_counter() - started
            built = read_candidate(stages)
            run_row = {"workers": workers, "ray_start_seconds": round(started - start, 3), "seconds": round(seconds, 3),
                       "mb_per_s": round(corpus.text_bytes / 1e6 / seconds, 3),
                       "seconds_with_start": round(seconds + started - start, 3),
                       "truth_equal": _equals_truth(built["counts"], built["checkpoint_counts"], corpus)}
        except Exception as exc:  # the comparison must not sink the benchmark: report it
            run_row = {"workers": workers, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            close = getattr(executor, "close", None)
            if close:
                close()
            shutil.rmtree(stages, ignore_errors=True)
        out["runs"].append(run_row)
        print(f"Ray, {workers} worker(s): {run_row}")
    times = [r.get("seconds") for r in out["runs"]]
    if all(times):
        with_start = [r["seconds_with_start"] for r in out["runs"]]
        out["speedup_2_vs_1"] = round(times[0] / times[1], 2)
        out["speedup_2_vs_1_with_start"] = round(with_start[0] / with_start[1], 2)
        print(f"Ray: 2 workers / 1 worker speed-up {out['speedup_2_vs_1']}x with Ray started (the build: facts, each worker's "
              f"automaton, every shard read and counted, the merge); {out['speedup_2_vs_1_with_start']}x including Ray's start-up")
    return out


# --------------------------------------------------------------------------- report


def _report(args, corpus: GeneratedCorpus, rows: list[Timed], notes: list[str], truth_ok: bool | None,
            rss: dict[str, Any] | None, ray: dict[str, Any] | None, compile_seconds: float) -> dict[str, Any]:
    print()
    print(f"{'method':<30} {'MB/s':>9} {'docs/s':>11} {'seconds':>9} {'MB timed':>9}  note")
    for row in rows:
        mark = " (extrapolated)" if row.extrapolated else ""
        print(f"{row.name:<30} {row.mb_per_s:>9.2f} {row.docs_per_s:>11,.0f} {row.seconds:>9.2f} {row.bytes / 1e6:>9.1f}  {row.note}{mark}")
    for note in notes:
        print(f"note: {note}")
    ours = rows[0]
    libs = [r for r in rows if r.kind == "library" and r.seconds]
    best = max(libs, key=lambda r: r.mb_per_s) if libs else None
    naive = next((r for r in rows if r.kind == "naive" and r.seconds), None)
    ratios = {
        "ours_vs_best_library": round(ours.mb_per_s / best.mb_per_s, 3) if best else None,
        "best_library": best.name if best else None,
        "ours_vs_naive": round(ours.mb_per_s / naive.mb_per_s, 1) if naive else None,
    }
    targets = [
        {"target": f"ours >= {TARGET_MB_S:g} MB/s per core", "value": round(ours.mb_per_s, 2), "pass": ours.mb_per_s >= TARGET_MB_S},
    ]
    if best:
        targets.append({"target": f"ours >= {TARGET_VS_LIBRARY}x best library ({best.name})", "value": ratios["ours_vs_best_library"],
                        "pass": ratios["ours_vs_best_library"] >= TARGET_VS_LIBRARY})
    if naive:
        targets.append({"target": f"ours >= {TARGET_VS_NAIVE:g}x naive loop", "value": ratios["ours_vs_naive"],
                        "pass": ratios["ours_vs_naive"] >= TARGET_VS_NAIVE})
    print()
    if truth_ok is not None:
        print(f"ours equals the planted truth (totals and checkpoints): {'yes' if truth_ok else 'NO'}")
    for t in targets:
        print(f"{'PASS' if t['pass'] else 'MISS'}  {t['target']}: {t['value']}")
    if rss and rss.get("runs"):
        print("peak RSS of ours alone: " + ", ".join(f"{r['peak_rss_mb']:,.0f} MB over {r['bytes'] / 1e6:,.1f} MB of text" for r in rss["runs"]))
    result = {
        "corpus": {"dir": str(corpus.out_dir), "text_bytes": corpus.text_bytes, "docs": corpus.n_docs, "seed": corpus.seed,
                   "checkpoints": list(corpus.checkpoints)},
        "threads": 1, "compile_seconds": round(compile_seconds, 3),
        "rows": [r.row() for r in rows], "notes": notes, "ratios": ratios, "targets": targets,
        "truth_equal": truth_ok, "peak_rss_mb": rss, "ray": ray,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=parse_size("1GB"), help="text to generate (default 1GB)")
    ap.add_argument("--corpus", type=Path, help="a generated corpus to reuse; generated there when it has none")
    ap.add_argument("--seed", type=int, default=20250514)
    ap.add_argument("--shard", type=parse_size, default=parse_size("64MB"), help="text per generated shard (default 64MB)")
    ap.add_argument("--facts", type=Path, default=FACTS, help="the KLAR folder (default ../shared/data/klar)")
    ap.add_argument("--batch", type=parse_size, default=parse_size("8MB"), help="text per batch (default 8MB)")
    ap.add_argument("--subsample", type=parse_size, default=parse_size("256MB"),
                    help="text the library baselines run on, in batches spread over the corpus (default 256MB)")
    ap.add_argument("--naive-bytes", type=parse_size, default=parse_size("1MB"), help="text the naive loop runs on (default 1MB)")
    ap.add_argument("--max-bytes", type=parse_size, help="read only this much of the corpus")
    ap.add_argument("--only-ours", action="store_true", help="time only our engine (and reading)")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS probes")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
