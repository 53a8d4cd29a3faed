"""The text rules give the same result in polars (Rust regex) and in Python's re."""

from __future__ import annotations

import html
import re

import polars as pl

from pipelines.core.text import (
    QUOTE_LINE,
    URL,
    WHITESPACE_CHARS,
    collapse_whitespace,
    collapse_whitespace_expr,
    count_words,
    count_words_expr,
    cut_footnote,
    footnote_pattern,
    strip_footnote,
    unescape_html_column,
    unescape_html_expr,
    update_where,
)


def test_whitespace_chars_are_exactly_what_str_isspace_accepts():
    assert WHITESPACE_CHARS == "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def test_rust_whitespace_is_python_whitespace_minus_ascii_separators():
    chars = pl.Series([chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])
    rust = set(chars.filter(chars.str.contains(r"^\s$")).to_list())
    assert set(WHITESPACE_CHARS) - rust == {"\x1c", "\x1d", "\x1e", "\x1f"}
    assert rust <= set(WHITESPACE_CHARS)


TEXTS = [
    "> quote\nline one  http://x.com/a?b=1) www.y.org]\u2003end\x1c x",
    "   ",
    "",
    "a\u00a0b\u2028c\x1fd\te",
    " >x\ny",
    "&amp;gt; not a quote &lt;3 &nbsp;&#39;s &eacute;",
    "see [this](https://en.wikipedia.org/wiki/A_(b)), and www.x.org/p, which",
]


def test_cleaning_agrees_between_engines():
    py = [collapse_whitespace(re.sub(URL, "<url>", re.sub(QUOTE_LINE, "", html.unescape(t)))) for t in TEXTS]
    col = pl.col("t")
    rs = (
        pl.DataFrame({"t": TEXTS})
        .select(collapse_whitespace_expr(unescape_html_expr(col).str.replace_all(QUOTE_LINE, "").str.replace_all(URL, "<url>")))
        .to_series()
        .to_list()
    )
    assert rs == py
    counts = pl.DataFrame({"t": py}).select(count_words_expr(pl.col("t"))).to_series().to_list()
    assert counts == [count_words(t) for t in py]


def test_footnote_is_cut_at_the_last_underscore_line_in_both_engines():
    cases = ["a\n_____\nfoot", "a\n___\nb\n_____\nfoot\n> x", "_____\nonly", "no foot", "a\n____a\nb", "t\n_____\n", "x\n  _____  \r\nfoot"]
    py = [strip_footnote(c, 3) for c in cases]
    assert py == ["a", "a\n___\nb", "", "no foot", "a\n____a\nb", "t", "x"]
    assert pl.Series(cases).str.replace(footnote_pattern(3), "$1").to_list() == py
    assert [cut_footnote(c, 3) for c in cases] == py


def test_footnote_line_scan_equals_the_regex_on_random_texts():
    import random

    pieces = ["_", "__", "_____", "\n", "\r", "\r\n", " ", "\t", "a", "x_", "\x0b", "\u2003", "\n\n"]
    rng = random.Random(11)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(20_000)]
    for n in (0, 1, 3, 5):
        assert [cut_footnote(t, n) for t in texts] == [strip_footnote(t, n) for t in texts], n


def test_vectorised_unescape_equals_html_unescape_on_random_entity_soup():
    import random

    pieces = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&eacute;", "&#x41;", "&lt", "&amp;gt;",
              "&amp;amp;", "&", "&&", "&#39", "&foo;", "a", " ", "\n"]
    rng = random.Random(7)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(20_000)]
    want = [html.unescape(t) for t in texts]
    assert unescape_html_column(pl.DataFrame({"t": texts}), "t")["t"].to_list() == want
    assert pl.DataFrame({"t": texts}).select(unescape_html_expr(pl.col("t"))).to_series().to_list() == want


def test_update_where_rewrites_only_selected_rows_and_leaves_the_input_alone():
    df = pl.DataFrame({"t": ["a>b", "plain", None, ">x", "y"], "k": [1, 2, 3, 4, 5]})
    col = pl.col("t")
    out = update_where(df, "t", col.str.contains(">", literal=True), col.str.replace_all(">", "!", literal=True))
    assert out.to_dict(as_series=False) == {"t": ["a!b", "plain", None, "!x", "y"], "k": [1, 2, 3, 4, 5]}
    assert df["t"].to_list() == ["a>b", "plain", None, ">x", "y"]  # scatter did not write through
    assert update_where(df, "t", col == "none", pl.lit("z")) is df
    assert update_where(df, "k", pl.col("k") > 0, pl.col("k") * 10)["k"].to_list() == [10, 20, 30, 40, 50]
