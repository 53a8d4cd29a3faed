"""Factual recall against fact frequency (arXiv 2505.14824; ``docs/facts.md`` for the counts).

A causal LM is asked each KLAR fact in a three-shot prompt, once per checkpoint, and whether it
recalls the object is set against how many corpus documents mention the subject and the object
together (``cooccurrence_docs`` of a fact-frequency release).

Prompts (:func:`build_prompt`). A KLAR file has ``prompt_templates`` with ``<subject>`` and
``<mask>``; the first template of the (language, relation) is used. Each demonstration is the
template with the subject filled in and ``<mask>`` replaced by the object; the query is the
template with its subject, cut at ``<mask>`` with trailing white space removed (a trailing space
would be a token of its own that the model rarely saw before a word). The three demonstrations
and the query are joined by newlines, as plain text (no chat template: the paper prompted base
models). Demonstrations come from the same language and relation, never the queried fact, drawn
by :func:`choose_demonstrations` with a generator seeded by (seed, relation, index): the language
is not part of the seed, so parallel languages get demonstrations of the same facts.

Decoding: greedy, at most :data:`MAX_NEW_TOKENS` new tokens, batched (prompts sorted by length to
pad little, answers put back in order).

Correctness (:func:`is_correct`). The answer is the generated text with leading white space
removed, up to its first line break (the model goes on with the next question after it).
Answer and target are normalised (:func:`normalise_answer`: NFKC, casefolded, runs of white space
made one space, stripped); the answer is correct when, for the object or one of its aliases, both
are non-empty and one is a prefix of the other (the paper's rule; so "Paris, France" and
"Par" both count for "Paris"). KLAR as published has no aliases; ``object_aliases`` of a facts
folder are used when present.

Analyses, per checkpoint (one model folder per training step, ``path@step``):

* accuracy per language and relation, and per language;
* crosslingual consistency of language L: Jaccard overlap of the sets of fact indices that L and
  English answer correctly (:func:`jaccard`; undefined, null, when both sets are empty);
* accuracy by frequency bin: 30 log-spaced bins from 1 to max + 1 (:func:`frequency_bin_edges`;
  the max over every count this run uses, so the bins are the same for all checkpoints and
  languages), zero counts in a bin of their own (bin 0);
* per language, the best single threshold t for "correct iff frequency >= t"
  (:func:`best_threshold`: the accuracy of that rule maximised, the smallest such t).

Counts per checkpoint (:func:`counts_for_steps`): when the release has the ``checkpoints``
config, a model at step s uses the cumulative counts at the release's checkpoint s, or, when the
release has no checkpoint s, at its latest checkpoint before s (noted in the tables and the
report); a step before the first checkpoint is an error. A release without that config, or a
model without a step, uses the final counts.

Outputs (:class:`experiments.common.RunDir`): tables ``predictions``, ``accuracy_by_relation``,
``languages``, ``frequency_bins``, ``checkpoints``; plots ``accuracy_by_frequency``,
``accuracy_by_frequency_languages``, ``accuracy_vs_step``; metrics.json, report.md, config.json.
"""

from __future__ import annotations

import gc
import math
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from experiments.common import (
    ExperimentError, RunDir, generate_greedy, load_causal_lm, load_release_split, model_record, pick_device,
    seed_everything,
)

ENGLISH = "en"
SHOTS = 3
MAX_NEW_TOKENS = 10
FREQUENCY_BINS = 30
SUBJECT, MASK = "<subject>", "<mask>"
FINAL_COUNTS = "final"
_WHITESPACE = re.compile(r"\s+")


# --------------------------------------------------------------------------- models and steps


@dataclass(frozen=True)
class ModelSpec:
    """A model folder and the training step it was saved at (None: not a checkpoint series)."""

    path: Path
    step: int | None = None

    @property
    def label(self) -> str:
        return f"step {self.step}" if self.step is not None else self.path.name


def parse_model_spec(text: str) -> ModelSpec:
    """``path`` or ``path@step`` (step: a non-negative integer)."""
    path, sep, step = text.rpartition("@")
    if not sep:
        return ModelSpec(Path(text))
    if not step.isdigit():
        raise ExperimentError(f"--model {text!r}: the part after '@' must be the training step, e.g. {path or 'model'}@1000")
    return ModelSpec(Path(path), int(step))


def order_models(models: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The models by step; several models need distinct steps."""
    if not models:
        raise ExperimentError("give at least one --model (a local model folder, optionally path@step)")
    if len(models) > 1:
        missing = [str(m.path) for m in models if m.step is None]
        if missing:
            raise ExperimentError(f"with several models each needs its training step (--model path@step); missing for: {', '.join(missing)}")
        steps = [m.step for m in models]
        if len(set(steps)) != len(steps):
            raise ExperimentError(f"two --model options name the same step: {sorted(steps)}")
    return sorted(models, key=lambda m: -1 if m.step is None else m.step)


# --------------------------------------------------------------------------- facts and prompts


@dataclass(frozen=True)
class KlarFacts:
    """``facts``: lang, relation, index, subject, object, object_aliases; ``templates``:
    (lang, relation) -> the template used."""

    facts: pl.DataFrame
    templates: dict[tuple[str, str], str]


def load_klar(klar_dir: Path | str, languages: Sequence[str] | None = None, relations: Sequence[str] | None = None) -> KlarFacts:
    """The facts and templates of a KLAR folder (read by :func:`pipelines.facts.facts.read_facts`),
    limited to ``languages`` and ``relations`` (all when None); unknown ones and missing templates
    are errors."""
    from pipelines.facts.facts import read_facts
    from pipelines.facts.summary import language_order

    if not Path(klar_dir).is_dir():
        raise ExperimentError(f"{klar_dir}: no KLAR folder (<lang>/<relation>.json with prompt templates); give --klar ../shared/data/klar")
    read = read_facts(klar_dir)
    have = language_order(read.facts["lang"].unique().to_list())
    wanted = list(languages) if languages else have
    unknown = [lang for lang in wanted if lang not in have]
    if unknown:
        raise ExperimentError(f"--languages: {', '.join(unknown)} not in {klar_dir} (it has {', '.join(have)})")
    known_relations = sorted(read.facts["relation"].unique().to_list())
    unknown = [rel for rel in relations or () if rel not in known_relations]
    if unknown:
        raise ExperimentError(f"--relations: {', '.join(unknown)} not in {klar_dir} (it has {', '.join(known_relations)})")
    facts = read.facts.filter(pl.col("lang").is_in(wanted) & pl.col("relation").is_in(list(relations or known_relations))).select("lang", "relation", "index", "subject", "object", "object_aliases")
    templates: dict[tuple[str, str], str] = {}
    for lang, relation, template in read.templates.iter_rows():
        if SUBJECT in template and MASK in template:
            templates.setdefault((lang, relation), template)  # the first usable template of the file
    lacking = sorted({(lang, rel) for lang, rel in facts.select("lang", "relation").unique().iter_rows()} - set(templates))
    if lacking:
        shown = ", ".join(f"{lang}/{rel}" for lang, rel in lacking[:5])
        raise ExperimentError(f"{klar_dir}: no prompt template with {SUBJECT} and {MASK} for {shown}; the KLAR files need prompt_templates")
    return KlarFacts(facts, templates)


def select_queries(facts: pl.DataFrame, max_per_relation: int | None, seed: int) -> pl.DataFrame:
    """The facts to ask: all, or per relation ``max_per_relation`` indices drawn (seeded) from those
    every language has under that relation, so that the languages stay parallel."""
    if max_per_relation is None:
        return _in_language_order(facts)
    n_langs = facts["lang"].n_unique()
    common = facts.group_by("relation", "index").agg(pl.len().alias("n")).filter(pl.col("n") == n_langs)
    chosen = []
    for relation in sorted(common["relation"].unique().to_list()):
        indices = sorted(common.filter(pl.col("relation") == relation)["index"].to_list())
        picked = random.Random(f"{seed}:queries:{relation}").sample(indices, min(max_per_relation, len(indices)))
        chosen += [(relation, i) for i in picked]
    keep = pl.DataFrame(chosen, schema={"relation": pl.String, "index": pl.Int64}, orient="row")
    return _in_language_order(facts.join(keep, on=["relation", "index"], how="semi"))


def _in_language_order(facts: pl.DataFrame) -> pl.DataFrame:
    """Sorted by language (KLAR's order), relation and index."""
    from pipelines.facts.summary import language_order

    rank = {lang: i for i, lang in enumerate(language_order(facts["lang"].unique().to_list()))}
    return facts.sort(pl.col("lang").replace_strict(rank, return_dtype=pl.Int64), "relation", "index")


def fill_template(template: str, subject: str, obj: str | None = None) -> str:
    """A demonstration (``obj`` given: ``<mask>`` replaced by it) or a query (cut at ``<mask>``,
    trailing white space removed)."""
    filled = template.replace(SUBJECT, subject)
    if obj is not None:
        return filled.replace(MASK, obj)
    return filled.split(MASK, 1)[0].rstrip()


def choose_demonstrations(pool: Sequence[int], query_index: int, relation: str, seed: int, shots: int = SHOTS) -> list[int]:
    """``shots`` fact indices from ``pool`` (the language's indices of the relation), never
    ``query_index``, drawn by a generator seeded by (seed, relation, query index); fewer when the
    pool is smaller."""
    candidates = sorted(i for i in set(pool) if i != query_index)
    return random.Random(f"{seed}:demos:{relation}:{query_index}").sample(candidates, min(shots, len(candidates)))


def build_prompt(template: str, demonstrations: Sequence[tuple[str, str]], subject: str) -> str:
    """Demonstrations ((subject, object) pairs) and the query, one per line."""
    lines = [fill_template(template, s, o) for s, o in demonstrations]
    return "\n".join([*lines, fill_template(template, subject)])


def build_prompts(klar: KlarFacts, queries: pl.DataFrame, seed: int, shots: int = SHOTS) -> pl.DataFrame:
    """``queries`` with ``prompt`` and ``demonstrations`` (the demonstration indices) added."""
    by_group: dict[tuple[str, str], dict[int, tuple[str, str]]] = {}
    for lang, relation, index, subject, obj in klar.facts.select("lang", "relation", "index", "subject", "object").iter_rows():
        by_group.setdefault((lang, relation), {})[index] = (subject, obj)
    prompts, demos = [], []
    for lang, relation, index, subject in queries.select("lang", "relation", "index", "subject").iter_rows():
        pool = by_group[(lang, relation)]
        chosen = choose_demonstrations(list(pool), index, relation, seed, shots)
        prompts.append(build_prompt(klar.templates[(lang, relation)], [pool[i] for i in chosen], subject))
        demos.append(chosen)
    return queries.with_columns(pl.Series("prompt", prompts, pl.String), pl.Series("demonstrations", demos, pl.List(pl.Int64)))


# --------------------------------------------------------------------------- scoring


def normalise_answer(text: str) -> str:
    """NFKC, casefolded, runs of white space made one space, stripped."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def extract_answer(generated: str) -> str:
    """The generated text without leading white space, up to its first line break."""
    return generated.lstrip().split("\n", 1)[0]


def is_prefix_match(prediction: str, target: str) -> bool:
    """Both non-empty once normalised, and one a prefix of the other."""
    p, t = normalise_answer(prediction), normalise_answer(target)
    return bool(p) and bool(t) and (p.startswith(t) or t.startswith(p))


def is_correct(generated: str, obj: str, aliases: Iterable[str] = ()) -> bool:
    """Whether the answer in ``generated`` matches the object or an alias (see the module docstring)."""
    answer = extract_answer(generated)
    return any(is_prefix_match(answer, target) for target in (obj, *aliases))


# --------------------------------------------------------------------------- analyses


def jaccard(a: Iterable[Any], b: Iterable[Any]) -> float | None:
    """|a & b| / |a | b|; None when both are empty."""
    a, b = set(a), set(b)
    union = a | b
    return len(a & b) / len(union) if union else None


def crosslingual_consistency(results: pl.DataFrame, reference: str = ENGLISH) -> dict[str, float | None]:
    """Per language of ``results`` (lang, index, correct): Jaccard of its correctly answered
    indices with those of ``reference``; empty when ``reference`` is not among them."""
    correct = {lang: set(idx) for lang, idx in results.filter(pl.col("correct")).group_by("lang").agg("index").iter_rows()}
    langs = results["lang"].unique().to_list()
    if reference not in langs:
        return {}
    return {lang: jaccard(correct.get(lang, set()), correct.get(reference, set())) for lang in langs}


def frequency_bin_edges(max_count: int, bins: int = FREQUENCY_BINS) -> np.ndarray:
    """``bins + 1`` log-spaced edges from 1 to ``max_count + 1``."""
    return np.logspace(0.0, math.log10(max(max_count, 0) + 1), bins + 1)


def assign_frequency_bins(counts: Sequence[int] | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each count: 0 for a zero count, else 1..len(edges)-1 (bin k holds [edge k-1, edge k);
    the last bin also holds anything at or above its upper edge)."""
    counts = np.asarray(counts, dtype=float)
    inner = np.clip(np.searchsorted(edges, counts, side="right"), 1, len(edges) - 1)
    return np.where(counts <= 0, 0, inner)


def accuracy_by_bin(frequency: Sequence[int], correct: Sequence[bool], edges: np.ndarray) -> pl.DataFrame:
    """One row per bin (zero bin included, empty bins too): bin, lower, upper, facts, correct,
    accuracy (null when empty). The zero bin has lower = upper = 0."""
    bins = assign_frequency_bins(frequency, edges)
    ok = np.asarray(correct, dtype=bool)
    rows = []
    for k in range(len(edges)):
        members = bins == k
        n = int(members.sum())
        hits = int(ok[members].sum())
        lower, upper = (0.0, 0.0) if k == 0 else (float(edges[k - 1]), float(edges[k]))
        rows.append((k, lower, upper, n, hits, hits / n if n else None))
    return pl.DataFrame(rows, schema={"bin": pl.Int64, "lower": pl.Float64, "upper": pl.Float64, "facts": pl.Int64,
                                      "correct": pl.Int64, "accuracy": pl.Float64}, orient="row")


def best_threshold(frequency: Sequence[int], correct: Sequence[bool]) -> tuple[int | None, float | None]:
    """(t, accuracy) of the rule "correct iff frequency >= t" that is right most often; t ranges
    over the observed frequencies and max + 1 (predicting every fact wrong); ties go to the
    smallest t. (None, None) without facts."""
    freq = np.asarray(frequency, dtype=np.int64)
    ok = np.asarray(correct, dtype=bool)
    if freq.size == 0:
        return None, None
    candidates = np.unique(np.append(freq, freq.max() + 1))
    right = np.sort(freq[ok])
    wrong = np.sort(freq[~ok])
    hits = (right.size - np.searchsorted(right, candidates, side="left")) + np.searchsorted(wrong, candidates, side="left")
    best = int(np.argmax(hits))  # first maximum: the smallest t
    return int(candidates[best]), float(hits[best] / freq.size)


# --------------------------------------------------------------------------- counts from the release


@dataclass(frozen=True)
class CountSource:
    """Where a model's frequencies come from: ``checkpoint`` (a release checkpoint step) or None
    for the final counts; ``exact``: the release checkpoint equals the model's step."""

    checkpoint: int | None
    exact: bool

    @property
    def label(self) -> str:
        if self.checkpoint is None:
            return FINAL_COUNTS
        return f"checkpoint {self.checkpoint}" + ("" if self.exact else " (latest before the step)")


def release_record(release: Path | str) -> dict[str, Any]:
    """What config.json records about the release: path, and for a release folder its dataset,
    version, candidate fingerprint and a hash of its manifest (which lists every file's hash)."""
    import hashlib

    path = Path(release).expanduser()
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return {"path": str(release)}
    from releases import read_manifest

    data = read_manifest(path)
    return {"path": str(path.resolve()), "dataset": data.get("dataset"), "version": data.get("version"),
            "candidate_fingerprint": data.get("candidate_fingerprint"),
            "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()}


def _release_frame(release: Path | str, config: str, columns: Sequence[str]) -> pl.DataFrame | None:
    """A config's train split as a polars frame of ``columns``; None when the release lacks the config."""
    from releases.errors import UnknownConfigError

    path = Path(release).expanduser()
    if (path / "manifest.json").is_file():
        from releases import read_manifest

        if config not in read_manifest(path).get("configs", {}):
            return None
    try:
        data = load_release_split(release, config, "train")
    except (UnknownConfigError, ExperimentError):
        if config == "all":
            raise
        return None
    missing = [c for c in columns if c not in data.column_names]
    if missing:
        raise ExperimentError(f"release {release}: config {config!r} lacks {', '.join(missing)}; give a fact-frequency release (`corpusforge release facts`)")
    return pl.from_arrow(data.select_columns(list(columns)).data.table).cast({"index": pl.Int64, "cooccurrence_docs": pl.Int64})


def counts_for_steps(release: Path | str, steps: Sequence[int | None]) -> tuple[dict[int | None, pl.DataFrame], dict[int | None, CountSource]]:
    """Per step: a frame (lang, index, frequency) and its :class:`CountSource` (module docstring)."""
    final = _release_frame(release, "all", ("lang", "index", "cooccurrence_docs"))
    final = final.rename({"cooccurrence_docs": "frequency"})
    at = _release_frame(release, "checkpoints", ("lang", "index", "checkpoint", "cooccurrence_docs"))
    available = sorted(at["checkpoint"].unique().to_list()) if at is not None else []
    frames: dict[int | None, pl.DataFrame] = {}
    sources: dict[int | None, CountSource] = {}
    for step in steps:
        if step is None or not available:
            frames[step], sources[step] = final, CountSource(None, False)
            continue
        before = [c for c in available if c <= step]
        if not before:
            raise ExperimentError(
                f"step {step} is before the release's first checkpoint ({available[0]}; it has {available}); "
                "build the release with that step among --checkpoints, or leave the step out to use the final counts"
            )
        chosen = before[-1]
        frames[step] = at.filter(pl.col("checkpoint") == chosen).select("lang", "index", pl.col("cooccurrence_docs").alias("frequency"))
        sources[step] = CountSource(chosen, chosen == step)
    return frames, sources


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class RecallOptions:
    languages: tuple[str, ...] | None = None
    relations: tuple[str, ...] | None = None
    max_facts_per_relation: int | None = None
    batch_size: int = 16
    seed: int = 0
    device: str = "auto"


def generate_in_length_order(model: Any, tokenizer: Any, prompts: Sequence[str], batch_size: int, description: str) -> list[str]:
    """Greedy answers of ``prompts`` in their order, generated shortest first (little padding)."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    generated = generate_greedy(model, tokenizer, [prompts[i] for i in order], max_new_tokens=MAX_NEW_TOKENS,
                                batch_size=batch_size, description=description)
    answers = [""] * len(prompts)
    for i, text in zip(order, generated):
        answers[i] = text
    return answers


def answer_with_model(spec: ModelSpec, prompts: pl.DataFrame, options: RecallOptions) -> pl.DataFrame:
    """``prompts`` with ``generated``, ``answer`` and ``correct`` from one model (freed afterwards)."""
    model, tokenizer = load_causal_lm(spec.path, options.device)
    try:
        generated = generate_in_length_order(model, tokenizer, prompts["prompt"].to_list(), options.batch_size, f"recall {spec.label}")
    finally:
        del model
        gc.collect()
        if pick_device(options.device).startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
    correct = [is_correct(g, o, a or ()) for g, o, a in zip(generated, prompts["object"], prompts["object_aliases"].to_list())]
    return prompts.with_columns(pl.Series("generated", generated, pl.String),
                                pl.Series("answer", [extract_answer(g) for g in generated], pl.String),
                                pl.Series("correct", correct, pl.Boolean))


def attach_frequencies(prompts: pl.DataFrame, counts: pl.DataFrame, release: Path | str) -> pl.DataFrame:
    """``prompts`` with ``frequency``; a fact the release does not count is an error."""
    joined = prompts.join(counts, on=["lang", "index"], how="left", maintain_order="left")
    missing = joined.filter(pl.col("frequency").is_null())
    if missing.height:
        shown = ", ".join(f"{lang}:{i}" for lang, i in missing.select("lang", "index").head(5).iter_rows())
        raise ExperimentError(f"release {release} has no counts for {missing.height} of the facts asked ({shown} ...); "
                              "give the release built from this KLAR folder")
    return joined


def summarise_checkpoint(rows: pl.DataFrame, edges: np.ndarray) -> dict[str, pl.DataFrame]:
    """The tables of one checkpoint's scored rows (lang, relation, index, correct, frequency)."""
    by_relation = (rows.group_by("lang", "relation").agg(pl.len().alias("facts"), pl.col("correct").sum().alias("correct"))
                   .with_columns((pl.col("correct") / pl.col("facts")).alias("accuracy")).sort("lang", "relation"))
    consistency = crosslingual_consistency(rows)
    lang_rows = []
    bins = [accuracy_by_bin(rows["frequency"].to_numpy(), rows["correct"].to_numpy(), edges).with_columns(pl.lit("all").alias("lang"))]
    for lang in rows["lang"].unique(maintain_order=True).to_list():
        part = rows.filter(pl.col("lang") == lang)
        freq, ok = part["frequency"].to_numpy(), part["correct"].to_numpy()
        threshold, threshold_accuracy = best_threshold(freq, ok)
        lang_rows.append({"lang": lang, "facts": part.height, "correct": int(ok.sum()), "accuracy": float(ok.mean()),
                          "consistency_en": consistency.get(lang), "threshold": threshold, "threshold_accuracy": threshold_accuracy,
                          "median_frequency": float(np.median(freq)), "zero_frequency": int((freq == 0).sum())})
        bins.append(accuracy_by_bin(freq, ok, edges).with_columns(pl.lit(lang).alias("lang")))
    languages = pl.DataFrame(lang_rows, schema={"lang": pl.String, "facts": pl.Int64, "correct": pl.Int64, "accuracy": pl.Float64,
                                                "consistency_en": pl.Float64, "threshold": pl.Int64, "threshold_accuracy": pl.Float64,
                                                "median_frequency": pl.Float64, "zero_frequency": pl.Int64})
    return {"accuracy_by_relation": by_relation, "languages": languages, "frequency_bins": pl.concat(bins).select("lang", pl.exclude("lang"))}


def _with_checkpoint(frame: pl.DataFrame, spec: ModelSpec, source: CountSource) -> pl.DataFrame:
    return frame.select(pl.lit(spec.step, pl.Int64).alias("step"), pl.lit(spec.label).alias("checkpoint"),
                        pl.lit(source.label).alias("counts"), pl.all())


@dataclass(frozen=True)
class RecallResult:
    run: RunDir
    tables: dict[str, pl.DataFrame]
    metrics: dict[str, Any]


def run_factual_recall(release: Path | str, klar: Path | str, models: Sequence[ModelSpec], out: Path | str,
                       options: RecallOptions = RecallOptions()) -> RecallResult:
    """Ask every model the facts, score, relate to the release's counts, write the run folder.

    Raises :class:`ExperimentError` for a missing model, KLAR folder or release config, facts the
    release does not count, steps the checkpoints cannot serve, or several models without steps."""
    models = order_models(models)
    for spec in models:
        model_record(spec.path)  # fails early, naming the folder, before anything runs
    seed_everything(options.seed)
    klar_facts = load_klar(klar, options.languages, options.relations)
    prompts = build_prompts(klar_facts, select_queries(klar_facts.facts, options.max_facts_per_relation, options.seed), options.seed)
    frames, sources = counts_for_steps(release, [m.step for m in models])
    asked = {step: attach_frequencies(prompts, frame, release) for step, frame in frames.items()}  # fails before any model runs
    edges = frequency_bin_edges(max(int(frame["frequency"].max() or 0) for frame in asked.values()))
    run = RunDir(Path(out))
    parts: dict[str, list[pl.DataFrame]] = {}
    for spec in models:
        scored = answer_with_model(spec, asked[spec.step], options)
        tables = {"predictions": scored.drop("object_aliases"), **summarise_checkpoint(scored, edges)}
        for name, frame in tables.items():
            parts.setdefault(name, []).append(_with_checkpoint(frame, spec, sources[spec.step]))
    tables = {name: pl.concat(frames_) for name, frames_ in parts.items()}
    tables["checkpoints"] = checkpoint_table(tables["predictions"], tables["languages"])
    tables["predictions"] = tables["predictions"].with_columns(pl.col("demonstrations").list.eval(pl.element().cast(pl.String)).list.join(" "))
    for name, frame in tables.items():
        run.table(name, frame)
    plot_accuracy_by_frequency(run, tables["frequency_bins"])
    plot_accuracy_vs_step(run, tables["checkpoints"], tables["languages"])
    metrics = build_metrics(tables, edges)
    run.metrics(metrics)
    run.config({
        "experiment": "factual-recall",
        "release": release_record(release),
        "klar": {"path": str(Path(klar).resolve()), "fingerprint": _folder_fingerprint(klar),
                 "templates": {f"{lang}/{rel}": t for (lang, rel), t in sorted(klar_facts.templates.items())}},
        "models": [{**model_record(m.path), "step": m.step, "counts": sources[m.step].label} for m in models],
        "options": {"languages": sorted(prompts["lang"].unique().to_list()), "relations": sorted(prompts["relation"].unique().to_list()), "max_facts_per_relation": options.max_facts_per_relation,
                    "batch_size": options.batch_size, "seed": options.seed, "device": pick_device(options.device)},
        "protocol": {"shots": SHOTS, "max_new_tokens": MAX_NEW_TOKENS, "decoding": "greedy", "frequency_bins": FREQUENCY_BINS,
                     "correct": "answer (up to the first line break) and object or alias, NFKC + casefold + white space collapsed, "
                                "both non-empty, one a prefix of the other"},
    })
    run.report(render_report(metrics, tables, models, sources))
    return RecallResult(run, tables, metrics)


def _folder_fingerprint(folder: Path | str) -> str:
    from pipelines.core.models import fingerprint_model_dir

    return fingerprint_model_dir(folder)  # a hash of the folder's files (not only for models)


def checkpoint_table(predictions: pl.DataFrame, languages: pl.DataFrame) -> pl.DataFrame:
    """One row per checkpoint: overall accuracy and mean consistency with English (other languages)."""
    overall = predictions.group_by("step", "checkpoint", "counts", maintain_order=True).agg(
        pl.len().alias("facts"), pl.col("correct").sum().alias("correct"), pl.col("correct").mean().alias("accuracy"))
    consistency = languages.filter(pl.col("lang") != ENGLISH).group_by("checkpoint", maintain_order=True).agg(
        pl.col("consistency_en").mean().alias("mean_consistency_en"))
    return overall.join(consistency, on="checkpoint", how="left", maintain_order="left")


def build_metrics(tables: Mapping[str, pl.DataFrame], edges: np.ndarray) -> dict[str, Any]:
    """Headline figures: per checkpoint the overall accuracy and, per language, accuracy,
    consistency with English and the best threshold; ``final``: the last checkpoint's."""
    checkpoints = []
    for row in tables["checkpoints"].iter_rows(named=True):
        langs = tables["languages"].filter(pl.col("checkpoint") == row["checkpoint"])
        checkpoints.append({**row, "languages": {r["lang"]: {k: r[k] for k in ("facts", "correct", "accuracy", "consistency_en",
                                                                               "threshold", "threshold_accuracy")}
                                                 for r in langs.iter_rows(named=True)}})
    predictions = tables["predictions"]
    first = predictions.filter(pl.col("checkpoint") == predictions["checkpoint"][0])
    return {"checkpoints": checkpoints, "final": checkpoints[-1],
            "facts_asked": first.height, "facts_per_language": dict(first.group_by("lang").len().sort("lang").iter_rows()),
            "frequency_bin_edges": [float(e) for e in edges]}


# --------------------------------------------------------------------------- plots and report


def plot_accuracy_by_frequency(run: RunDir, bins: pl.DataFrame) -> None:
    """Accuracy per frequency bin: all languages per checkpoint; per language at the last checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def draw(ax: Any, part: pl.DataFrame, label: str) -> None:
        part = part.filter(pl.col("facts") > 0)
        x = [0.5 if b == 0 else math.sqrt(lo * hi) for b, lo, hi in part.select("bin", "lower", "upper").iter_rows()]
        ax.plot(x, part["accuracy"].to_list(), marker="o", label=label)

    fig, ax = plt.subplots(figsize=(7, 4))
    pooled = bins.filter(pl.col("lang") == "all")
    for checkpoint in pooled["checkpoint"].unique(maintain_order=True).to_list():
        draw(ax, pooled.filter(pl.col("checkpoint") == checkpoint), checkpoint)
    _frequency_axes(ax, "Recall by co-occurrence frequency (all languages)")
    run.plot("accuracy_by_frequency", fig)

    last = bins["checkpoint"][-1]
    fig, ax = plt.subplots(figsize=(7, 4))
    per_lang = bins.filter((pl.col("checkpoint") == last) & (pl.col("lang") != "all"))
    for lang in per_lang["lang"].unique(maintain_order=True).to_list():
        draw(ax, per_lang.filter(pl.col("lang") == lang), lang)
    _frequency_axes(ax, f"Recall by co-occurrence frequency per language ({last})")
    run.plot("accuracy_by_frequency_languages", fig)


def _frequency_axes(ax: Any, title: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel("documents with subject and object (bin centre; 0 plotted at 0.5)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)


def plot_accuracy_vs_step(run: RunDir, checkpoints: pl.DataFrame, languages: pl.DataFrame) -> None:
    """Accuracy (per language and overall) and consistency with English against the training step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps_known = checkpoints["step"].null_count() == 0
    x_of = {c: (s if steps_known else i) for i, (s, c) in enumerate(checkpoints.select("step", "checkpoint").iter_rows())}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for lang in languages["lang"].unique(maintain_order=True).to_list():
        part = languages.filter(pl.col("lang") == lang)
        xs = [x_of[c] for c in part["checkpoint"]]
        left.plot(xs, part["accuracy"].to_list(), marker=".", alpha=0.6, label=lang)
        if lang != ENGLISH:
            right.plot(xs, part["consistency_en"].to_list(), marker=".", alpha=0.6, label=lang)
    left.plot([x_of[c] for c in checkpoints["checkpoint"]], checkpoints["accuracy"].to_list(), color="black", linewidth=2.5, marker="o", label="all")
    for ax, title in ((left, "accuracy"), (right, "Jaccard with English")):
        ax.set_xlabel("training step" if steps_known else "model")
        ax.set_ylabel(title)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle("Factual recall across checkpoints")
    run.plot("accuracy_vs_step", fig)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_report(metrics: Mapping[str, Any], tables: Mapping[str, pl.DataFrame], models: Sequence[ModelSpec],
                  sources: Mapping[int | None, CountSource]) -> str:
    final = metrics["final"]
    lines = [
        "# Factual recall against fact frequency",
        "",
        f"{metrics['facts_asked']} facts asked per checkpoint ({len(metrics['facts_per_language'])} languages), "
        f"{SHOTS}-shot KLAR prompts, greedy, at most {MAX_NEW_TOKENS} new tokens; correct when the answer (up to its first "
        "line break) and the object, normalised (NFKC, casefold, white space), are non-empty and one is a prefix of the other.",
        "",
        "## Checkpoints",
        "",
        "| checkpoint | counts used | accuracy | mean Jaccard with en |",
        "|---|---|---|---|",
    ]
    for row in metrics["checkpoints"]:
        lines.append(f"| {row['checkpoint']} | {row['counts']} | {_fmt(row['accuracy'])} | {_fmt(row['mean_consistency_en'])} |")
    inexact = [m for m in models if sources[m.step].checkpoint is not None and not sources[m.step].exact]
    if inexact:
        lines += ["", "Counts of an earlier release checkpoint were used for: "
                  + ", ".join(f"{m.label} (release checkpoint {sources[m.step].checkpoint})" for m in inexact) + "."]
    lines += ["", f"## Languages ({final['checkpoint']})", "",
              "| language | facts | accuracy | Jaccard with en | best threshold t | accuracy of freq >= t |", "|---|---|---|---|---|---|"]
    for lang, r in final["languages"].items():
        lines.append(f"| {lang} | {r['facts']} | {_fmt(r['accuracy'])} | {_fmt(r['consistency_en'])} | {_fmt(r['threshold'])} | {_fmt(r['threshold_accuracy'])} |")
    if ENGLISH not in final["languages"]:
        lines += ["", "English was not asked, so there is no crosslingual consistency."]
    lines += ["", "## Files", "",
              "- `tables/predictions.csv`: every prompt, generation, answer, correctness and frequency",
              "- `tables/accuracy_by_relation.csv`, `tables/languages.csv`, `tables/checkpoints.csv`",
              f"- `tables/frequency_bins.csv`: {FREQUENCY_BINS} log-spaced bins from 1 to max + 1 (bin 0: zero counts), per language and `all`",
              "- `plots/accuracy_by_frequency.png`, `plots/accuracy_by_frequency_languages.png`, `plots/accuracy_vs_step.png`",
              "- `metrics.json`, `config.json`", ""]
    return "\n".join(lines)


__all__ = [
    "ModelSpec", "parse_model_spec", "order_models", "KlarFacts", "load_klar", "select_queries", "fill_template",
    "choose_demonstrations", "build_prompt", "build_prompts", "normalise_answer", "extract_answer", "is_prefix_match",
    "is_correct", "jaccard", "crosslingual_consistency", "frequency_bin_edges", "assign_frequency_bins", "accuracy_by_bin",
    "best_threshold", "CountSource", "counts_for_steps", "release_record", "RecallOptions", "RecallResult", "run_factual_recall",
]
