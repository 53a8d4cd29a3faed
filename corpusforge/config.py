"""Configuration: defaults <- corpusforge.toml <- environment <- command-line overrides.

* ``corpusforge.toml`` (in the working directory, or ``--config PATH``) has one section per
  pipeline (``[sad.rules]``, ``[sad.splits]``, ``[polyrefuse.validation]``, ...) plus
  ``[workspace]`` and ``[executor]``.
* Environment variables ``CORPUSFORGE__<SECTION>__<KEY>=value`` override the file, e.g.
  ``CORPUSFORGE__SAD__RULES__MIN_WORDS=5``.
* ``--set sad.rules.min_words=5`` (repeatable) overrides both.

Values in the environment and on the command line are read as TOML values (``5``, ``true``,
``["a", "b"]``), falling back to plain strings. Unknown keys and bad values are errors that
name the key and where it came from. Secrets never live here: see :mod:`corpusforge.secrets`.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.core.errors import CorpusforgeError
from pipelines.facts.settings import FactsSettings
from pipelines.polyrefuse.settings import PolyRefuseSettings
from pipelines.relaionet.settings import RelaionetSettings
from pipelines.sad.settings import SadSettings

CONFIG_FILE = "corpusforge.toml"
ENV_PREFIX = "CORPUSFORGE__"


class ConfigError(CorpusforgeError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceSettings(_Strict):
    path: Path = Field(Path("workspace"), description="Where stages, validation results and releases live.")


class ExecutorSettings(_Strict):
    kind: Literal["local", "ray"] = Field(
        "local", description="Executor of pipeline steps: local processes, or Ray tasks (needs corpusforge[ray])."
    )
    workers: int = Field(
        0, ge=0, description="Worker processes for partitioned steps (local: this process and workers - 1 spawned ones), or CPUs of the local Ray (ray); 0 = all cores."
    )
    ray_address: str | None = Field(
        None,
        description="Address of a running Ray cluster, e.g. ray://head:10001 or auto; null starts a local Ray. "
        "The workspace and the inputs must be on a filesystem every Ray node sees.",
    )


class LabelStudioSettings(_Strict):
    url: str = Field("http://127.0.0.1:8080", description="Label Studio server; the token comes from CORPUSFORGE_LABEL_STUDIO_TOKEN (or the local server's login file).")
    chunk_size: int = Field(5000, ge=1, le=20000, description="Tasks imported per request.")
    export_batch: int = Field(900, ge=1, le=1000, description="Tasks exported per request when pulling (the server refuses more than 1,000 ids).")
    pull_from: Literal["auto", "api", "database"] = Field(
        "auto", description="Where a pull reads: auto (the local server's SQLite database when it is this server's, else the export API), api, or database."
    )
    host: str = Field(
        "127.0.0.1", description="Address the local server of `corpusforge annotate serve` listens on: 127.0.0.1 (this "
        "machine only) unless set, e.g. 0.0.0.0 to let other machines reach it (then anyone who can reach the port "
        "sees the login page: keep the password and token secret, and prefer an SSH tunnel).",
    )


class ArgillaSettings(_Strict):
    url: str = Field("http://127.0.0.1:6900", description="Argilla server (2.8); the API key comes from CORPUSFORGE_ARGILLA_API_KEY (or the local server's login file).")
    workspace: str = Field("corpusforge", description="Argilla workspace of the datasets (created when missing); annotators are added to it.")
    chunk_size: int = Field(500, ge=1, le=500, description="Records created per bulk request (push; the server takes at most 500).")
    page_size: int = Field(1000, ge=1, le=1000, description="Records read per listing request (pull; the server returns at most 1,000).")


class SadAnnotationSettings(_Strict):
    """Routing, merging and model assistance for SAD strategy labelling."""

    sample_size: int | None = Field(200, ge=0, description="Items pushed per round; null = every example.")
    stratify_by: tuple[Literal["topic", "strategy"], ...] = Field(("strategy",), description="Strata of the sample.")
    lowest_confidence_first: bool = Field(False, description="Take the items the pre-annotator is least sure about first.")
    overlap: int = Field(3, ge=1, description="Annotators per item (k).")
    annotators: tuple[str, ...] = Field((), description="Named annotators: items are assigned to them (per-annotator views).")
    gold_file: Path | None = Field(None, description="JSONL of known answers {item_id, answers}; gold items measure annotator accuracy.")
    gold_fraction: float = Field(0.0, ge=0, lt=1, description="Share of each push that is gold items.")
    seed: int = 0
    preannotator: Literal["rules", "model"] = Field("rules", description="Pre-annotations from the rules or the latest trained classifier.")
    min_agreement: float = Field(0.6, ge=0, le=1, description="Items below this agreement go to adjudication.")
    min_annotators: int = Field(1, ge=1, description="Items with fewer annotators are not merged yet.")
    heldout_fraction: float = Field(0.2, gt=0, lt=1, description="Human-labelled items held out to evaluate the classifier.")
    epochs: int = Field(10, ge=1, description="Training epochs of the strategy classifier.")


class PolyRefuseAnnotationSettings(_Strict):
    """Proofreading of PolyRefuse translations (annotation/recipes/polyrefuse.py)."""

    annotators: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Proofreaders per language code, e.g. {de = [\"anna\", \"bernd\"], yo = [\"ade\"]}: each language's "
        "items go only to its own proofreaders. A language with items and no proofreader is an error naming it.",
    )
    audit_fraction: float = Field(0.05, ge=0, le=1, description="Share of the unflagged translations of each language sent as an audit sample.")
    overlap: int = Field(1, ge=1, description="Proofreaders per item.")
    seed: int = Field(0, description="Seed of the audit sample and the routing.")


class FactsAnnotationSettings(_Strict):
    """Verification of doubtful facts (annotation/recipes/facts.py)."""

    annotators: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Verifiers per language code, e.g. {ko = [\"minji\"], tr = [\"ayse\"]}: a language named here sends "
        "its items to its verifiers; the items of any other language are open to anyone.",
    )


class RelaionetAnnotationSettings(_Strict):
    """Proofreading of reLAIONet images (annotation/recipes/relaionet.py)."""

    annotators: tuple[str, ...] = Field((), description="Proofreaders; every item goes to one or more of them.")
    double_fraction: float = Field(
        0.2, ge=0, le=1, description="Share of the images proofread by two annotators (agreement is measured on them)."
    )
    seed: int = Field(0, description="Seed of the double-proofread share and the routing.")
    document_root: Path | None = Field(
        None, description="Folder the Label Studio server serves local files from (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT); "
        "null: the workspace's media folder (<workspace>/annotation/media), as the local server started by corpusforge "
        "does; nothing else of the workspace is served. The images (annotation/media/relaionet/) must lie below it."
    )


class ReleaseSettings(_Strict):
    max_rows_per_file: int = Field(
        500_000, ge=1, description="Rows per parquet file of a release; a larger split is sharded into <split>-0000i-of-0000N.parquet."
    )
    row_group_size: int | None = Field(
        None, ge=1, description="Rows per parquet row group; null picks 20,000 (100 for tables with images)."
    )


class AnnotationSettings(_Strict):
    backend: Literal["label_studio", "argilla"] = Field(
        "label_studio", description="Annotation server: label_studio or argilla (the same commands and snapshots; --backend overrides it)."
    )
    label_studio: LabelStudioSettings = LabelStudioSettings()
    argilla: ArgillaSettings = ArgillaSettings()
    sad: SadAnnotationSettings = SadAnnotationSettings()
    polyrefuse: PolyRefuseAnnotationSettings = PolyRefuseAnnotationSettings()
    facts: FactsAnnotationSettings = FactsAnnotationSettings()
    relaionet: RelaionetAnnotationSettings = RelaionetAnnotationSettings()


class Settings(_Strict):
    workspace: WorkspaceSettings = WorkspaceSettings()
    executor: ExecutorSettings = ExecutorSettings()
    sad: SadSettings = SadSettings()
    polyrefuse: PolyRefuseSettings = PolyRefuseSettings()
    facts: FactsSettings = FactsSettings()
    relaionet: RelaionetSettings = RelaionetSettings()
    annotation: AnnotationSettings = AnnotationSettings()
    release: ReleaseSettings = ReleaseSettings()


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_dotted(tree: dict, dotted: str, value: Any, origin: str, origins: dict[str, str]) -> None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ConfigError(f"{origin}: empty setting name")
    node = tree
    for p in parts[:-1]:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {'.'.join(parts[:-1])} is a value, not a section")
        node = child
    node[parts[-1]] = value
    origins[".".join(parts)] = origin


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def load_settings(
    config_path: Path | None = None,
    overrides: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    workspace: Path | None = None,
) -> Settings:
    """Resolve the settings; raises :class:`ConfigError` naming the key, its origin and the fix."""
    env = os.environ if env is None else env
    tree: dict[str, Any] = {}
    origins: dict[str, str] = {}
    path = config_path or (Path.cwd() / CONFIG_FILE)
    if config_path is not None and not path.exists():
        raise ConfigError(f"{path}: no such configuration file (leave out --config to use the defaults)")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        for key, value in _flatten(data).items():
            _set_dotted(tree, key, value, str(path), origins)
    for name, value in sorted(env.items()):
        if name.startswith(ENV_PREFIX):
            dotted = name[len(ENV_PREFIX):].lower().replace("__", ".")
            _set_dotted(tree, dotted, _parse_value(value), f"environment variable {name}", origins)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: write it as section.key=value, e.g. --set sad.rules.min_words=5")
        key, value = item.split("=", 1)
        _set_dotted(tree, key.strip(), _parse_value(value.strip()), f"--set {item}", origins)
    if workspace is not None:
        _set_dotted(tree, "workspace.path", str(workspace), "--workspace", origins)
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origins)) from None


def _explain(exc: ValidationError, origins: dict[str, str]) -> str:
    lines = ["invalid configuration:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        origin = origins.get(key) or next((o for k, o in origins.items() if k.startswith(key + ".")), "defaults")
        if err["type"] == "extra_forbidden":
            parent = key.rsplit(".", 1)[0] if "." in key else ""
            known = _known_keys(parent)
            hint = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(known)})"
            lines.append(f"  {origin}: unknown setting '{key}'{suggestion}")
        else:
            lines.append(f"  {origin}: {key}: {err['msg']}")
    return "\n".join(lines)


def _known_keys(dotted_parent: str) -> list[str]:
    model: Any = Settings
    for part in [p for p in dotted_parent.split(".") if p]:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return sorted(model.model_fields)


def describe(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain JSON-able data (for manifests and `--show-config`)."""
    return settings.model_dump(mode="json")
