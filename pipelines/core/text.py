"""Shared text utilities: exact, engine-neutral definitions of the cleaning rules.

Each pattern here is written so that Python's ``re`` and polars (Rust ``regex``) give the same
result, which lets the vectorised pipeline and the pure-Python reference build agree to the byte:

* whitespace is an explicit character class (the characters ``str.split()`` splits on), because
  ``\\s`` differs between the two engines;
* patterns use no look-around and no backreferences (Rust ``regex`` has neither).
"""

from __future__ import annotations

import html
import re

import polars as pl

# Every character for which str.isspace() is true (what str.split() splits on), written out:
# computing it scans all 1.1M code points (half a second in every process that imports this).
# tests/pipelines/core/test_text.py checks it against that scan.
WHITESPACE_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS_CLASS = "".join(re.escape(ch) if ch in "-\\]^" else ch for ch in WHITESPACE_CHARS)
WS = f"[{_WS_CLASS}]"
NOT_WS = f"[^{_WS_CLASS}]"

# A line whose first non-blank character is ">" (a Markdown quote), removed with its content.
QUOTE_LINE = r"(?m)^[ \t]*>[^\n]*"
# URLs: scheme or www. prefix up to whitespace or a closing bracket/parenthesis (Markdown links).
URL = rf"(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)[^{_WS_CLASS})\]]+"
COLLAPSE = f"{WS}+"


def footnote_pattern(min_underscores: int) -> str:
    """Matches a whole text; group 1 is what precedes the LAST line made only of underscores.

    The greedy ``(.*)`` makes the underscore line the last one; replace the match by group 1.
    """
    return rf"(?s)\A(.*)(?:\A|\n)[ \t\r]*_{{{min_underscores},}}[ \t\r]*(?:\n.*|$)"


def strip_footnote(text: str, min_underscores: int) -> str:
    return re.sub(footnote_pattern(min_underscores), r"\1", text, count=1)


def cut_footnote(text: str, min_underscores: int) -> str:
    """:func:`strip_footnote` by a scan of the lines from the end: the same result.

    The regex needs Rust's slow capture search for its group (113 ms for one bench partition's
    7,889 submissions, against 17 ms here); the last line made only of blanks (space, tab, CR)
    around at least ``min_underscores`` underscores is found directly, and what precedes its
    newline is kept.
    """
    end = len(text)
    while True:
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end].strip(" \t\r")
        if len(line) >= min_underscores and line.count("_") == len(line):
            return text[: max(start - 1, 0)]
        if start == 0:
            return text
        end = start - 1


# --------------------------------------------------------------------------- pure Python


def repair_surrogates(text: str) -> str:
    """Lone UTF-16 surrogates (JSON "\\ud83d" without its pair) become U+FFFD; pairs are joined."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def count_words(text: str) -> int:
    """Words of an already collapsed text: tokens separated by single spaces."""
    return 0 if not text else text.count(" ") + 1


def collapse_whitespace(text: str) -> str:
    return re.sub(COLLAPSE, " ", text).strip(" ")


# --------------------------------------------------------------------------- polars


# Entities Reddit itself writes; "&amp;" must come last so that "&amp;gt;" becomes "&gt;" (one
# pass, as html.unescape does).
_COMMON_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&nbsp;", "\xa0"), ("&amp;", "&"))
_COMMON_ENTITY = "&(?:lt|gt|quot|#39|nbsp|amp);"


def unescape_html_expr(expr: pl.Expr) -> pl.Expr:
    """``html.unescape`` as an expression (Python on rows with '&'); see :func:`unescape_html_column`."""
    return (
        pl.when(expr.str.contains("&", literal=True))
        .then(expr.map_elements(html.unescape, return_dtype=pl.String, skip_nulls=True))
        .otherwise(expr)
    )


def update_where(df: pl.DataFrame, column: str, condition: pl.Expr, value: pl.Expr) -> pl.DataFrame:
    """``column`` = ``value`` on the rows where ``condition`` holds, the others untouched.

    Unlike ``when/then``, which evaluates ``value`` on every row, ``value`` runs only on the
    selected rows: a cheap test (``str.contains``) can spare most rows an expensive rewrite.
    """
    rows = df.select(pl.arg_where(condition)).to_series()
    if rows.len() == 0:
        return df
    if rows.len() == df.height:
        return df.with_columns(value.alias(column))
    new = df[rows].select(value.alias(column)).to_series()
    return df.with_columns(df.get_column(column).scatter(rows, new))


def unescape_html_column(df: pl.DataFrame, column: str) -> pl.DataFrame:
    """``html.unescape`` of ``df[column]``, exactly, at vectorised speed for the usual case.

    Rows without '&' pass untouched; rows whose every '&' opens one of Reddit's own entities are
    replaced natively; only the rest (other named or numeric entities, a bare '&lt') call Python.
    Each group is rewritten on its own rows only and scattered back in place.
    """
    col = pl.col(column)
    amp = df.select(pl.arg_where(col.str.contains("&", literal=True))).to_series()
    if amp.len() == 0:
        return df
    texts = df.get_column(column)
    with_amp = texts.gather(amp).to_frame()
    common = with_amp.select(col.str.count_matches("&", literal=True) == col.str.count_matches(_COMMON_ENTITY)).to_series()
    native = col
    for entity, char in _COMMON_ENTITIES:
        native = native.str.replace_all(entity, char, literal=True)
    rows, other = amp.filter(common), amp.filter(~common)
    if rows.len():
        texts = texts.scatter(rows, with_amp.filter(common).select(native).to_series())
    if other.len():
        texts = texts.scatter(other, [html.unescape(t) for t in with_amp.filter(~common).to_series().to_list()])
    return df.with_columns(texts)


# Rust's \s is Unicode White_Space: exactly str.isspace() minus the four ASCII separators
# \x1c-\x1f (checked over every code point in tests/pipelines/core/test_text.py). Mapping those
# four to a space first lets the fast \s+ stand in for the much slower explicit class.
_ASCII_SEPARATORS = "[\x1c-\x1f]"


def collapse_whitespace_expr(expr: pl.Expr) -> pl.Expr:
    expr = pl.when(expr.str.contains(_ASCII_SEPARATORS)).then(expr.str.replace_all(_ASCII_SEPARATORS, " ")).otherwise(expr)
    # Only runs that are not already a single space are rewritten (far fewer matches than \s+).
    return expr.str.replace_all(r"\s\s+|[^\S ]", " ").str.strip_chars(" ")


def count_words_expr(expr: pl.Expr) -> pl.Expr:
    return (
        pl.when(expr.str.len_bytes() == 0)
        .then(0)
        .otherwise(expr.str.count_matches(" ", literal=True) + 1)
        .cast(pl.Int32)
    )
