"""The PolyRefuse pipeline declaration and the library entry point ``build_polyrefuse``.

::

    import (sources dir [+ translations dir] -> prompts, translations, missing; bad rows -> rejects)
      [-> translate (model backends: en -> every language, cached; pipelines/polyrefuse/machine_translation.py)]
      [-> back_translate (translation.back_translation: every translation back into English, cached)]
      -> check (automatic translation checks: flags with reasons, no edits)
      [corrections (a proofreading corrections file, when given: pipelines/polyrefuse/corrections.py)]
      -> assemble (one row per prompt and language, English included, corrections applied: the candidate)

Partitions. Published translations are a few thousand rows: one partition. With a model backend
the prompts are split into ``translation.partitions`` partitions by a hash of their id, and every
later step works partition by partition (a prompt's rows, in every language, stay in its
partition), so translation tasks run in parallel (worker processes, or a Ray cluster).

Inputs. ``sources_dir`` is the folder of the English sources: ``splits/`` (the six published
split files), ``raw/`` (the raw benchmark files) and ``processed/alpaca.json``, or a folder that
directly holds the six split files. ``sources.mode = "published"`` reads the split files (traced
to their benchmarks when ``raw/`` is there); ``"rebuild"`` rebuilds them from ``raw/``. With the
``published`` translation backend, ``translation.translations_dir`` holds PolyRefuse's files
(``<label>_<split>_translated_<lang>.json``); their harmless test files also give the harmless
test prompts (PolyRefuse's own subset, see :func:`~pipelines.polyrefuse.published.with_published_harmless_test`),
and the harmless train/validation prompts become PolyRefuse's own subsets, the split-file rows that
``pipelines/polyrefuse/harmless_subsets.json`` lists (:func:`~pipelines.polyrefuse.published.with_published_harmless_subsets`).

The import step is one unit whose content hash combines every file it reads: the split files,
the raw files and Alpaca, and every file of the translations folder, so changing any of them
re-runs the build; paths themselves are not fingerprinted.

Gaps are declared, never silent: a (language, split, label) without a usable file lands in
``missing`` with the reason (no file; in a rebuild, harmful and harmless train/validation
translations, whose published order follows the published draws). Validation decides whether
gaps are acceptable (``validation.allow_declared_missing``).

Errors: a missing sources folder or split file, a translations folder that does not exist, a
translation file whose row count differs from its English split or whose English does not match
(:class:`~pipelines.core.errors.InputError` naming the file, and the row where known).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core.errors import CorpusforgeError, InputError
from pipelines.core.executor import BuildResult, Executor, LocalExecutor, NO_PROGRESS, Progress
from pipelines.core.fileio import sha256_file
from pipelines.core.stage import StageStore
from pipelines.core.step import Emitter, Input, MapStep, Output, Pipeline, SourceStep, SourceUnit, StepResult, by_key_crc32
from pipelines.polyrefuse.checks import CHECKS, run_checks
from pipelines.polyrefuse.corrections import CORRECTIONS_SCHEMA, apply_corrections, read_corrections
from pipelines.polyrefuse.machine_translation import (
    BACK_TRANSLATIONS_SCHEMA,
    ModelStepParams,
    back_translate_partition,
    model_identity,
    translate_partition,
)
from pipelines.polyrefuse.published import (
    HARMLESS_SUBSETS,
    MISSING_SCHEMA,
    TRANSLATIONS_SCHEMA,
    import_published,
    published_file,
    with_published_harmless_subsets,
    with_published_harmless_test,
)
from pipelines.polyrefuse.settings import SOURCE_LANGUAGE, PolyRefuseSettings, only
from pipelines.polyrefuse.translate import TranslationCache
from pipelines.polyrefuse.sources import RAW_FILES, SPLIT_FILE_STEMS, read_splits, rebuild_splits
from schemas.polyrefuse import LABEL, LANGUAGES, MISSING, PROMPTS, ROWS, SOURCE_BACKEND, SPLITS

FINAL_STEP = "assemble"
SPLIT_FILES = tuple(f"{label}_{stem}.json" for label in LABEL.names for stem in SPLIT_FILE_STEMS.values())
ALPACA = Path("processed") / "alpaca.json"

CHECKED_SCHEMA = pl.Schema({
    "prompt_id": pl.String, "lang": pl.String, "detected_lang": pl.String, "lang_confidence": pl.Float64,
    "script_share": pl.Float64, "length_ratio": pl.Float64, "copied_word_share": pl.Float64,
    "lost_tokens": pl.List(pl.String), "flags": pl.List(pl.String), "flag_reasons": pl.List(pl.String),
})
_PROMPT_COLUMNS = tuple(PROMPTS.column_names)
_TRANSLATION_COLUMNS = tuple(TRANSLATIONS_SCHEMA.names())


def by_prompt_id(df: pl.DataFrame, partitions: int) -> pl.Series:
    """Partition of each row: crc32 of its prompt id modulo ``partitions`` (stable across runs and
    library versions); tables without prompt ids (the declared gaps) go to partition 0."""
    return by_key_crc32(df, partitions, "prompt_id")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SourceLayout:
    """Where the English sources are, under the folder given to the build."""

    root: Path
    splits_dir: Path
    raw_dir: Path | None  # None: no raw files (prompts are not traced; no rebuild)
    alpaca: Path | None

    @classmethod
    def of(cls, sources_dir: Path) -> "SourceLayout":
        root = Path(sources_dir).resolve()
        splits = root if (root / SPLIT_FILES[0]).exists() else root / "splits"
        raw = splits.parent / "raw"
        raw_dir = raw if raw.is_dir() else None
        alpaca = raw.parent / ALPACA
        return cls(root, splits, raw_dir, alpaca if alpaca.is_file() else None)

    def files(self, mode: str) -> list[Path]:
        """The files the import reads (those that exist: a missing one is reported by the reader)."""
        out = [self.splits_dir / name for name in SPLIT_FILES] if mode == "published" else []
        if self.raw_dir is not None:
            out += [self.raw_dir / name for _, names in RAW_FILES.values() for name in names]
        if self.alpaca is not None:
            out.append(self.alpaca)
        return [p for p in out if p.is_file()]


@dataclass(frozen=True)
class PolyRefuseInputs:
    layout: SourceLayout
    translations_dir: Path | None
    unit: SourceUnit
    files: tuple[tuple[str, str, int], ...]  # (path relative to its folder, sha256, bytes)
    corrections: SourceUnit | None = None  # a proofreading corrections file
    model_identity: str | None = None  # translation model (model backends)
    back_translation_identity: str | None = None  # back-translation model, when configured


def resolve_inputs(
    sources_dir: Path | str,
    settings: PolyRefuseSettings,
    hash_file: Callable[[Path], str] = sha256_file,
    corrections: Path | None = None,
) -> PolyRefuseInputs:
    """Check the inputs, fingerprint every file the import reads (content hashes) and identify
    the models (their files' hash, or a server's model id: this also checks that it answers)."""
    sources_dir = Path(sources_dir)
    if not sources_dir.is_dir():
        raise InputError(
            sources_dir,
            "no such folder of PolyRefuse sources",
            "Give the folder holding splits/ (the six {harmful,harmless}_{train,val,test}.json files), raw/ and "
            "processed/alpaca.json, or a folder holding the six split files",
        )
    layout = SourceLayout.of(sources_dir)
    mode = settings.sources.mode
    if mode == "rebuild" and layout.raw_dir is None:
        raise InputError(
            layout.root, "sources.mode = rebuild needs the raw benchmark files, but there is no raw/ folder",
            "Give the folder holding raw/ and processed/alpaca.json, or use sources.mode = published",
        )
    translations_dir = settings.translation.translations_dir
    if settings.translated_languages and settings.translation.backend == "published":
        if translations_dir is None:
            raise CorpusforgeError(
                f"the published backend needs the folder of published translations for "
                f"{', '.join(settings.translated_languages)}: pass --translations DIR (or set "
                f"polyrefuse.translation.translations_dir), or build English only with --languages en"
            )
        translations_dir = Path(translations_dir).resolve()
        if not translations_dir.is_dir():
            raise InputError(
                translations_dir, "no such folder of published translations",
                "Give the folder holding <label>_<split>_translated_<lang>.json files",
            )
    else:
        translations_dir = None
    records: list[tuple[str, str, int]] = []
    for path in layout.files(mode):
        records.append((path.relative_to(layout.root).as_posix() if path.is_relative_to(layout.root) else path.name,
                        hash_file(path), path.stat().st_size))
    if translations_dir is not None:
        for path in sorted(p for p in translations_dir.rglob("*") if p.is_file()):
            records.append((f"translations/{path.relative_to(translations_dir).as_posix()}", hash_file(path), path.stat().st_size))
    combined = hashlib.sha256("".join(f"{name}\t{sha}\n" for name, sha, _ in records).encode()).hexdigest()
    unit = SourceUnit(str(layout.root), combined, sum(size for _, _, size in records))
    correction_unit = None
    if corrections is not None:
        corrections = Path(corrections)
        if not corrections.is_file():
            raise InputError(corrections, "no such corrections file",
                             "Give the corrections.parquet of a proofreading pull (`corpusforge annotate pull polyrefuse`)")
        correction_unit = SourceUnit(str(corrections.resolve()), hash_file(corrections), corrections.stat().st_size)
    translation = settings.translation
    identity = model_identity(translation.backend, translation.model) if translation.uses_model and settings.translated_languages else None
    back = translation.back_translation_backend()
    back_identity = model_identity(*back) if back is not None and settings.translated_languages else None
    return PolyRefuseInputs(layout, translations_dir, unit, tuple(records), correction_unit, identity, back_identity)


# --------------------------------------------------------------------------- step functions


class ImportParams(BaseModel):
    """What the import reads: its settings, and the translations folder (by content, not path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: PolyRefuseSettings
    translations_dir: str | None = Field(None, exclude=True)  # fingerprinted through the unit's hash
    harmless_subsets: str = Field(default_factory=lambda: sha256_file(HARMLESS_SUBSETS))  # the bundled list, by content


REBUILD_TRAIN_REASON = (
    "sources.mode = rebuild draws the harmful train prompts anew (seeded), but {file} follows the published "
    "(unseeded) draw: its rows cannot be aligned with the rebuilt prompts; build with sources.mode = published"
)


def _missing_frame(rows: list[dict]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema=MISSING_SCHEMA)
    order = (
        pl.col("lang").replace_strict({lang: i for i, lang in enumerate(LANGUAGES)}, return_dtype=pl.Int32),
        pl.col("label"),
        pl.col("split").replace_strict({s: i for i, s in enumerate(SPLITS)}, return_dtype=pl.Int32),
    )
    return (
        df.with_columns(
            (pl.col("lang") + "/" + pl.col("label") + "/" + pl.col("split")).alias("gap_id"),
            pl.col("label").replace_strict({name: i for i, name in enumerate(LABEL.names)}, return_dtype=pl.Int64),
        )
        .sort(*order)
        .select(MISSING.column_names)
    )


def _import_translations(prompts: pl.DataFrame, folder: Path, languages: tuple[str, ...], rebuilt: bool):
    """import_published, except that a rebuild's harmful train is declared missing (never misaligned)."""
    if not rebuilt:
        return import_published(prompts, folder, languages, harmless_subsets_aligned=True)
    with tempfile.TemporaryDirectory(prefix="polyrefuse-published-") as tmp:
        view = Path(tmp)
        for f in folder.iterdir():
            if f.is_file() and not f.name.startswith("harmful_train_translated_"):
                (view / f.name).symlink_to(f.resolve())
        imp = import_published(prompts, view, languages)
    n_train = prompts.filter((pl.col("split") == "train") & (pl.col("label") == LABEL.index("harmful"))).height
    gaps = []
    for row in imp.missing.iter_rows(named=True):
        if (row["split"], row["label"]) == ("train", "harmful"):
            continue
        gaps.append({**row, "reason": row["reason"].replace(str(view), str(folder))})
    for lang in languages:
        if lang == SOURCE_LANGUAGE:
            continue
        path = published_file(folder, "harmful", "train", lang)
        reason = REBUILD_TRAIN_REASON.format(file=path.name) if path.exists() else f"no file {path.name} in {folder}"
        gaps.append({"lang": lang, "split": "train", "label": "harmful", "prompts": n_train, "reason": reason})
    imp.missing = pl.DataFrame(gaps, schema=MISSING_SCHEMA)
    return imp


def read_sources(unit: SourceUnit, params: ImportParams, emitter: Emitter) -> None:
    """The import step: English prompts, published translations and declared gaps of one sources folder."""
    settings = params.settings
    layout = SourceLayout.of(Path(unit.path))
    src = settings.sources
    if src.mode == "published":
        result = read_splits(
            layout.splits_dir, raw_dir=layout.raw_dir, alpaca_path=layout.alpaca,
            harmless_sizes=src.harmless_sizes, harmless_seed=src.harmless_seed,
        )
    else:
        assert layout.raw_dir is not None  # resolve_inputs checked it
        result = rebuild_splits(
            layout.raw_dir, seed=src.seed, max_per_source=src.max_per_source, alpaca_path=layout.alpaca,
            harmless_sizes=src.harmless_sizes, harmless_seed=src.harmless_seed,
        )
    prompts = result.prompts
    translations = pl.DataFrame(schema=TRANSLATIONS_SCHEMA)
    missing = pl.DataFrame(schema=MISSING_SCHEMA)
    languages = settings.translated_languages
    if languages and params.translations_dir is not None:
        folder = Path(params.translations_dir)
        prompts = with_published_harmless_test(prompts, folder)
        if src.mode == "published":
            prompts = with_published_harmless_subsets(prompts, folder, layout.splits_dir)
        imp = _import_translations(prompts, folder, languages, rebuilt=src.mode == "rebuild")
        # stage content names files, not local paths (the fingerprint ignores paths too)
        translations = imp.translations.with_columns(pl.col("source_file").map_elements(lambda f: Path(f).name, return_dtype=pl.String))
        missing = imp.missing.with_columns(pl.col("reason").str.replace_all(str(folder), folder.name, literal=True))
    emitter.emit("prompts", prompts)
    emitter.emit("translations", translations)
    emitter.emit("missing", _missing_frame(missing.to_dicts()))
    emitter.reject(result.rejects)
    for split, label, n in prompts.group_by("split", "label").len().iter_rows():
        emitter.count(f"prompts_{LABEL.names[label]}_{split}", n)
    for lang, n in translations.group_by("lang").len().iter_rows():
        emitter.count(f"translations_{lang}", n)
    for lang, n in missing.group_by("lang").agg(pl.col("prompts").sum()).iter_rows():
        emitter.count(f"declared_missing_{lang}", n)
    emitter.advance(unit.size)


def check_translations(frames: dict[str, pl.DataFrame], params: PolyRefuseSettings) -> StepResult:
    """Automatic checks of every translation against its English prompt (flags, never edits)."""
    translations = frames["translations"]
    if translations.height == 0:
        return StepResult({"checked": pl.DataFrame(schema=CHECKED_SCHEMA)})
    english = frames["prompts"].select("prompt_id", pl.col("instruction_en").alias("source"))
    rows = translations.join(english, on="prompt_id", how="left", maintain_order="left")
    if "back_translations" in frames:
        rows = rows.join(frames["back_translations"].select("prompt_id", "lang", "back_translation"),
                         on=["prompt_id", "lang"], how="left", maintain_order="left")
    else:
        rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias("back_translation"))
    checked = run_checks(rows.select("prompt_id", "lang", "source", "translation", "back_translation"), params.checks)
    counters = {f"flagged_{name}": int(checked.get_column(f"flag_{name}").sum()) for name in CHECKS}
    counters["flagged_rows"] = int((checked.get_column("flags").list.len() > 0).sum())
    return StepResult({"checked": checked.select(CHECKED_SCHEMA.names())}, counters=counters)


def order_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows in release order: language (canonical order), label, split, position in the split file."""
    order = {lang: i for i, lang in enumerate(LANGUAGES)}
    return rows.sort(
        pl.col("lang").replace_strict(order, return_dtype=pl.Int32), "label",
        pl.col("split").replace_strict({s: i for i, s in enumerate(SPLITS)}, return_dtype=pl.Int32), "position",
    )


def assemble_rows(frames: dict[str, pl.DataFrame], params: None) -> StepResult:
    """One row per prompt and language (English from the prompts), ordered by language, label,
    split, position; back-translations joined and proofreading corrections applied when given."""
    prompts = frames["prompts"]
    no_flags = pl.lit([], dtype=pl.List(pl.String))
    english = prompts.with_columns(
        pl.lit(SOURCE_LANGUAGE).alias("lang"),
        pl.col("instruction_en").alias("instruction"),
        pl.lit(SOURCE_BACKEND).alias("backend"),
        pl.lit(None, dtype=pl.String).alias("model"),
        pl.lit(None, dtype=pl.String).alias("model_version"),
        no_flags.alias("flags"),
        no_flags.alias("flag_reasons"),
        pl.lit(None, dtype=pl.String).alias("back_translation"),
    )
    back = frames.get("back_translations", pl.DataFrame(schema=BACK_TRANSLATIONS_SCHEMA))
    translated = (
        frames["translations"]
        .join(prompts, on="prompt_id", how="inner")
        .join(frames["checked"].select("prompt_id", "lang", "flags", "flag_reasons"), on=["prompt_id", "lang"], how="left")
        .join(back.select("prompt_id", "lang", "back_translation"), on=["prompt_id", "lang"], how="left")
        .with_columns(
            pl.col("translation").alias("instruction"),
            pl.col("flags").fill_null(no_flags),
            pl.col("flag_reasons").fill_null(no_flags),
        )
    )
    provenance = ("proofreading", "instruction_machine", "proofread_by", "proofread_at", "proofreading_note")
    columns = [c for c in ROWS.column_names if c != "row_id" and c not in provenance]
    rows = pl.concat([english.select(columns), translated.select(columns)], how="vertical").with_columns(
        (pl.col("prompt_id") + ":" + pl.col("lang")).alias("row_id"),
        pl.when(pl.col("flags").list.len() > 0).then(pl.lit("pending")).otherwise(pl.lit("not_needed")).alias("proofreading"),
        *[pl.lit(None, dtype=pl.String).alias(c) for c in provenance[1:]],
    )
    rejects = []
    counters: dict[str, int] = {}
    if "corrections" in frames:
        rows, correction_rejects, counters = apply_corrections(rows, frames["corrections"])
        rejects.append(correction_rejects)
    rows = order_rows(rows).select(ROWS.column_names)
    dangling = frames["translations"].join(prompts, on="prompt_id", how="anti")
    if dangling.height:  # cannot happen with the published backend (rows are aligned to prompts)
        rejects.append(dangling.select(
            (pl.col("prompt_id") + ":" + pl.col("lang")).alias("record_id"),
            pl.lit("unknown_prompt").alias("drop_reason"),
            pl.lit("a translation of a prompt id that is not among the English prompts").alias("detail"),
        ))
    for status, n in rows.group_by("proofreading").len().iter_rows():
        counters[f"proofreading_{status}"] = n
    outputs = {"rows": rows, "missing": frames["missing"], "prompts": prompts}
    return StepResult(outputs, rejects=pl.concat(rejects) if rejects else None, counters=counters)


# --------------------------------------------------------------------------- declaration


def polyrefuse_pipeline(inputs: PolyRefuseInputs, settings: PolyRefuseSettings, cache_path: Path | None = None) -> Pipeline:
    """The steps for these inputs and settings (see the module docstring); ``cache_path`` is the
    translation cache of the model steps (default: ``translations.sqlite`` beside the stages)."""
    translation = settings.translation
    import_params = ImportParams(
        settings=only(settings, "languages", "sources", "translation").model_copy(
            update={"translation": translation.model_copy(update={"translations_dir": None})}
        ),
        translations_dir=str(inputs.translations_dir) if inputs.translations_dir is not None else None,
    )
    modelled = translation.uses_model and bool(settings.translated_languages)
    partitions = translation.partitions if modelled else 1
    steps: list = [SourceStep(
        name="import",
        version="2",  # 2: PolyRefuse's harmless train/validation subsets with published translations
        description="English prompts (split files or rebuild), published translations, declared gaps.",
        read=read_sources,
        outputs=(Output.of(PROMPTS), Output("translations", TRANSLATIONS_SCHEMA), Output.of(MISSING)),
        partition_by=by_prompt_id,
        units=(inputs.unit,),
        partitions=partitions,
        params=import_params,
    )]
    translations = "import.translations"
    cache = str(cache_path) if cache_path is not None else ""

    def model_params(backend: str, model, identity: str | None, languages: tuple[str, ...]) -> ModelStepParams:
        return ModelStepParams(backend=backend, model=model, model_identity=identity or "", languages=languages, cache_path=cache)

    def gpu(model) -> tuple[tuple[str, float], ...]:
        return (("num_gpus", model.gpus_per_task),) if model.gpus_per_task else ()

    if modelled:
        steps.append(_map_step(
            "translate", "Machine translation of every English prompt into every configured language (cached).",
            translate_partition,
            (Input("prompts", "import.prompts", ("prompt_id", "instruction_en")),),
            (Output("translations", TRANSLATIONS_SCHEMA),),
            model_params(translation.backend, translation.model, inputs.model_identity, settings.translated_languages),
            gpu(translation.model),
        ))
        translations = "translate.translations"
    back = translation.back_translation_backend()
    check_inputs = [
        Input("translations", translations, ("prompt_id", "lang", "translation")),
        Input("prompts", "import.prompts", ("prompt_id", "instruction_en"), broadcast=True),
    ]
    assemble_inputs = [
        Input("prompts", "import.prompts", _PROMPT_COLUMNS),
        Input("translations", translations, _TRANSLATION_COLUMNS),
        Input("checked", "check.checked", ("prompt_id", "lang", "flags", "flag_reasons")),
        Input("missing", "import.missing", tuple(MISSING.column_names)),
    ]
    if back is not None and settings.translated_languages:
        steps.append(_map_step(
            "back_translate", "Every translation back into English, for the back-translation check (cached).",
            back_translate_partition,
            (Input("translations", translations, ("prompt_id", "lang", "translation")),),
            (Output("back_translations", BACK_TRANSLATIONS_SCHEMA),),
            model_params(back[0], back[1], inputs.back_translation_identity, ()),
            gpu(back[1]),
        ))
        bt = Input("back_translations", "back_translate.back_translations", ("prompt_id", "lang", "back_translation"))
        check_inputs.append(bt)
        assemble_inputs.append(bt)
    steps.append(MapStep(
        name="check",
        version="2",
        description="Automatic translation checks: flags with readable reasons, no edits.",
        transform=check_translations,
        inputs=tuple(check_inputs),
        outputs=(Output("checked", CHECKED_SCHEMA),),
        params=only(settings, "checks"),
    ))
    if inputs.corrections is not None:
        steps.append(SourceStep(
            name="corrections",
            version="1",
            description="Proofreading corrections (annotation layer), checked.",
            read=read_corrections,
            outputs=(Output("corrections", CORRECTIONS_SCHEMA),),
            partition_by=by_prompt_id,
            units=(inputs.corrections,),
            partitions=partitions,
        ))
        assemble_inputs.append(Input("corrections", "corrections.corrections", tuple(CORRECTIONS_SCHEMA.names())))
    steps.append(MapStep(
        name=FINAL_STEP,
        version="2",
        description="One row per prompt and language, English included; proofreading state from the flags and corrections.",
        transform=assemble_rows,
        inputs=tuple(assemble_inputs),
        # the prompts pass through, so that the candidate is the outputs of one step
        outputs=(Output.of(ROWS), Output.of(MISSING), Output.of(PROMPTS)),
    ))
    return Pipeline("polyrefuse", tuple(steps))


def _map_step(name, description, transform, inputs, outputs, params, resources) -> MapStep:
    return MapStep(name=name, version="1", description=description, transform=transform, inputs=inputs,
                   outputs=outputs, params=params, resources=resources)


def build_polyrefuse(
    sources_dir: Path | str,
    settings: PolyRefuseSettings,
    stages_root: Path,
    executor: Executor | None = None,
    progress: Progress = NO_PROGRESS,
    hash_file: Callable[[Path], str] = sha256_file,
    corrections: Path | None = None,
    cache_path: Path | None = None,
) -> BuildResult:
    """Build the PolyRefuse release candidate under ``stages_root``; unchanged steps are skipped.

    ``corrections``: a proofreading corrections file to apply; ``cache_path``: the translation
    cache of the model backends (default ``<stages_root>/../translations.sqlite``).
    """
    inputs = resolve_inputs(sources_dir, settings, hash_file, corrections)
    cache_path = Path(cache_path) if cache_path is not None else Path(stages_root).resolve().parent / "translations.sqlite"
    if settings.translation.uses_model or settings.translation.back_translation_backend() is not None:
        TranslationCache(cache_path).close()  # created (in WAL mode) once, before parallel tasks open it
    pipeline = polyrefuse_pipeline(inputs, settings, cache_path)
    outcomes = (executor or LocalExecutor()).run(pipeline, Path(stages_root), progress)
    return BuildResult(inputs, outcomes, Path(stages_root))


def read_candidate(stages_root: Path) -> dict[str, pl.DataFrame]:
    """``prompts``, ``rows`` and ``missing`` of the last completed build (raises when there is none)."""
    store = StageStore(Path(stages_root))
    if store.fingerprint_of(FINAL_STEP) is None:
        raise InputError(stages_root, "no completed PolyRefuse build here", "Run `corpusforge build polyrefuse --sources ...` first")
    tables = {table.name: store.read(FINAL_STEP, table.name, table.polars_schema()) for table in (PROMPTS, ROWS, MISSING)}
    # partitions are stored one after another: restore the release order
    tables["rows"] = order_rows(tables["rows"])
    tables["prompts"] = tables["prompts"].sort(
        "label", pl.col("split").replace_strict({s: i for i, s in enumerate(SPLITS)}, return_dtype=pl.Int32), "position"
    )
    return tables


def candidate_fingerprint(stages_root: Path) -> str | None:
    return StageStore(Path(stages_root)).fingerprint_of(FINAL_STEP)
