"""The compiled cleaning (entities, quote lines, URLs, whitespace, words) against the Python
rules it replaces, and the polars expressions used without numba."""

from __future__ import annotations

import html
import random
import re

import polars as pl
import pytest

from pipelines.core import cleaning
from pipelines.core.cleaning import clean_texts
from pipelines.core.text import QUOTE_LINE, URL, WHITESPACE_CHARS, collapse_whitespace, count_words

# every whitespace character, look-alikes that are not whitespace (zero-width space, word joiner,
# other 2- and 3-byte characters sharing lead bytes with whitespace), and 4-byte characters
SPACES = [*WHITESPACE_CHARS, *"ab .,é€😀\u200b\u2060\u00a1\u1681\u2030\u3001x", "  ", "\n\n", "\r\n"]
# entities (Reddit's own, others, cut ones), quote openers, URL prefixes in any case and what ends a URL
MARKUP = [
    "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&eacute;", "&#x41;", "&lt", "&amp;gt;", "&amp;lt;",
    "&", "&#39", "&quot", "&nbs", ">", " >", "\t>", "\n>", "\n  > q", "http://", "HTTPS://", "hTtP://x",
    "https:/", "https//", "www.", "WwW.", "wWw", "ww.", ")", "]", "(", "[", "x.org/a?b=1", "\n", " ", "\u3000",
    "\x1c", "é", "a", "\xa0", "&nbsp;>",
]
# only the entities the kernel decodes itself (no text goes to html.unescape)
REDDIT_MARKUP = [m for m in MARKUP if "&" not in m or m in ("&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&amp;gt;", "&amp;lt;", "&nbsp;>")]


def _fuzzed(seed: int, alphabet: list[str], rows: int = 3000, longest: int = 40) -> list[str | None]:
    rng = random.Random(seed)
    texts: list[str | None] = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest))) for _ in range(rows)]
    return texts + [None, "", " ", "\u3000word\u2029", "one", "> only a quote", "www.a"]


def _python(texts, unescape=True, quotes=True, placeholder="<url>"):
    out = []
    for t in texts:
        if t is None:
            out.append(None)
            continue
        if unescape:
            t = html.unescape(t)
        if quotes:
            t = re.sub(QUOTE_LINE, "", t)
        if placeholder is not None:
            t = re.sub(URL, placeholder.replace("\\", "\\\\"), t)
        out.append(collapse_whitespace(t))
    return out, [None if t is None else count_words(t) for t in out]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("compiled", [True, False])
def test_collapse_equals_the_python_rules(seed, compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(cleaning, "numba", None)  # the polars expressions (no numba installed)
    texts = _fuzzed(seed, SPACES)
    text, words = clean_texts(pl.Series("text", texts), unescape=False, drop_quotes=False, url_placeholder=None)
    assert (text.name, text.dtype, words.name, words.dtype) == ("text", pl.String, "n_words", pl.Int32)
    assert (text.to_list(), words.to_list()) == _python(texts, False, False, None)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("markup", [MARKUP, REDDIT_MARKUP], ids=["any-entity", "reddit-entities"])
@pytest.mark.parametrize(
    ("unescape", "quotes", "placeholder"),
    [(True, True, "<url>"), (True, True, ""), (True, True, "[a long link placeholder]"), (True, True, " \u3000x\xa0 "), (False, True, None), (True, False, "$1 \\1")],
)
def test_cleaning_equals_the_python_rules(seed, compiled, markup, unescape, quotes, placeholder, monkeypatch):
    if not compiled:
        monkeypatch.setattr(cleaning, "numba", None)
    texts = _fuzzed(seed, markup + SPACES[:8], longest=30)
    text, words = clean_texts(pl.Series("text", texts), unescape, quotes, placeholder)
    assert (text.name, words.name) == ("text", "n_words")
    assert (text.to_list(), words.to_list()) == _python(texts, unescape, quotes, placeholder)


def test_texts_needing_python_unescape_are_cleaned_too():
    texts = ["&eacute;t&eacute; &gt; x  http://a.b", "&amp;lt;www.x.y&#39;s", "plain &lt;3", None, "&copy 2024\n> q"]
    assert clean_texts(pl.Series("t", texts))[0].to_list() == _python(texts)[0]


def test_a_slice_of_a_chunked_column_with_nulls():
    texts = _fuzzed(7, MARKUP + SPACES, 200)  # a null at row 200
    series = pl.concat([pl.Series("t", texts[:100]), pl.Series("t", texts[100:])], rechunk=False).slice(50, 155)
    text, words = clean_texts(series)
    assert None in text.to_list()
    assert (text.to_list(), words.to_list()) == _python(texts[50:205])
