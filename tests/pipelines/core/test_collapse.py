"""The compiled whitespace collapse and word count against the Python rules they replace."""

from __future__ import annotations

import random

import polars as pl
import pytest

from pipelines.core import collapse
from pipelines.core.collapse import collapse_and_count
from pipelines.core.text import WHITESPACE_CHARS, collapse_whitespace, count_words

# every whitespace character, look-alikes that are not whitespace (zero-width space, word joiner,
# other 2- and 3-byte characters sharing lead bytes with whitespace), and 4-byte characters
ALPHABET = [*WHITESPACE_CHARS, *"ab .,é€😀\u200b\u2060\u00a1\u1681\u2030\u3001x", "  ", "\n\n", "\r\n"]


def _fuzzed(seed: int, rows: int = 3000) -> list[str | None]:
    rng = random.Random(seed)
    texts: list[str | None] = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))) for _ in range(rows)]
    return texts + [None, "", " ", "\u3000word\u2029", "one"]


def _expected(texts: list[str | None]) -> tuple[list[str | None], list[int | None]]:
    collapsed = [None if t is None else collapse_whitespace(t) for t in texts]
    return collapsed, [None if t is None else count_words(t) for t in collapsed]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("compiled", [True, False])
def test_equals_the_python_rules(seed, compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(collapse, "numba", None)  # the polars expressions (no numba installed)
    texts = _fuzzed(seed)
    text, words = collapse_and_count(pl.Series("text", texts))
    assert (text.name, text.dtype, words.name, words.dtype) == ("text", pl.String, "n_words", pl.Int32)
    assert (text.to_list(), words.to_list()) == _expected(texts)


def test_a_slice_of_a_chunked_column_with_nulls():
    texts = _fuzzed(7, 200)  # a null at row 200
    series = pl.concat([pl.Series("t", texts[:100]), pl.Series("t", texts[100:])], rechunk=False).slice(50, 155)
    text, words = collapse_and_count(series)
    assert None in text.to_list()
    assert (text.to_list(), words.to_list()) == _expected(texts[50:205])
