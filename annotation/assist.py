"""Model-assisted pre-annotation: train a multi-label text classifier on human labels, apply it.

The workflow for a multi-label task such as SAD argument strategies:

1. :func:`split_heldout` puts each human-labelled item on the train or the held-out side by a
   hash of its id, so the held-out side never changes as more labels arrive;
2. :func:`train_textcat` trains a spaCy ``textcat_multilabel`` (the default ensemble of a
   bag-of-words model and a small CNN, no pretrained vectors, no downloads) and writes it, with a
   ``corpusforge-model.json`` that names it, into a new directory;
3. :class:`StrategyClassifier` loads that directory and scores or labels new texts;
4. :func:`prf_table` and :func:`compare_markdown` report per-label precision, recall and F1 of
   several suggesters (say, the cue rules and the model) on the held-out human labels.

Labels are a parameter throughout: nothing here is specific to SAD.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterable, Mapping, Sequence

import spacy
from spacy.language import Language
from spacy.training import Example

PIPE = "textcat_multilabel"
META_FILE = "corpusforge-model.json"
META_FORMAT = 1
# spaCy's own training default (``training.dropout`` in its generated configs).
DROPOUT = 0.1

ProgressCallback = Callable[[int, float], None]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_textcat` wrote: the model directory and how it was trained."""

    model_dir: Path
    model_name: str
    labels: tuple[str, ...]
    epochs: int
    losses: tuple[float, ...]  # summed training loss of each epoch, first epoch first
    n_train: int


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    labels = tuple(labels)
    if not labels:
        raise ValueError("labels is empty: name at least one label")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels has duplicates: {list(labels)}")
    return labels


def _check_label_sets(label_sets: Iterable[Collection[str]], labels: tuple[str, ...], what: str) -> None:
    known = set(labels)
    for i, ls in enumerate(label_sets):
        unknown = sorted(set(ls) - known)
        if unknown:
            raise ValueError(f"{what}[{i}] has unknown label(s) {unknown}; known labels: {list(labels)}")


def _model_name(texts: Sequence[str], label_sets: Sequence[Collection[str]], labels: tuple[str, ...],
                seed: int, epochs: int, batch_size: int) -> str:
    # Everything that decides the trained weights, in training order (the shuffle depends on it).
    digest = hashlib.sha256()
    digest.update(json.dumps({"labels": labels, "seed": seed, "epochs": epochs, "batch_size": batch_size,
                              "dropout": DROPOUT, "spacy": spacy.__version__}).encode())
    for text, ls in zip(texts, label_sets):
        digest.update(json.dumps([text, sorted(ls)]).encode())
        digest.update(b"\n")
    return f"spacy-textcat-{digest.hexdigest()[:8]}"


def train_textcat(
    texts: list[str],
    label_sets: list[set[str] | frozenset[str]],
    labels: tuple[str, ...],
    out_dir: Path,
    *,
    epochs: int = 10,
    seed: int = 0,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train a multi-label text classifier and write it to the new directory ``out_dir``.

    ``label_sets[i]`` is the set of labels of ``texts[i]`` (empty: none applies). The pipeline is
    ``spacy.blank("en")`` plus a ``textcat_multilabel`` pipe with spaCy's default model; it is
    trained for ``epochs`` passes over the data in seeded shuffled minibatches. The same inputs
    and seed give the same model name and, on the same machine and library versions, the same
    weights. ``progress(epoch, loss)`` is called after each epoch (epochs count from 1).

    The model is written to a temporary directory beside ``out_dir`` and renamed into place, so
    ``out_dir`` either holds a complete model or does not exist. ``out_dir`` also gets
    ``corpusforge-model.json`` (name, labels, seed, epochs, n_train, losses).

    Raises ValueError for mismatched or empty inputs, unknown or duplicate labels and
    non-positive ``epochs``/``batch_size``; FileExistsError if ``out_dir`` already exists.
    """
    labels = _check_labels(labels)
    out_dir = Path(out_dir)
    if len(texts) != len(label_sets):
        raise ValueError(f"got {len(texts)} texts but {len(label_sets)} label sets; they must pair up")
    if not texts:
        raise ValueError("no training texts")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got epochs={epochs}, batch_size={batch_size}")
    _check_label_sets(label_sets, labels, "label_sets")
    if out_dir.exists():
        raise FileExistsError(
            f"model directory {out_dir} already exists; remove it or pick another directory "
            "(a trained model is never overwritten)"
        )

    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe(PIPE)
    for label in labels:
        textcat.add_label(label)
    examples = [
        Example.from_dict(nlp.make_doc(text), {"cats": {label: float(label in ls) for label in labels}})
        for text, ls in zip(texts, label_sets)
    ]
    optimizer = nlp.initialize(lambda: examples)

    rng = random.Random(seed)
    order = list(examples)
    losses: list[float] = []
    for epoch in range(1, epochs + 1):
        rng.shuffle(order)
        epoch_losses: dict[str, float] = {}
        for batch in spacy.util.minibatch(order, size=batch_size):
            nlp.update(batch, sgd=optimizer, drop=DROPOUT, losses=epoch_losses)
        loss = float(epoch_losses.get(PIPE, 0.0))
        losses.append(loss)
        if progress is not None:
            progress(epoch, loss)

    name = _model_name(texts, label_sets, labels, seed, epochs, batch_size)
    meta = {
        "format": META_FORMAT,
        "model_name": name,
        "pipe": PIPE,
        "labels": list(labels),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "dropout": DROPOUT,
        "n_train": len(texts),
        "losses": losses,
        "spacy_version": spacy.__version__,
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        nlp.to_disk(tmp)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():  # appeared while we trained: still never overwrite
            raise FileExistsError(f"model directory {out_dir} appeared during training; remove it or pick another directory")
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return TrainResult(model_dir=out_dir, model_name=name, labels=labels, epochs=epochs,
                       losses=tuple(losses), n_train=len(texts))


class StrategyClassifier:
    """A trained multi-label classifier loaded from a :func:`train_textcat` directory."""

    def __init__(self, nlp: Language, name: str, labels: tuple[str, ...], model_dir: Path) -> None:
        self.nlp = nlp
        self.name = name
        self.labels = labels
        self.model_dir = model_dir

    @classmethod
    def load(cls, model_dir: Path) -> "StrategyClassifier":
        """Load a model directory written by :func:`train_textcat`.

        Raises FileNotFoundError if ``model_dir`` does not exist, and ValueError naming the
        directory if it is not a trained model (no ``corpusforge-model.json``, an unreadable
        one, or a spaCy pipeline without the expected pipe and labels).
        """
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise FileNotFoundError(f"model directory {model_dir} does not exist; train one with train_textcat")
        meta_path = model_dir / META_FILE
        if not meta_path.is_file():
            raise ValueError(f"{model_dir} is not a trained model: it has no {META_FILE} (train one with train_textcat)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            name, labels = str(meta["model_name"]), tuple(meta["labels"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{model_dir} is not a trained model: {META_FILE} is unreadable ({e})") from e
        try:
            nlp = spacy.load(model_dir)  # a local path: nothing is downloaded
        except (OSError, ValueError) as e:
            raise ValueError(f"{model_dir} is not a trained model: spaCy cannot load it ({e})") from e
        if PIPE not in nlp.pipe_names:
            raise ValueError(f"{model_dir} is not a trained model: its pipeline {nlp.pipe_names} has no {PIPE}")
        if tuple(nlp.get_pipe(PIPE).labels) != labels:
            raise ValueError(
                f"{model_dir}: {META_FILE} lists labels {list(labels)} but the model has {list(nlp.get_pipe(PIPE).labels)}"
            )
        return cls(nlp, name, labels, model_dir)

    def scores(self, texts: Iterable[str], batch_size: int = 256) -> list[dict[str, float]]:
        """One ``{label: probability}`` per text, in input order and label order."""
        return [
            {label: float(doc.cats[label]) for label in self.labels}
            for doc in self.nlp.pipe(texts, batch_size=batch_size)
        ]

    def predict(self, texts: Iterable[str], threshold: float = 0.5) -> list[frozenset[str]]:
        """The labels whose score reaches ``threshold``, per text (possibly none)."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        return [frozenset(label for label, s in row.items() if s >= threshold) for row in self.scores(texts)]


def _ratio(num: int | float, den: int | float) -> float:
    return num / den if den else 0.0


def prf_table(
    gold: Sequence[Collection[str]],
    predicted: Sequence[Collection[str]],
    labels: Sequence[str],
) -> list[dict]:
    """Per-label precision, recall and F1 of multi-label predictions against gold labels.

    Returns one row per label, in ``labels`` order, then ``"micro avg"`` (from the summed
    counts of all labels) and ``"macro avg"`` (the unweighted mean of the per-label figures).
    Each row has ``label``, ``precision``, ``recall``, ``f1`` and ``support``: the number of
    gold positives (for the averages, of all labels). A ratio with a zero denominator is 0.0:
    precision of a label never predicted, recall of a label never in gold, F1 when P and R are 0.

    Raises ValueError if the lists differ in length or hold labels outside ``labels``.
    """
    labels = _check_labels(labels)
    if len(gold) != len(predicted):
        raise ValueError(f"got {len(gold)} gold label sets but {len(predicted)} predicted; they must pair up")
    _check_label_sets(gold, labels, "gold")
    _check_label_sets(predicted, labels, "predicted")

    def row(label: str, tp: int, fp: int, fn: int) -> dict:
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        return {"label": label, "precision": p, "recall": r, "f1": _ratio(2 * p * r, p + r), "support": tp + fn}

    rows, totals = [], [0, 0, 0]
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted) if label in g and label in p)
        fp = sum(1 for g, p in zip(gold, predicted) if label not in g and label in p)
        fn = sum(1 for g, p in zip(gold, predicted) if label in g and label not in p)
        rows.append(row(label, tp, fp, fn))
        totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
    micro = row("micro avg", *totals)
    macro = {
        "label": "macro avg",
        **{k: sum(r[k] for r in rows) / len(rows) for k in ("precision", "recall", "f1")},
        "support": micro["support"],
    }
    return rows + [micro, macro]


def compare_markdown(tables: Mapping[str, list[dict]]) -> str:
    """A markdown table comparing :func:`prf_table` results of several models on the same gold.

    ``tables`` maps a model name to its table; columns are ``<name> P``, ``<name> R`` and
    ``<name> F1`` per model, in mapping order, then ``support``; figures have 3 decimals.
    Raises ValueError if no tables are given or they differ in labels or support (they must
    come from the same gold labels).
    """
    if not tables:
        raise ValueError("no tables to compare")
    names = list(tables)
    first = tables[names[0]]
    keys = [(r["label"], r["support"]) for r in first]
    for name in names[1:]:
        other = [(r["label"], r["support"]) for r in tables[name]]
        if other != keys:
            raise ValueError(
                f"tables {names[0]!r} and {name!r} differ in labels or support ({keys} vs {other}); "
                "compare models on the same gold labels"
            )

    def cell(text: str) -> str:
        return str(text).replace("|", r"\|")

    header = ["strategy"] + [f"{cell(n)} {m}" for n in names for m in ("P", "R", "F1")] + ["support"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for i, (label, support) in enumerate(keys):
        figures = [f"{tables[n][i][k]:.3f}" for n in names for k in ("precision", "recall", "f1")]
        lines.append("| " + " | ".join([cell(label), *figures, str(support)]) + " |")
    return "\n".join(lines) + "\n"


def split_heldout(ids: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split ``ids`` into ``(train_ids, heldout_ids)``, each in input order.

    An id is held out when a sha256 of ``seed`` and the id, read as a number in [0, 1), is below
    ``fraction``. The decision depends on nothing else, so it is the same across runs, input
    orders and growing id lists (labels added later never move an item across), and a larger
    ``fraction`` holds out a superset. The held-out share is ``fraction`` on average, not exactly.

    Raises ValueError if ``fraction`` is outside [0, 1] or ``ids`` has duplicates.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    if len(set(ids)) != len(ids):
        raise ValueError("ids has duplicates; each item must appear once")
    train, heldout = [], []
    for item_id in ids:
        digest = hashlib.sha256(f"{seed}\x00{item_id}".encode()).digest()
        (heldout if int.from_bytes(digest[:8], "big") / 2**64 < fraction else train).append(item_id)
    return train, heldout
