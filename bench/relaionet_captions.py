"""Benchmark: LAIONet caption -> ImageNet class matching, ours against a naive per-lemma regex loop.

    python bench/relaionet_captions.py                      # 5,000,000 generated captions
    python bench/relaionet_captions.py --captions 200000    # quick look
    python bench/relaionet_captions.py --json               # also print the results as JSON
    python bench/relaionet_captions.py --json out.json      # ... or write them there

Captions are generated with a seeded generator in batches of ``--batch`` (never all in memory):
templates around lemmas of the class map (as spelled, hyphenated, upper or lower case), distractor
words (some holding a lemma inside a longer word: "oxen", "hens", "jackpot"), punctuation and
symbols between words, shared lemmas ("crane"), captions with lemmas of two synsets, captions
with no lemma, empty and null captions. Generation is not timed.

Everything runs single-threaded in this one process (``POLARS_MAX_THREADS=1``), so every figure
is per core:

* ``ours``: :func:`pipelines.relaionet.captions.match_captions` on each batch (the lemmas are
  compiled once, on the first call: timed apart as ``compile``).
* ``naive``: per caption, LAIONet's punctuation rule with ``re.sub`` and then, for each unique
  lemma, a precompiled ``\\b<lemma>\\b`` regex search; on the first ``--naive-captions`` captions,
  extrapolated. Its results are compared with ours on the same captions (they must agree).

Target (from the issue): ours >= 200,000 captions/s per core.
"""

from __future__ import annotations

import os

os.environ["POLARS_MAX_THREADS"] = "1"  # before polars is imported: every figure is per core
os.environ["RAYON_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Iterator, Sequence  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from pipelines.relaionet.captions import DROP_REASONS, match_captions  # noqa: E402
from pipelines.relaionet.classes import ClassMap, load_class_map  # noqa: E402

CLASS_INFO = Path(os.environ.get("IMAGENET_CLASS_INFO", REPO.parent / "shared" / "data" / "imagenet" / "class_info.json"))
TARGET_CAPTIONS_S = 200_000

TEMPLATES = (
    "a photo of a {}", "{} for sale", "Vintage {} poster, 1970s", "{}: close-up", "my {}'s best day!",
    "best {} ever #{}", "The {} at the zoo", "{} - stock image", "How to draw a {} (step by step)",
    "{} | free download", "cute {} wallpaper HD", "[{}] on white background", "I love my {} <3",
)
DISTRACTORS = (
    "the", "a", "of", "on", "in", "with", "and", "for", "new", "best", "sale", "free", "vintage", "blue", "red",
    "large", "small", "cute", "funny", "art", "print", "poster", "image", "stock", "2019", "hd", "wallpaper",
    "photo", "design", "home", "kids", "women", "men", "summer", "winter", "gift", "set", "pack", "style",
    "oxen", "hens", "boxes", "jackpot", "potato", "years", "flyer", "concatenate", "crane", "panda", "horn",
    "Ubuntu", "café", "naïve", "Straße", "señor",
)
GLUE = (" ", " ", " ", ", ", " - ", " | ", "! ", ": ", " (", ") ", " / ", "’s ", "... ", " & ", " ™ ")


def generate_batches(class_map: ClassMap, n: int, batch: int, seed: int) -> Iterator[list[str | None]]:
    """``n`` captions in lists of at most ``batch``, the same for the same seed."""
    rng = random.Random(seed)
    lemmas = class_map.lemmas
    by_class: dict[int, list[str]] = {}
    for lemma in lemmas:
        by_class.setdefault(class_map.class_of(lemma), []).append(lemma)
    classes = list(by_class)
    done = 0
    while done < n:
        size = min(batch, n - done)
        yield [_caption(rng, lemmas, by_class, classes) for _ in range(size)]
        done += size


def _variant(rng: random.Random, lemma: str) -> str:
    r = rng.random()
    if r < 0.70:
        return lemma
    if r < 0.80:
        return lemma.replace(" ", "-")
    if r < 0.90:
        return lemma.lower()
    return lemma.upper()


def _words(rng: random.Random, k: int) -> str:
    out = []
    for _ in range(k):
        out += [rng.choice(DISTRACTORS), rng.choice(GLUE)]
    return "".join(out)


def _caption(rng: random.Random, lemmas: Sequence[str], by_class: dict[int, list[str]], classes: list[int]) -> str | None:
    r = rng.random()
    if r < 0.02:
        return rng.choice((None, "", "   ", "!!!", "★★★"))
    if r < 0.25:  # no lemma (distractors only)
        return _words(rng, rng.randint(3, 12)).strip()
    template = rng.choice(TEMPLATES)
    lemma = _variant(rng, rng.choice(lemmas))
    if r < 0.33:  # lemmas of two synsets
        second = _variant(rng, rng.choice(by_class[rng.choice(classes)]))
        text = template.format(f"{lemma} and {second}", rng.choice(DISTRACTORS))
    elif r < 0.40:  # two lemmas of one synset
        c = rng.choice(classes)
        text = template.format(" / ".join(_variant(rng, x) for x in rng.sample(by_class[c], min(2, len(by_class[c])))),
                               rng.choice(DISTRACTORS))
    else:
        text = template.format(lemma, rng.choice(DISTRACTORS))
    return _words(rng, rng.randint(0, 5)) + text + rng.choice(GLUE) + _words(rng, rng.randint(0, 3)).strip()


class Timed:
    """Captions, wall-clock and CPU seconds of one method (one thread: CPU seconds are one core's)."""

    def __init__(self) -> None:
        self.captions, self.wall, self.cpu = 0, 0.0, 0.0

    @contextmanager
    def timing(self, captions: int) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self.captions += captions

    @property
    def per_cpu_s(self) -> float:
        return self.captions / self.cpu if self.cpu else float("nan")

    @property
    def per_wall_s(self) -> float:
        return self.captions / self.wall if self.wall else float("nan")

    def row(self) -> dict[str, Any]:
        return {"captions": self.captions, "wall_seconds": round(self.wall, 3), "cpu_seconds": round(self.cpu, 3),
                "captions_per_cpu_s": round(self.per_cpu_s, 1), "captions_per_wall_s": round(self.per_wall_s, 1)}


# --------------------------------------------------------------------------- the naive baseline


class NaiveMatcher:
    """The straightforward way: punctuation to spaces, then every lemma's regex on every caption."""

    def __init__(self, class_map: ClassMap) -> None:
        self.rules = [
            (re.compile(r"\b" + re.escape(class_map.lemma_forms[lemma]) + r"\b"), class_map.class_of(lemma))
            for lemma in class_map.lemmas
        ]
        self.punctuation = re.compile(r"[\W_]+")

    def match(self, caption: str | None) -> tuple[int | None, str | None]:
        words = self.punctuation.sub(" ", caption).strip() if caption is not None else ""
        if not words:
            return None, "empty_caption"
        found = {class_id for rule, class_id in self.rules if rule.search(words)}
        if not found:
            return None, "no_lemma"
        return (found.pop(), None) if len(found) == 1 else (None, "multiple_synsets")


# --------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> dict[str, Any]:
    class_map = load_class_map(args.class_info)
    load_before = os.getloadavg()[0]
    print(f"reLAIONet caption matching: {args.captions:,} generated captions (seed {args.seed}, batches of {args.batch:,}), "
          f"{len(class_map.lemmas):,} unique lemmas of {len(class_map.matchable_classes)} classes; POLARS_MAX_THREADS=1")
    reasons: Counter[str] = Counter()
    ours, compile_s, generate_s, chars = Timed(), 0.0, 0.0, 0
    first: list[str | None] = []
    ours_first: list[tuple[int | None, str | None]] = []
    t0 = time.perf_counter()
    for i, batch in enumerate(generate_batches(class_map, args.captions, args.batch, args.seed)):
        generate_s += time.perf_counter() - t0
        if i == 0:
            first = batch[: args.naive_captions]
            t1 = time.perf_counter()
            match_captions(batch[:1], class_map)  # compiles the lemmas (kept for the next calls)
            compile_s = time.perf_counter() - t1
        with ours.timing(len(batch)):
            result = match_captions(batch, class_map)
        t0 = time.perf_counter()
        chars += sum(len(c) for c in batch if c)
        reasons.update(result.get_column("drop_reason").fill_null("kept").to_list())
        if i == 0:
            ours_first = list(zip(result.get_column("class_id").to_list(), result.get_column("drop_reason").to_list()))

    naive_matcher, naive = NaiveMatcher(class_map), Timed()
    with naive.timing(len(first)):
        naive_first = [naive_matcher.match(c) for c in first]
    disagree = [i for i, (a, b) in enumerate(zip(naive_first, ours_first)) if a != b]
    speedup = ours.per_cpu_s / naive.per_cpu_s
    passed = ours.per_cpu_s >= TARGET_CAPTIONS_S
    load_after = os.getloadavg()[0]

    share = {reason: reasons[reason] / args.captions for reason in ("kept", *DROP_REASONS)}
    print(f"generate (not timed): {generate_s:.1f} s; {chars / args.captions:.0f} characters per caption on average")
    print(f"compile (first call): {compile_s:.3f} s")
    print(f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs: wall-clock rates "
          "drop when others share the cores; captions per CPU-second are the per-core figure")
    print(f"ours   match_captions              {ours.per_cpu_s:>12,.0f} captions/s per core (CPU time; wall clock {ours.per_wall_s:,.0f}/s, "
          f"{ours.wall:.1f} s for {args.captions:,})")
    print(f"naive  regex per lemma per caption {naive.per_cpu_s:>12,.0f} captions/s per core (CPU time; wall clock {naive.per_wall_s:,.0f}/s, "
          f"{len(first):,} captions, {args.captions / naive.per_cpu_s / 60:,.1f} min extrapolated to {args.captions:,})")
    print(f"speed-up: {speedup:,.0f}x")
    print("results: " + ", ".join(f"{k} {v:.1%}" for k, v in share.items()))
    print(f"naive agrees with ours on {len(first) - len(disagree):,}/{len(first):,} captions" +
          (f"; first disagreements at {disagree[:5]}" if disagree else ""))
    print(f"{'PASS' if passed else 'MISS'}  target ours >= {TARGET_CAPTIONS_S:,} captions/s per core: {ours.per_cpu_s:,.0f} "
          f"(wall clock: {ours.per_wall_s:,.0f}, {'PASS' if ours.per_wall_s >= TARGET_CAPTIONS_S else 'MISS'})")
    result = {
        "captions": args.captions, "seed": args.seed, "batch": args.batch, "threads": 1,
        "unique_lemmas": len(class_map.lemmas), "classes": len(class_map.matchable_classes),
        "mean_caption_chars": round(chars / args.captions, 1),
        "generate_seconds": round(generate_s, 3), "compile_seconds": round(compile_s, 4),
        "ours": ours.row(), "naive": {**naive.row(), "extrapolated": True},
        "speedup": round(speedup, 1), "results": {k: reasons[k] for k in ("kept", *DROP_REASONS)},
        "naive_agrees": not disagree, "disagreements": len(disagree),
        "target": {"captions_per_s": TARGET_CAPTIONS_S, "value": round(ours.per_cpu_s, 1), "pass": passed,
                   "wall_value": round(ours.per_wall_s, 1), "wall_pass": ours.per_wall_s >= TARGET_CAPTIONS_S},
        "machine": {"python": platform.python_version(), "polars": pl.__version__, "cpus": os.cpu_count(),
                    "load_average_1min": [round(load_before, 2), round(load_after, 2)]},
    }
    if args.json == "-":
        print(json.dumps(result, indent=2))
    elif args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"json: {path}")
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=int, default=5_000_000, help="captions to generate and match (default 5,000,000)")
    ap.add_argument("--batch", type=int, default=100_000, help="captions per batch (default 100,000)")
    ap.add_argument("--naive-captions", type=int, default=2_000, help="captions the naive loop runs on (default 2,000)")
    ap.add_argument("--seed", type=int, default=20230601)
    ap.add_argument("--class-info", type=Path, default=CLASS_INFO, help="ImageNet class_info.json (default ../shared/data/imagenet)")
    ap.add_argument("--json", nargs="?", const="-", help="print the results as JSON, or write them to this path")
    args = ap.parse_args(argv)
    if args.captions < 1 or args.batch < 1 or args.naive_captions < 1:
        ap.error("--captions, --batch and --naive-captions must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
