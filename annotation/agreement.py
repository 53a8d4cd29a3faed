"""Inter-annotator agreement: how far the labels that annotators give can be trusted.

Every function takes plain data so that any dataset can use it, not only SAD:

* ``units`` is ``{item_id: {annotator: value}}``; a missing annotator is missing data. The
  value is a ``frozenset[str]`` for multi-choice questions (zero or more labels) or a ``str``
  for single-choice questions and flags (a flag is the category ``"true"`` or ``"false"``).
* Only items with at least two annotations carry information about agreement; every
  coefficient here ignores the others.
* ``judgments`` are ``(item_id, annotator, answers)`` with answers ``{question: value}`` as in
  :mod:`annotation.spec`. When an annotator judged an item twice, the later judgment wins.

Coefficients that are undefined (no pairable values, or every value the same so that no
disagreement is expected) are ``float('nan')``; reports show them as ``None`` / ``n/a``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Literal, Mapping

import numpy as np

from pipelines.core.fileio import atomic_path, atomic_write_json, atomic_write_text

Units = Mapping[str, Mapping[str, Any]]
Judgment = tuple[str, str, Mapping[str, Any]]
Distance = Callable[[Any, Any], float]

INTERPRETATION = (
    "Krippendorff's alpha: >= 0.8 reliable, 0.667-0.8 tentative conclusions only, "
    "below 0.667 unreliable."
)


def _nominal_distance(a: Hashable, b: Hashable) -> float:
    return 0.0 if a == b else 1.0


def krippendorff_alpha(units: Units, distance: Literal["nominal"] | Distance = "nominal") -> float:
    """Krippendorff's alpha for any hashable values and any distance ``d(a, b)``.

    Uses the coincidence-matrix formulation (Krippendorff 2011): each item with ``m >= 2``
    values adds every ordered pair of its values with weight ``1 / (m - 1)``, and
    ``alpha = 1 - D_o / D_e`` with the observed disagreement taken within items and the
    expected one across all pairable values. Missing annotations simply shrink ``m``.
    Returns NaN when no item has two values or all values are equal (``D_e == 0``).
    """
    if isinstance(distance, str):
        if distance != "nominal":
            raise ValueError(f"unknown distance {distance!r}: pass 'nominal' or a function d(a, b)")
        distance = _nominal_distance
    pairable = [list(by_annotator.values()) for by_annotator in units.values() if len(by_annotator) >= 2]
    if not pairable:
        return math.nan
    index: dict[Hashable, int] = {}
    for values in pairable:
        for value in values:
            index.setdefault(value, len(index))
    counts = np.zeros((len(pairable), len(index)))  # item x value: how many annotators chose it
    for row, values in enumerate(pairable):
        for value in values:
            counts[row, index[value]] += 1
    weighted = counts / (counts.sum(axis=1, keepdims=True) - 1)
    coincidences = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    value_totals = coincidences.sum(axis=1)
    n = value_totals.sum()
    distinct = list(index)
    distances = np.array([[distance(a, b) for b in distinct] for a in distinct], dtype=float)
    observed = (coincidences * distances).sum() / n
    expected_pairs = np.outer(value_totals, value_totals) - np.diag(value_totals)
    expected = (expected_pairs * distances).sum() / (n * (n - 1))
    if expected <= 0:
        return math.nan
    return float(1.0 - observed / expected)


def masi_distance(a: frozenset, b: frozenset) -> float:
    """MASI distance (Passonneau 2006) between label sets: ``1 - jaccard * monotonicity``.

    Monotonicity is 1 for equal sets, 0.67 when one contains the other, 0.33 when they only
    overlap, 0 when disjoint; it credits a subset answer more than a partial overlap.
    Two empty sets agree completely (distance 0).
    """
    if a == b:
        return 0.0
    union = len(a | b)
    jaccard = len(a & b) / union
    if a <= b or b <= a:
        monotonicity = 0.67
    elif a & b:
        monotonicity = 0.33
    else:
        monotonicity = 0.0
    return 1.0 - jaccard * monotonicity


def alpha_per_label(units_of_sets: Units, labels: Iterable[str]) -> dict[str, float]:
    """Nominal alpha of the binary decision "label present" for each label.

    Shows which labels annotators agree on; MASI alpha folds them into one number.
    """
    return {
        label: krippendorff_alpha(
            {item: {annotator: label in chosen for annotator, chosen in by_annotator.items()}
             for item, by_annotator in units_of_sets.items()}
        )
        for label in labels
    }


def alpha_masi(units_of_sets: Units) -> float:
    """Alpha over whole label sets with the MASI distance (partial overlap is partial credit)."""
    return krippendorff_alpha(units_of_sets, masi_distance)


@dataclass(frozen=True)
class FleissKappa:
    kappa: float  # NaN when no item qualifies or every rating is one category
    n_items: int  # items used: those with exactly n_raters ratings
    n_raters: int  # the modal number of raters among items with at least two (0 if none)


def fleiss_kappa(units_of_categories: Units, categories: Iterable[str]) -> FleissKappa:
    """Fleiss' kappa over the items that have the modal number of raters.

    Fleiss' formula assumes every item has the same number of raters, so items with another
    count are left out (ties between counts go to the larger count); ``n_items`` says how many
    were used, and alpha, which handles missing data, is the figure to compare across items.
    Raises ValueError for a category outside ``categories``.
    """
    column = {category: position for position, category in enumerate(categories)}
    rater_counts = Counter(len(r) for r in units_of_categories.values() if len(r) >= 2)
    if not rater_counts:
        return FleissKappa(math.nan, 0, 0)
    n_raters = max(rater_counts, key=lambda count: (rater_counts[count], count))
    used = [r for r in units_of_categories.values() if len(r) == n_raters]
    table = np.zeros((len(used), len(column)))
    for row, by_annotator in enumerate(used):
        for category in by_annotator.values():
            if category not in column:
                raise ValueError(f"unknown category {category!r} (known: {', '.join(column)})")
            table[row, column[category]] += 1
    category_shares = table.sum(axis=0) / table.sum()
    item_agreement = ((table**2).sum(axis=1) - n_raters) / (n_raters * (n_raters - 1))
    chance = (category_shares**2).sum()
    kappa = math.nan if np.isclose(chance, 1.0) else float((item_agreement.mean() - chance) / (1 - chance))
    return FleissKappa(kappa, len(used), n_raters)


def _latest_answers(judgments: Iterable[Judgment]) -> dict[str, dict[str, Mapping[str, Any]]]:
    """``{item: {annotator: answers}}``; a repeated judgment replaces the earlier one."""
    by_item: dict[str, dict[str, Mapping[str, Any]]] = {}
    for item_id, annotator, answers in judgments:
        by_item.setdefault(item_id, {})[annotator] = answers
    return by_item


def _jaccard(a: frozenset, b: frozenset) -> float:
    return 1.0 if not (a or b) else len(a & b) / len(a | b)


def gold_accuracy(judgments: Iterable[Judgment], gold: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per annotator and question: how often the answer matches the known gold answer.

    Returns rows ``{annotator, question, n, accuracy, mean_jaccard}`` sorted by annotator and
    question, where ``n`` counts the gold items on which the annotator answered that question.
    List answers match when they hold the same labels in any order; for them ``mean_jaccard``
    gives partial credit (it is None for single-choice and flag questions).
    """
    scores: dict[tuple[str, str], list[tuple[bool, float | None]]] = {}
    for item_id, by_annotator in _latest_answers(judgments).items():
        if item_id not in gold:
            continue
        for annotator, answers in by_annotator.items():
            for question, expected in gold[item_id].items():
                given = answers.get(question)
                if given is None:
                    continue
                if isinstance(expected, (list, tuple, set, frozenset)):
                    expected_set, given_set = frozenset(expected), frozenset(given)
                    score = (expected_set == given_set, _jaccard(expected_set, given_set))
                else:
                    score = (given == expected, None)
                scores.setdefault((annotator, question), []).append(score)
    rows = []
    for (annotator, question), results in sorted(scores.items()):
        jaccards = [j for _, j in results if j is not None]
        rows.append({
            "annotator": annotator,
            "question": question,
            "n": len(results),
            "accuracy": sum(match for match, _ in results) / len(results),
            "mean_jaccard": sum(jaccards) / len(jaccards) if jaccards else None,
        })
    return rows


def label_confusion(units_of_sets: Units, labels: Iterable[str]) -> np.ndarray:
    """Which labels annotators give to the same item: an L x L matrix, rows and columns in
    the order of ``labels``.

    For every item and ordered pair of distinct annotators (a, b), each label x of a and y of
    b adds ``1 / (|A| * |B|)`` to cell [x, y], so every pair weighs 1 however many labels it
    ticked and the matrix is symmetric. Full agreement on one label lands on the diagonal;
    note that agreeing on two labels {x, y} also adds to [x, y]. An empty answer adds nothing
    (alpha per label accounts for it). Raises ValueError for a label outside ``labels``.
    """
    column = {label: position for position, label in enumerate(labels)}
    matrix = np.zeros((len(column), len(column)))
    for by_annotator in units_of_sets.values():
        rows = []
        for chosen in by_annotator.values():
            if not chosen:
                continue
            unknown = sorted(set(chosen) - set(column))
            if unknown:
                raise ValueError(f"unknown label(s) {', '.join(map(repr, unknown))} (known: {', '.join(column)})")
            row = np.zeros(len(column))
            row[[column[label] for label in chosen]] = 1.0 / len(chosen)
            rows.append(row)
        if len(rows) < 2:
            continue
        shares = np.array(rows)
        total = shares.sum(axis=0)
        matrix += np.outer(total, total) - shares.T @ shares  # all ordered pairs minus a with a
    return matrix


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def _format(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


@dataclass(frozen=True)
class MultiChoiceAgreement:
    labels: tuple[str, ...]
    alpha_per_label: dict[str, float]
    alpha_masi: float
    confusion: np.ndarray  # label_confusion, rows and columns in the order of labels


@dataclass(frozen=True)
class SingleChoiceAgreement:
    categories: tuple[str, ...]
    alpha: float
    fleiss: FleissKappa


@dataclass(frozen=True)
class AgreementReport:
    n_items: int  # items judged by at least two annotators
    annotators: tuple[str, ...]
    multi: dict[str, MultiChoiceAgreement]
    single: dict[str, SingleChoiceAgreement]  # single-choice questions and flags
    gold: list[dict[str, Any]]  # gold_accuracy rows; empty without gold

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; undefined coefficients are None."""
        return {
            "n_items": self.n_items,
            "annotators": list(self.annotators),
            "multi": {
                name: {
                    "labels": list(q.labels),
                    "alpha_per_label": {label: _none_if_nan(a) for label, a in q.alpha_per_label.items()},
                    "alpha_masi": _none_if_nan(q.alpha_masi),
                    "confusion": q.confusion.tolist(),
                }
                for name, q in self.multi.items()
            },
            "single": {
                name: {
                    "categories": list(q.categories),
                    "alpha": _none_if_nan(q.alpha),
                    "fleiss_kappa": _none_if_nan(q.fleiss.kappa),
                    "fleiss_items": q.fleiss.n_items,
                    "fleiss_raters": q.fleiss.n_raters,
                }
                for name, q in self.single.items()
            },
            "gold": self.gold,
        }

    def to_markdown(self) -> str:
        """Tables for people: per-label alpha, MASI alpha, single-choice figures, gold accuracy."""
        lines = [
            "# Inter-annotator agreement", "",
            f"{self.n_items} items with at least two annotations; "
            f"{len(self.annotators)} annotators ({', '.join(self.annotators)}).", "",
            INTERPRETATION, "",
        ]
        for name, q in self.multi.items():
            lines += [f"## {name} (multi choice)", "", "| label | alpha |", "|---|---|"]
            lines += [f"| {label} | {_format(a)} |" for label, a in q.alpha_per_label.items()]
            lines += [f"| **label set (MASI)** | {_format(q.alpha_masi)} |", ""]
        if self.single:
            lines += ["## Single choice and flags", "",
                      "| question | alpha | Fleiss' kappa | items (raters each) |", "|---|---|---|---|"]
            lines += [f"| {name} | {_format(q.alpha)} | {_format(q.fleiss.kappa)} | "
                      f"{q.fleiss.n_items} ({q.fleiss.n_raters}) |" for name, q in self.single.items()]
            lines.append("")
        if self.gold:
            lines += ["## Accuracy on gold items", "",
                      "| annotator | question | n | accuracy | mean Jaccard |", "|---|---|---|---|---|"]
            lines += [f"| {r['annotator']} | {r['question']} | {r['n']} | {_format(r['accuracy'])} | "
                      f"{_format(r['mean_jaccard'])} |" for r in self.gold]
            lines.append("")
        return "\n".join(lines)

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write ``agreement.json``, ``agreement.md`` and ``confusion-<question>.png`` per
        multi-choice question, each atomically; returns the paths keyed ``json``,
        ``markdown`` and ``confusion:<question>``."""
        out_dir = Path(out_dir)
        paths = {"json": out_dir / "agreement.json", "markdown": out_dir / "agreement.md"}
        atomic_write_json(paths["json"], self.to_json())
        atomic_write_text(paths["markdown"], self.to_markdown())
        for name, q in self.multi.items():
            path = out_dir / f"confusion-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
            _plot_confusion(q, name, path)
            paths[f"confusion:{name}"] = path
        return paths


def _plot_confusion(agreement: MultiChoiceAgreement, question: str, path: Path) -> None:
    """Heatmap of the label confusion matrix with its values written in the cells."""
    # Imported here: matplotlib takes seconds to import and only this function needs it.
    # Figure + the Agg canvas draws to a file without touching pyplot's global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix, labels = agreement.confusion, agreement.labels
    figure = Figure(figsize=(1.2 * len(labels) + 2.5, 1.0 * len(labels) + 2.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    peak = max(matrix.max(initial=0.0), 1e-9)
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=peak)
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("label of the other annotator")
    axes.set_ylabel("label of one annotator")
    axes.set_title(f"{question}: label confusion (MASI alpha = {_format(agreement.alpha_masi)})")
    for row in range(len(labels)):
        for col in range(len(labels)):
            colour = "white" if matrix[row, col] > peak / 2 else "black"
            axes.text(col, row, f"{matrix[row, col]:.1f}", ha="center", va="center", color=colour)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)


def agreement_report(
    judgments: Iterable[Judgment],
    multi_questions: Mapping[str, tuple[str, ...]],
    single_questions: Mapping[str, tuple[str, ...]],
    flag_questions: tuple[str, ...] = (),
    gold: Mapping[str, Mapping[str, Any]] | None = None,
) -> AgreementReport:
    """All agreement figures for one annotation round.

    ``multi_questions`` and ``single_questions`` map question names to their labels or
    categories; flags are scored as the categories ``"true"``/``"false"``. An answer that is
    absent (or None) counts as missing for that question only. Raises ValueError for a label
    or category the questions do not list.
    """
    judgments = list(judgments)
    by_item = _latest_answers(judgments)

    def units(question: str, convert: Callable[[Any], Any]) -> dict[str, dict[str, Any]]:
        return {
            item: {a: convert(answers[question]) for a, answers in by_annotator.items()
                   if answers.get(question) is not None}
            for item, by_annotator in by_item.items()
        }

    multi = {}
    for name, labels in multi_questions.items():
        sets, labels = units(name, frozenset), tuple(labels)
        multi[name] = MultiChoiceAgreement(
            labels, alpha_per_label(sets, labels), alpha_masi(sets), label_confusion(sets, labels)
        )
    single = {}
    categorical = [(name, tuple(cats), str) for name, cats in single_questions.items()]
    categorical += [(name, ("false", "true"), lambda flag: "true" if flag else "false") for name in flag_questions]
    for name, categories, convert in categorical:
        values = units(name, convert)
        single[name] = SingleChoiceAgreement(categories, krippendorff_alpha(values), fleiss_kappa(values, categories))
    return AgreementReport(
        n_items=sum(len(by_annotator) >= 2 for by_annotator in by_item.values()),
        annotators=tuple(sorted({annotator for _, annotator, _ in judgments})),
        multi=multi,
        single=single,
        gold=gold_accuracy(judgments, gold) if gold else [],
    )
