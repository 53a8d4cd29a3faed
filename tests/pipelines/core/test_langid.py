"""language_mismatch: captions in the expected language, empty or too short to tell are kept; those
the detector confidently puts in another language are flagged with that language and its
probability. The detector itself is tested against py3langid in tests/pipelines/polyrefuse."""

from __future__ import annotations

import pytest

from pipelines.core.langid import LanguageDetector, default_detector, language_mismatch
from pipelines.polyrefuse import checks

ENGLISH = [
    "Golden retriever puppy playing in the grass",
    "A goldfish swimming in a round glass bowl on a kitchen table",
    "Vintage red sports car parked on a city street at night",
]
FOREIGN = [
    ("de", "Ein kleiner Goldfisch schwimmt im runden Aquarium auf dem Küchentisch"),
    ("fr", "Un petit poisson rouge nage dans son bocal sur la table de la cuisine"),
    ("ja", "金魚鉢の中で泳いでいる小さな金魚の写真"),
]
# A word or two: the detector spreads its probability over many languages.
AMBIGUOUS = ["Corgi", "Red car", "goldfish", "Pizza Margherita", "IMG_1234"]


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return default_detector()


def test_english_captions_are_kept(detector):
    assert language_mismatch(ENGLISH, "en", 0.9, detector) == [None] * len(ENGLISH)


def test_captions_in_other_languages_are_flagged_with_confidence(detector):
    got = language_mismatch([text for _, text in FOREIGN], "en", 0.9, detector)
    assert [found[0] for found in got] == [lang for lang, _ in FOREIGN]
    assert all(0.9 <= found[1] <= 1.0 and isinstance(found[1], float) for found in got)


def test_short_ambiguous_captions_are_kept(detector):
    assert language_mismatch(AMBIGUOUS, "en", 0.9, detector) == [None] * len(AMBIGUOUS)
    # the same texts with no confidence required: those whose first choice is not English are flagged
    loose = language_mismatch(AMBIGUOUS, "en", 0.0, detector)
    assert any(found is not None for found in loose)


def test_empty_and_null_captions_are_kept_and_order_is_kept(detector):
    german = FOREIGN[0][1]
    texts = [None, "", "   ", german, ENGLISH[0], f"  {german}\n", None]
    got = language_mismatch(texts, "en", 0.9, detector)
    assert got[:3] == [None, None, None] and got[4] is None and got[6] is None
    assert got[3] is not None and got[3] == got[5] and got[3][0] == "de"
    assert language_mismatch([], "en", 0.9, detector) == []


def test_expected_language_other_than_english(detector):
    texts = [text for _, text in FOREIGN] + ENGLISH[:1]
    got = language_mismatch(texts, "de", 0.9, detector)
    assert got[0] is None and [found[0] for found in got[1:]] == ["fr", "ja", "en"]


def test_default_detector_is_used_and_shared():
    assert default_detector() is default_detector()
    assert language_mismatch([FOREIGN[1][1]], "en", 0.5)[0][0] == "fr"


def test_bad_arguments_are_errors_that_say_what_is_known(detector):
    with pytest.raises(ValueError, match="'english' is not one the detector knows.*\\ben\\b"):
        language_mismatch(ENGLISH, "english", 0.9, detector)
    with pytest.raises(ValueError, match="min_probability"):
        language_mismatch(ENGLISH, "en", 1.5, detector)


def test_polyrefuse_checks_still_export_the_detector():
    assert checks.LanguageDetector is LanguageDetector and checks.default_detector is default_detector
