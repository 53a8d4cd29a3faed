"""Agreement coefficients against reference implementations (krippendorff, statsmodels),
brute-force formulas and hand-worked examples; the report against the files it writes."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import krippendorff
import numpy as np
import pytest
from statsmodels.stats import inter_rater

from annotation.agreement import (
    agreement_report,
    alpha_masi,
    alpha_per_label,
    fleiss_kappa,
    gold_accuracy,
    krippendorff_alpha,
    label_confusion,
    masi_distance,
)

STRATEGIES = ("Question", "Causality", "Example", "Analogy", "Statement")
STANCES = ("support", "oppose")
ANNOTATORS = ("ann1", "ann2", "ann3", "ann4")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def random_judgments(seed: int = 0, n_items: int = 40, missing: float = 0.25) -> list:
    """Annotators who mostly follow a hidden true answer, with some annotations missing."""
    rng = np.random.default_rng(seed)
    judgments = []
    for item in range(n_items):
        true_set = {label for label in STRATEGIES if rng.random() < 0.35}
        true_stance = STANCES[rng.integers(2)]
        true_unclear = bool(rng.random() < 0.2)
        for annotator in ANNOTATORS:
            if rng.random() < missing:
                continue
            flipped = {label for label in STRATEGIES if rng.random() < 0.15}
            judgments.append((f"item{item}", annotator, {
                "strategies": sorted(true_set ^ flipped),
                "stance": true_stance if rng.random() < 0.75 else STANCES[rng.integers(2)],
                "unclear": true_unclear if rng.random() < 0.85 else not true_unclear,
            }))
    judgments.append(("lonely", "ann1", {"strategies": ["Example"], "stance": "support", "unclear": False}))
    return judgments


def units_of(judgments: list, question: str, convert=lambda value: value) -> dict:
    units: dict = {}
    for item, annotator, answers in judgments:
        units.setdefault(item, {})[annotator] = convert(answers[question])
    return units


def reliability_matrix(units: dict, code=lambda value: value) -> np.ndarray:
    """annotators x items, np.nan where an annotator did not judge the item (krippendorff's layout)."""
    annotators = sorted({a for by_annotator in units.values() for a in by_annotator})
    items = sorted(units)
    matrix = np.full((len(annotators), len(items)), np.nan)
    for column, item in enumerate(items):
        for row, annotator in enumerate(annotators):
            if annotator in units[item]:
                matrix[row, column] = code(units[item][annotator])
    return matrix


@pytest.fixture
def judgments() -> list:
    return random_judgments()


# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, gaps.
KRIPPENDORFF_2011 = {
    "A": "1 2 3 3 2 1 4 1 2 . . .",
    "B": "1 2 3 3 2 2 4 1 2 5 . 3",
    "C": ". 3 3 3 2 3 4 2 2 5 1 .",
    "D": "1 2 3 3 2 4 4 1 2 5 1 .",
}


def test_nominal_alpha_reproduces_the_textbook_example():
    units: dict = {}
    for coder, row in KRIPPENDORFF_2011.items():
        for unit, value in enumerate(row.split()):
            if value != ".":
                units.setdefault(f"u{unit}", {})[coder] = f"category {value}"
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)
    codes = reliability_matrix(units, code=lambda value: int(value.split()[1]))
    assert krippendorff_alpha(units) == pytest.approx(krippendorff.alpha(codes, level_of_measurement="nominal"))


def test_nominal_alpha_matches_krippendorff_on_random_data_with_gaps(judgments):
    units = units_of(judgments, "stance")
    assert any(len(by_annotator) < len(ANNOTATORS) for by_annotator in units.values())
    expected = krippendorff.alpha(
        reliability_data=reliability_matrix(units, code=STANCES.index), level_of_measurement="nominal"
    )
    assert krippendorff_alpha(units, "nominal") == pytest.approx(expected, abs=1e-12)
    assert 0.2 < expected < 0.9  # the data has real but imperfect agreement


def test_alpha_is_nan_when_undefined():
    assert math.isnan(krippendorff_alpha({"i1": {"a": "x"}, "i2": {"b": "y"}}))  # nothing pairable
    assert math.isnan(krippendorff_alpha({"i1": {"a": "x", "b": "x"}, "i2": {"a": "x", "b": "x"}}))
    with pytest.raises(ValueError, match="unknown distance"):
        krippendorff_alpha({"i1": {"a": "x", "b": "y"}}, "interval")


def test_per_label_alpha_matches_krippendorff_on_binary_matrices(judgments):
    sets = units_of(judgments, "strategies", frozenset)
    per_label = alpha_per_label(sets, STRATEGIES)
    assert list(per_label) == list(STRATEGIES)
    for label in STRATEGIES:
        binary = reliability_matrix(sets, code=lambda chosen: float(label in chosen))
        expected = krippendorff.alpha(reliability_data=binary, level_of_measurement="nominal")
        assert per_label[label] == pytest.approx(expected, abs=1e-12), label


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ({"a"}, {"a"}, 0.0),
        ({"a"}, {"a", "b"}, 1 - 0.5 * 0.67),
        ({"a", "b"}, {"b", "c"}, 1 - (1 / 3) * 0.33),
        ({"a"}, {"b"}, 1.0),
        (set(), set(), 0.0),
        (set(), {"a"}, 1.0),
    ],
)
def test_masi_distance_standard_examples(a, b, distance):
    assert masi_distance(frozenset(a), frozenset(b)) == pytest.approx(distance)
    assert masi_distance(frozenset(b), frozenset(a)) == pytest.approx(distance)


def brute_force_alpha(units: dict, distance) -> float:
    """alpha = 1 - D_o / D_e straight from pairs of values, with no coincidence matrix."""
    pairable = [list(by_annotator.values()) for by_annotator in units.values() if len(by_annotator) >= 2]
    everything = [value for values in pairable for value in values]
    n = len(everything)
    observed = sum(
        sum(distance(x, y) for x, y in itertools.permutations(values, 2)) / (len(values) - 1)
        for values in pairable
    ) / n
    expected = sum(distance(x, y) for x, y in itertools.permutations(everything, 2)) / (n * (n - 1))
    return 1 - observed / expected


def test_masi_alpha_matches_a_brute_force_computation(judgments):
    sets = units_of(judgments, "strategies", frozenset)
    expected = brute_force_alpha(sets, masi_distance)
    assert alpha_masi(sets) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected < 1.0


def test_masi_alpha_is_one_under_perfect_agreement():
    sets = {
        "i1": {"a": frozenset({"Example"}), "b": frozenset({"Example"}), "c": frozenset({"Example"})},
        "i2": {"a": frozenset({"Question", "Causality"}), "b": frozenset({"Question", "Causality"})},
        "i3": {"b": frozenset(), "c": frozenset()},
    }
    assert alpha_masi(sets) == pytest.approx(1.0)


def test_fleiss_kappa_reproduces_fleiss_1971():
    # Fleiss (1971) as tabulated on Wikipedia: 10 items, 14 raters, 5 categories, kappa 0.210.
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
    categories = ("c1", "c2", "c3", "c4", "c5")
    units = {
        f"i{row}": dict(enumerate(c for c, count in zip(categories, counts) for _ in range(count)))
        for row, counts in enumerate(table)
    }
    result = fleiss_kappa(units, categories)
    assert (result.n_items, result.n_raters) == (10, 14)
    assert result.kappa == pytest.approx(0.210, abs=5e-4)
    assert result.kappa == pytest.approx(inter_rater.fleiss_kappa(np.array(table)))


def test_fleiss_kappa_matches_statsmodels_on_items_with_the_modal_rater_count(judgments):
    units = units_of(judgments, "stance")
    result = fleiss_kappa(units, STANCES)
    rater_counts = Counter(len(by_annotator) for by_annotator in units.values() if len(by_annotator) >= 2)
    assert rater_counts[result.n_raters] == max(rater_counts.values())
    used = [by_annotator for by_annotator in units.values() if len(by_annotator) == result.n_raters]
    assert result.n_items == len(used) < len(units)
    codes = np.array([[STANCES.index(v) for v in by_annotator.values()] for by_annotator in used])
    expected = inter_rater.fleiss_kappa(inter_rater.aggregate_raters(codes)[0])
    assert result.kappa == pytest.approx(expected, abs=1e-12)


def test_fleiss_kappa_edge_cases():
    mixed = {"i1": {"a": "x", "b": "y", "c": "x"}, "i2": {"a": "y", "b": "y", "c": "y"}, "i3": {"a": "x", "b": "y"}}
    assert (fleiss_kappa(mixed, ("x", "y")).n_items, fleiss_kappa(mixed, ("x", "y")).n_raters) == (2, 3)
    nobody_pairs = fleiss_kappa({"i1": {"a": "x"}}, ("x", "y"))
    assert math.isnan(nobody_pairs.kappa) and nobody_pairs.n_items == 0
    with pytest.raises(ValueError, match="unknown category 'z'"):
        fleiss_kappa({"i1": {"a": "x", "b": "z"}}, ("x", "y"))


def test_gold_accuracy_hand_example():
    gold = {
        "g1": {"strategies": ["Example", "Question"], "stance": "support", "unclear": False},
        "g2": {"strategies": ["Analogy"], "stance": "oppose", "unclear": False},
    }
    judgments = [
        ("g1", "ann1", {"strategies": ["Statement"], "stance": "oppose", "unclear": True}),  # replaced below
        ("g1", "ann1", {"strategies": ["Question", "Example"], "stance": "support", "unclear": False}),
        ("g2", "ann1", {"strategies": ["Analogy", "Statement"], "stance": "support", "unclear": False}),
        ("g1", "ann2", {"strategies": ["Causality"], "stance": "oppose"}),  # unclear not answered
        ("g2", "ann2", {"strategies": ["Analogy"], "stance": "oppose", "unclear": True}),
        ("x9", "ann2", {"strategies": [], "stance": "oppose", "unclear": False}),  # not a gold item
    ]
    assert gold_accuracy(judgments, gold) == [
        {"annotator": "ann1", "question": "stance", "n": 2, "accuracy": 0.5, "mean_jaccard": None},
        {"annotator": "ann1", "question": "strategies", "n": 2, "accuracy": 0.5, "mean_jaccard": 0.75},
        {"annotator": "ann1", "question": "unclear", "n": 2, "accuracy": 1.0, "mean_jaccard": None},
        {"annotator": "ann2", "question": "stance", "n": 2, "accuracy": 0.5, "mean_jaccard": None},
        {"annotator": "ann2", "question": "strategies", "n": 2, "accuracy": 0.5, "mean_jaccard": 0.5},
        {"annotator": "ann2", "question": "unclear", "n": 1, "accuracy": 0.0, "mean_jaccard": None},
    ]


def test_label_confusion_hand_example():
    sets = {
        "i1": {"a": frozenset({"Example"}), "b": frozenset({"Example"})},
        "i2": {"a": frozenset({"Question", "Causality"}), "b": frozenset({"Question"}), "c": frozenset()},
        "i3": {"a": frozenset({"Analogy"})},  # one annotator: no pair
    }
    expected = np.zeros((5, 5))
    q, c, e = STRATEGIES.index("Question"), STRATEGIES.index("Causality"), STRATEGIES.index("Example")
    expected[e, e] = 2.0  # (a, b) and (b, a) on i1
    expected[q, q] = 1.0  # half of each ordered pair on i2
    expected[c, q] = expected[q, c] = 0.5
    np.testing.assert_array_equal(label_confusion(sets, STRATEGIES), expected)
    with pytest.raises(ValueError, match="unknown label"):
        label_confusion({"i1": {"a": frozenset({"Joke"}), "b": frozenset({"Example"})}}, STRATEGIES)


def test_report_writes_json_markdown_and_heatmaps(judgments, tmp_path):
    gold = {"item0": {"strategies": ["Example"], "stance": "support", "unclear": False}}
    report = agreement_report(judgments, {"strategies": STRATEGIES}, {"stance": STANCES}, ("unclear",), gold)
    assert report.annotators == ANNOTATORS
    assert report.n_items == sum(len(by) >= 2 for by in units_of(judgments, "stance").values()) < 41
    stance_alpha = krippendorff.alpha(
        reliability_matrix(units_of(judgments, "stance"), code=STANCES.index), level_of_measurement="nominal"
    )
    assert report.single["stance"].alpha == pytest.approx(stance_alpha)
    unclear_alpha = krippendorff.alpha(
        reliability_matrix(units_of(judgments, "unclear"), code=float), level_of_measurement="nominal"
    )
    assert report.single["unclear"].alpha == pytest.approx(unclear_alpha)
    assert {row["annotator"] for row in report.gold} <= set(ANNOTATORS) and report.gold

    paths = report.write(tmp_path / "agreement")
    assert set(paths) == {"json", "markdown", "confusion:strategies"}
    assert sorted(p.name for p in (tmp_path / "agreement").iterdir()) == [
        "agreement.json", "agreement.md", "confusion-strategies.png"
    ]  # no temporary files left behind
    assert paths["confusion:strategies"].read_bytes()[:8] == PNG_MAGIC

    written = json.loads(paths["json"].read_text())
    assert written["single"]["stance"]["alpha"] == pytest.approx(stance_alpha)
    assert written["multi"]["strategies"]["alpha_masi"] == pytest.approx(report.multi["strategies"].alpha_masi)
    assert np.array(written["multi"]["strategies"]["confusion"]).shape == (5, 5)
    markdown = paths["markdown"].read_text()
    assert f"{report.multi['strategies'].alpha_masi:.3f}" in markdown
    assert f"{stance_alpha:.3f}" in markdown
    for label, alpha in report.multi["strategies"].alpha_per_label.items():
        assert f"| {label} | {alpha:.3f} |" in markdown
    assert ">= 0.8 reliable" in markdown


def test_report_with_one_annotator_per_item_says_na_instead_of_crashing(tmp_path):
    judgments = [
        (f"item{i}", f"ann{i}", {"strategies": ["Example"], "stance": "support", "unclear": False})
        for i in range(3)
    ]
    report = agreement_report(judgments, {"strategies": STRATEGIES}, {"stance": STANCES}, ("unclear",))
    paths = report.write(tmp_path)
    written = json.loads(paths["json"].read_text())
    assert written["n_items"] == 0
    assert written["multi"]["strategies"]["alpha_masi"] is None
    assert set(written["multi"]["strategies"]["alpha_per_label"].values()) == {None}
    assert written["single"]["stance"] == {
        "categories": list(STANCES), "alpha": None, "fleiss_kappa": None, "fleiss_items": 0, "fleiss_raters": 0
    }
    assert written["single"]["unclear"]["alpha"] is None
    markdown = paths["markdown"].read_text()
    assert "| **label set (MASI)** | n/a |" in markdown
    assert "| stance | n/a | n/a | 0 (0) |" in markdown
    assert paths["confusion:strategies"].read_bytes()[:8] == PNG_MAGIC
