"""The compiled matcher behind :class:`pipelines.core.phrases.PhraseSet`: normalisation, one
automaton pass and the boundary rules over a whole batch of documents, in numba.

It gives exactly what the Python engine of :mod:`pipelines.core.phrases` gives (the tests compare
the two on fuzzed text of every script), only faster: the Python engine normalises each document
with ``unicodedata``, finds candidates with Hyperscan or polars and confirms each boundary with
``str.find``; here three compiled loops do it all per batch.

1. **Normalisation, per code point.** :class:`NormTables` holds, for every code point, its image
   under the settings' normalisation and casefold (``normalise(chr(cp))``). The kernel reads the
   Python strings in place and writes the images as UTF-8. For characters that cannot interact
   the normalised text is the concatenation of their images; they interact in two ways only:
   canonical composition (a character that can be the second of a composed pair, such as a
   combining accent or a Hangul vowel jamo, after another character) and canonical reordering (a
   combining mark after one of higher combining class). Where either may happen the kernel cuts
   a window from the last boundary character before it to the next one after it; ``unicodedata``
   normalises the window and its image is spliced in, so the result is always exact. Nearly
   every character (any that composes with nothing before it and has an image of up to three
   bytes, a precomposed "é" included) takes a tight loop of one table lookup and three stores.
2. **Matching.** The distinct normalised patterns form one Aho-Corasick automaton over bytes,
   made deterministic (a dense transition table over the byte classes the patterns use, about 90
   MB for the 12,657 KLAR patterns), walked by four lanes side by side. Every occurrence of every
   pattern is seen, overlapping ones included. The walk is a chain of dependent loads, and on
   text a few thousand of the 155,000 states take 99% of the steps: the first batch of a
   process renumbers states and byte classes by how often it visits them, so the hot rows lie
   together (:meth:`CompiledMatcher.lay_out`).
3. **Boundaries.** An occurrence counts for a rule (``substring``, ``both``, ``start``) when the
   code points around it allow it: the character before the start and after the end must not be
   word characters (:meth:`CharClasses.is_word`, tabulated per code point). Per document each
   pattern is reported once, with the rules one of its occurrences satisfies.

The kernels compile on first use (15-20 s) and are cached on disk next to this file (numba's
``cache=True``), so later processes and Ray workers load them (under a second). The per-code-point
tables are stored beside them, per settings and Unicode version (0.5 s to build, 0.02 s to load).
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from pipelines.core.jit import njit, numba, put_utf8

if numba is not None:
    from numba.cpython.unicode import _get_code_point


RULE_BITS = {"substring": 1, "both": 2, "start": 4}
SUPPORTED_FORMS = ("NFKC", "NFC", "none")
_MAX_CP = 0x110000
_DECOMPOSED = {"NFKC": "NFKD", "NFC": "NFD"}


def available(normalisation: str) -> bool:
    """Whether the compiled matcher serves this normalisation (and numba is installed)."""
    return numba is not None and normalisation in SUPPORTED_FORMS


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class NormTables:
    """``info[cp]``, one word per code point: bits 0-14 the index + 1 of its image in
    ``rep_off``/``rep_bytes`` (0: the character is its own image), bit 15 whether its
    decomposition starts with a character that can be the second of a canonical composition
    (a combining accent, a Hangul vowel jamo), bits 16-23 and 24-31 the combining classes at the
    two ends of its decomposition; ``word[cp]`` whether it is a word character. ``check``:
    whether any character composes or reorders at all (not without normalisation). ``simple[cp]`` for the Basic Multilingual Plane: the UTF-8 image of
    a character that composes with nothing before it and has an image of at most three bytes
    (its bytes low first, their count in the top byte), 0 for the others: the normalisation
    kernel's one lookup per character for nearly all text (:func:`_simple_images`)."""

    info: np.ndarray
    rep_off: np.ndarray
    rep_bytes: np.ndarray
    word: np.ndarray
    check: bool
    simple: np.ndarray

    @classmethod
    def of(cls, info: np.ndarray, rep_off: np.ndarray, rep_bytes: np.ndarray, word: np.ndarray) -> "NormTables":
        """The tables, with what is derived from them (``check``, ``simple``)."""
        return cls(info, rep_off, rep_bytes, word, bool((info >> 15).any()), _simple_images(info, rep_off, rep_bytes))


_REP_MASK = 0x7FFF
_SECOND = 1 << 15


def _composition_seconds() -> frozenset[str]:
    """Characters that can be the second of a canonical composition: the second character of
    every two-character canonical decomposition, and the Hangul vowel and trailing jamo."""
    seconds = {chr(cp) for cp in range(0x1161, 0x1176)} | {chr(cp) for cp in range(0x11A8, 0x11C3)}
    for cp in range(_MAX_CP):
        if 0xD800 <= cp < 0xE000:
            continue
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                seconds.add(chr(int(parts[1], 16)))
    return frozenset(seconds)


# What norm_tables computes; a change to it must change this, so that no stored table is reused.
_TABLES_FORMAT = 2
_TABLE_ARRAYS = ("info", "rep_off", "rep_bytes", "word")  # the arrays stored


def _tables_file(normalisation: str, casefold: bool, substring_ranges: tuple[tuple[int, int], ...]) -> Path:
    """Where the tables for these settings are stored: next to this file, beside numba's cache
    of the kernels (``NUMBA_CACHE_DIR`` when set), named by everything they depend on."""
    key = repr((_TABLES_FORMAT, unicodedata.unidata_version, normalisation, casefold, substring_ranges))
    folder = Path(os.environ["NUMBA_CACHE_DIR"]) if os.environ.get("NUMBA_CACHE_DIR") else Path(__file__).parent / "__pycache__"
    return folder / f"norm-tables-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


@lru_cache(maxsize=8)
def norm_tables(normalisation: str, casefold: bool, substring_ranges: tuple[tuple[int, int], ...]) -> NormTables:
    """The tables for these settings: built once (about 0.5 s) and stored (:func:`_tables_file`),
    so that later processes, worker processes included, load them (a few milliseconds). A stored
    file that cannot be read is built again; one that cannot be written is not an error."""
    if normalisation not in SUPPORTED_FORMS:
        raise ValueError(f"the compiled matcher supports {SUPPORTED_FORMS}, not {normalisation!r}")
    path = _tables_file(normalisation, casefold, substring_ranges)
    try:
        with np.load(path) as stored:
            arrays = {name: stored[name] for name in _TABLE_ARRAYS}
        if arrays["info"].shape != (_MAX_CP,) or arrays["word"].shape != (_MAX_CP,):
            raise ValueError(f"{path} holds tables of another size")
        return NormTables.of(**arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    tables = _build_norm_tables(normalisation, casefold, substring_ranges)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **{name: getattr(tables, name) for name in _TABLE_ARRAYS})
        os.replace(tmp, path)
    except OSError:
        pass
    return tables


def _build_norm_tables(normalisation: str, casefold: bool, substring_ranges: tuple[tuple[int, int], ...]) -> NormTables:
    seconds = _composition_seconds() if normalisation != "none" else frozenset()
    decomposed = _DECOMPOSED.get(normalisation)
    info = np.zeros(_MAX_CP, dtype=np.uint32)
    word = np.zeros(_MAX_CP, dtype=np.bool_)
    images: list[bytes] = []
    for cp in range(_MAX_CP):
        if 0xD800 <= cp < 0xE000:
            continue
        char = chr(cp)
        category = unicodedata.category(char)
        if category == "Cn":  # unassigned: its own image, combining class 0, not a word character
            continue
        word[cp] = category[0] in "LNM"
        image = unicodedata.normalize(normalisation, char) if normalisation != "none" else char
        if casefold:
            image = image.casefold()
        bits = 0
        if image != char:
            images.append(image.encode("utf-8"))
            bits = len(images)
        if decomposed:
            parts = unicodedata.normalize(decomposed, char)
            bits |= (_SECOND if parts[0] in seconds or char in seconds else 0)
            bits |= unicodedata.combining(parts[0]) << 16 | unicodedata.combining(parts[-1]) << 24
        info[cp] = bits
    if len(images) > _REP_MASK:
        raise ValueError(f"{len(images)} characters change under {normalisation}; the tables hold {_REP_MASK}")
    for lo, hi in substring_ranges:
        word[lo : hi + 1] = False
    rep_off = np.zeros(len(images) + 1, dtype=np.int64)  # image r (from 1) is rep_bytes[rep_off[r - 1]:rep_off[r]]
    rep_off[1:] = np.cumsum([len(b) for b in images])
    rep_bytes = np.frombuffer(b"".join(images), dtype=np.uint8).copy()
    return NormTables.of(info, rep_off, rep_bytes, word)


@njit(cache=True, nogil=True)
def _simple_images(info, rep_off, rep_bytes):
    """:attr:`NormTables.simple`: per BMP code point, its image's UTF-8 bytes (low byte first)
    and their count (top byte) when the character composes with nothing before it (it is no
    second of a composition and starts with combining class 0: ``info`` bits 15-23 clear; a
    precomposed "é" is one) and its image is one to three bytes; else 0."""
    simple = np.zeros(0x10000, dtype=np.uint32)
    own = np.zeros(3, dtype=np.uint8)  # a BMP character's own UTF-8 bytes
    for cp in range(0x10000):
        bits = info[cp]
        if bits & (_SECOND | 0xFF0000) or 0xD800 <= cp < 0xE000:  # a lone surrogate takes the careful path
            continue
        r = bits & _REP_MASK
        if r == 0:
            image, lo, n = own, 0, put_utf8(own, 0, cp)
        else:
            image, lo, n = rep_bytes, rep_off[r - 1], rep_off[r] - rep_off[r - 1]
        if n <= 3:
            v = np.uint32(n) << 24
            for j in range(n):
                v |= np.uint32(image[lo + j]) << (8 * j)
            simple[cp] = v
    return simple


# --------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True, inline="always")
def _decode(buf, i):
    """(code point, its length in bytes) of the UTF-8 sequence at ``buf[i]`` (valid UTF-8)."""
    b0 = np.int64(buf[i])
    if b0 < 0x80:
        return b0, 1
    if b0 < 0xE0:
        return ((b0 & 0x1F) << 6) | (np.int64(buf[i + 1]) & 0x3F), 2
    if b0 < 0xF0:
        return ((b0 & 0x0F) << 12) | ((np.int64(buf[i + 1]) & 0x3F) << 6) | (np.int64(buf[i + 2]) & 0x3F), 3
    return (((b0 & 0x07) << 18) | ((np.int64(buf[i + 1]) & 0x3F) << 12)
            | ((np.int64(buf[i + 2]) & 0x3F) << 6) | (np.int64(buf[i + 3]) & 0x3F)), 4


@njit(cache=True, nogil=True)
def _normalise_kernel(joined, offsets, simple, info, rep_off, rep_bytes, check):
    """Normalise each text code point by code point (:class:`NormTables`) into UTF-8. The texts
    come as one Python string, read in place (no UTF-8 copy first): text ``d`` is
    ``joined[offsets[d]:offsets[d + 1]]`` (a list of strings would cost more: numba checks the
    type of every item of a list it is given, about 2 microseconds a text).

    Returns (out, starts, ends, win_doc, win_lo, win_hi, win_out): ``out[starts[d]:ends[d]]`` is
    text ``d`` normalised, except for the windows of the documents listed in ``win_doc``: there
    the characters ``win_lo:win_hi`` may compose or reorder, so their image must come from
    ``unicodedata`` and go in at ``win_out`` (:func:`_splice_kernel`). A window runs from the
    last boundary character before the trouble (one that composes with nothing before it) to
    the next one after it, so the rest of the document is exact as it is. A document whose image
    would not fit in the buffer is one window from end to end.

    The buffer keeps room for three bytes per character still to come, so ASCII and BMP
    characters never check it; a longer image checks, and overflows into a whole-document
    window."""
    n_docs = offsets.shape[0] - 1
    n_chars = offsets[n_docs]
    capacity = 3 * n_chars + 64
    out = np.empty(capacity, dtype=np.uint8)
    starts = np.empty(n_docs, dtype=np.int64)
    ends = np.empty(n_docs, dtype=np.int64)
    win_doc = np.empty(64, dtype=np.int64)
    win_lo = np.empty(64, dtype=np.int64)
    win_hi = np.empty(64, dtype=np.int64)
    win_out = np.empty(64, dtype=np.int64)
    n_win = 0
    w = 0
    left = n_chars  # characters not yet read, this one included
    for d in range(n_docs):
        base = offsets[d]
        stop = offsets[d + 1] - base
        starts[d] = w
        prev_cp = 0  # the character before, whose combining class a mark after it is checked against
        last_boundary = 0  # the last boundary character, and where its image starts
        last_boundary_out = w
        fits = True
        i = 0
        while i < stop:
            # Nearly every character is a boundary with an image from one lookup: a tight loop.
            cp = _get_code_point(joined, base + i)
            while cp < 0x10000 and simple[cp] != 0:
                e = simple[cp]
                at = np.uint64(w)  # an unsigned index: no wraparound check for negative ones
                out[at] = e & 0xFF  # three bytes whatever the image's length: there is room
                out[at + np.uint64(1)] = (e >> 8) & 0xFF
                out[at + np.uint64(2)] = (e >> 16) & 0xFF
                last_boundary = i
                last_boundary_out = w
                w += e >> 24
                prev_cp = cp
                i += 1
                if i == stop:
                    break
                cp = _get_code_point(joined, base + i)
            if i == stop:
                break
            bits = info[cp]
            if check and bits >> 15:
                fc = (bits >> 16) & 0xFF
                second = (bits & _SECOND) != 0
                if (second and i > 0) or (fc != 0 and fc < info[prev_cp] >> 24):
                    # trouble: a window from the last boundary to the next one
                    j = i + 1
                    while j < stop and (info[_get_code_point(joined, base + j)] & (_SECOND | 0xFF0000)) != 0:
                        j += 1
                    win_doc, win_lo, win_hi, win_out, n_win = _add_window(
                        win_doc, win_lo, win_hi, win_out, n_win, d, last_boundary, j, last_boundary_out
                    )
                    w = last_boundary_out  # the window's start was written already: its image replaces it
                    prev_cp = 0  # the window ends before a character that composes with nothing before it
                    i = j
                    continue
                if fc == 0 and not second:
                    last_boundary = i
                    last_boundary_out = w
            else:
                last_boundary = i
                last_boundary_out = w
            prev_cp = cp
            r = bits & _REP_MASK
            if r == 0:
                if cp >= 0x10000 and w + 4 + 3 * (left - i - 1) > capacity:
                    fits = False
                    break
                w = put_utf8(out, w, cp)
            else:
                lo = rep_off[r - 1]
                hi = rep_off[r]
                if w + (hi - lo) + 3 * (left - i - 1) > capacity:
                    fits = False
                    break
                for j in range(lo, hi):
                    out[w] = rep_bytes[j]
                    w += 1
            i += 1
        if not fits:  # out of room: the whole document is one window
            while n_win > 0 and win_doc[n_win - 1] == d:
                n_win -= 1
            w = starts[d]
            win_doc, win_lo, win_hi, win_out, n_win = _add_window(win_doc, win_lo, win_hi, win_out, n_win, d, 0, stop, w)
        ends[d] = w
        left -= stop
    return out[:w], starts, ends, win_doc[:n_win], win_lo[:n_win], win_hi[:n_win], win_out[:n_win]


@njit(cache=True, nogil=True, inline="always")
def _add_window(win_doc, win_lo, win_hi, win_out, n_win, d, lo, hi, at):
    if n_win == win_doc.shape[0]:
        cap = 2 * n_win
        win_doc, win_lo, win_hi, win_out = _grow(win_doc, cap), _grow(win_lo, cap), _grow(win_hi, cap), _grow(win_out, cap)
    win_doc[n_win] = d
    win_lo[n_win] = lo
    win_hi[n_win] = hi
    win_out[n_win] = at
    return win_doc, win_lo, win_hi, win_out, n_win + 1


@njit(cache=True, nogil=True)
def _splice_kernel(out, starts, ends, win_doc, win_out, img_bytes, img_off):
    """The documents with windows, whole: their pieces in ``out`` with the windows' images
    (``img_bytes[img_off[k]:img_off[k + 1]]``, from unicodedata) put in at ``win_out``.
    Returns (spliced, starts, ends) per document of ``win_doc`` in order of first appearance."""
    n_win = win_doc.shape[0]
    size = img_off[n_win]
    n_docs = 0
    for k in range(n_win):
        if k == 0 or win_doc[k] != win_doc[k - 1]:
            size += ends[win_doc[k]] - starts[win_doc[k]]
            n_docs += 1
    spliced = np.empty(size, dtype=np.uint8)
    d_starts = np.empty(n_docs, dtype=np.int64)
    d_ends = np.empty(n_docs, dtype=np.int64)
    w = 0
    x = -1
    k = 0
    while k < n_win:
        d = win_doc[k]
        x += 1
        d_starts[x] = w
        at = starts[d]
        while k < n_win and win_doc[k] == d:
            spliced, w = _put(spliced, w, out, at, win_out[k])
            spliced, w = _put(spliced, w, img_bytes, img_off[k], img_off[k + 1])
            at = win_out[k]
            k += 1
        spliced, w = _put(spliced, w, out, at, ends[d])
        d_ends[x] = w
    return spliced, d_starts, d_ends


@njit(cache=True, nogil=True, inline="always")
def _put(out, w, src, lo, hi):
    """Append ``src[lo:hi]`` to ``out`` at ``w`` (growing it); returns (out, new w)."""
    if w + (hi - lo) > out.shape[0]:
        out = _grow(out, 2 * (w + hi - lo))
    for j in range(lo, hi):
        out[w] = src[j]
        w += 1
    return out, w


@njit(cache=True, nogil=True)
def _build_automaton(pat_bytes, pat_off, byte_class, n_classes, n_states):
    """The deterministic Aho-Corasick automaton of the patterns ``pat_bytes[pat_off[k]:pat_off[k
    + 1]]`` (distinct, non-empty; ``n_states``: the nodes of their trie, root included).

    Returns (table, stride, term, dict_link, per_byte). ``table[s * stride + c]`` is the next
    state for byte class ``c``, stored premultiplied (``t * stride``, so the scan adds the class
    and loads, with no multiply on its critical path), plus 1 when state ``t`` ends a pattern or
    has one as a suffix (``stride`` is even, so the flag has the low bit to itself). ``term[s]``:
    the pattern ending exactly at ``s`` or -1; ``dict_link[s]``: the next state on the suffix
    chain of ``s`` that ends a pattern, or -1; ``per_byte``: the most patterns that end at one
    position. The table is built in place (trie, then full rows, then premultiplied): its size
    is the whole memory cost."""
    n_pat = pat_off.shape[0] - 1
    stride = n_classes + (n_classes & 1)
    table = np.zeros(n_states * stride, dtype=np.int32)
    term = np.full(n_states, -1, dtype=np.int32)
    used = 1
    for k in range(n_pat):
        s = 0
        for i in range(pat_off[k], pat_off[k + 1]):
            c = byte_class[pat_bytes[i]]
            nxt = table[s * stride + c]
            if nxt == 0:
                nxt = used
                used += 1
                table[s * stride + c] = nxt
            s = nxt
        term[s] = k
    fail = np.zeros(n_states, dtype=np.int32)
    dict_link = np.full(n_states, -1, dtype=np.int32)
    has_out = np.zeros(n_states, dtype=np.bool_)
    chain = np.zeros(n_states, dtype=np.int64)
    per_byte = 1
    queue = np.empty(n_states, dtype=np.int32)
    head = 0
    tail = 0
    for c in range(n_classes):
        nxt = table[c]
        if nxt != 0:
            queue[tail] = nxt
            tail += 1
    while head < tail:  # breadth first: a state's failure state is complete before it
        s = queue[head]
        head += 1
        f = fail[s]
        dict_link[s] = f if term[f] >= 0 else dict_link[f]
        has_out[s] = term[s] >= 0 or dict_link[s] >= 0
        chain[s] = (1 if term[s] >= 0 else 0) + (chain[dict_link[s]] if dict_link[s] >= 0 else 0)
        per_byte = max(per_byte, chain[s])
        for c in range(n_classes):
            nxt = table[s * stride + c]
            if nxt != 0:  # a trie child (rows are completed only here, parents first)
                fail[nxt] = table[f * stride + c]
                queue[tail] = nxt
                tail += 1
            else:
                table[s * stride + c] = table[f * stride + c]
    for i in range(table.shape[0]):
        t = table[i]
        table[i] = t * stride + (1 if has_out[t] else 0)
    return table, stride, term, dict_link, per_byte


def _trie_size(encoded: Sequence[bytes]) -> int:
    """Nodes of the trie of these distinct byte strings, root included."""
    size, prev = 1, b""
    for p in sorted(encoded):
        common = 0
        for x, y in zip(p, prev):
            if x != y:
                break
            common += 1
        size += len(p) - common
        prev = p
    return size


@njit(cache=True, nogil=True, inline="always")
def _before_ok(buf, start, doc_start, word):
    if start == doc_start:
        return True
    j = start - 1
    while (buf[j] & 0xC0) == 0x80:
        j -= 1
    cp, _ = _decode(buf, j)
    return not word[cp]


@njit(cache=True, nogil=True, inline="always")
def _after_ok(buf, end, doc_end, word):
    if end == doc_end:
        return True
    cp, _ = _decode(buf, end)
    return not word[cp]


@njit(cache=True, nogil=True, inline="always")
def _emit(state, d, lo, hi, end, buf, term, dict_link, pat_len, pat_rules, word, seen, slot, o_doc, o_pat, o_bits, n_out):
    """Record the patterns ending at ``end`` (state ``state`` of document ``d`` =
    ``buf[lo:hi]``) with the rules their occurrence satisfies; returns the new output count.
    The caller guarantees room for one new pair per pattern."""
    u = state if term[state] >= 0 else dict_link[state]
    while u >= 0:
        k = term[u]
        u = dict_link[u]
        want = pat_rules[k]
        if seen[k] != d:
            seen[k] = d
            slot[k] = n_out
            o_doc[n_out] = d
            o_pat[n_out] = k
            o_bits[n_out] = 0
            n_out += 1
        j = slot[k]
        have = o_bits[j] | (want & 1)
        if have != want and want & 6:
            if _before_ok(buf, end - pat_len[k], lo, word):
                have |= want & 4
                if want & 2 and _after_ok(buf, end, hi, word):
                    have |= 2
        o_bits[j] = have
    return n_out


@njit(cache=True, nogil=True)
def _lane_bounds(starts, ends, lanes):
    """Lane ``l`` scans documents ``first[l]:first[l + 1]``, about an equal share of the bytes."""
    n_docs = starts.shape[0]
    cum = np.cumsum(ends - starts)
    total = cum[n_docs - 1] if n_docs else 0
    first = np.empty(lanes + 1, dtype=np.int64)
    first[0] = 0
    first[lanes] = n_docs
    for l in range(1, lanes):
        first[l] = max(first[l - 1], np.searchsorted(cum, total * l // lanes))
    return first


@njit(cache=True, nogil=True)
def _scan_kernel(buf, starts, ends, byte_class, table, stride, term, dict_link, per_byte, pat_len, pat_rules, word):
    """Every (document, pattern) with the rules it is found under (bits of ``RULE_BITS``), once
    per document, in document order. ``per_byte``: the most patterns that can end at one byte
    (bounds the new pairs of a stretch of bytes).

    Four lanes walk the automaton side by side, each over its own quarter of the documents:
    each byte's step is a load that depends on the one before, and four independent chains keep
    the core busy while one waits on memory (about 2x one lane here; a fifth lane or more adds
    nothing). Each lane keeps its own outputs; they are joined in lane order."""
    n_docs = starts.shape[0]
    n_pat = pat_len.shape[0]
    first = _lane_bounds(starts, ends, 4)
    seen = np.full((4, n_pat), -1, dtype=np.int64)
    slot = np.zeros((4, n_pat), dtype=np.int64)
    cap = 1024 + 4 * (n_docs // 4 + 1)
    o_doc = np.empty((4, cap), dtype=np.int32)
    o_pat = np.empty((4, cap), dtype=np.int32)
    o_bits = np.empty((4, cap), dtype=np.uint8)
    n_out = np.zeros(4, dtype=np.int64)
    d = first[:4].copy()
    i = np.zeros(4, dtype=np.int64)
    e = np.zeros(4, dtype=np.int64)
    s = np.zeros(4, dtype=np.int64)
    active = True
    for l in range(4):
        if d[l] < first[l + 1]:
            i[l] = starts[d[l]]
            e[l] = ends[d[l]]
        else:
            active = False
    while active:
        need = 0
        for l in range(4):  # room for every pattern that may end in the rest of each lane's document
            need = max(need, n_out[l] + min(n_pat, per_byte * (e[l] - i[l])))
        if need > o_doc.shape[1]:
            cap = 2 * need
            o_doc, o_pat, o_bits = _grow2(o_doc, cap), _grow2(o_pat, cap), _grow2(o_bits, cap)
        m = min(min(e[0] - i[0], e[1] - i[1]), min(e[2] - i[2], e[3] - i[3]))
        i0, i1, i2, i3 = i[0], i[1], i[2], i[3]
        s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
        while m > 0:
            k, s0, s1, s2, s3, hits = _walk4(buf, byte_class, table, i0, i1, i2, i3, s0, s1, s2, s3, m)
            i0 += k
            i1 += k
            i2 += k
            i3 += k
            m -= k
            if hits:
                i[0], i[1], i[2], i[3] = i0, i1, i2, i3
                s[0], s[1], s[2], s[3] = s0, s1, s2, s3
                for l in range(4):
                    if hits >> l & 1:
                        _emit_lane(l, s[l] // stride, i[l], d, e, starts, buf, term, dict_link, pat_len, pat_rules, word, seen,
                                   slot, o_doc, o_pat, o_bits, n_out)
        i[0], i[1], i[2], i[3] = i0, i1, i2, i3
        s[0], s[1], s[2], s[3] = s0, s1, s2, s3
        for l in range(4):
            if i[l] == e[l]:
                d[l], i[l], e[l] = _next_doc(d[l], first[l + 1], starts, ends)
                s[l] = 0
                if d[l] >= first[l + 1]:
                    active = False
    # a lane ran out of documents: the others finish one at a time
    size = 0
    parts = []
    for l in range(4):
        ld, lp, lb, ln = o_doc[l], o_pat[l], o_bits[l], n_out[l]
        if d[l] < first[l + 1]:
            ld, lp, lb, ln = _scan_rest(buf, starts, ends, d[l], first[l + 1], i[l], s[l], byte_class, table, stride, term,
                                        dict_link, per_byte, pat_len, pat_rules, word, seen[l], slot[l], ld, lp, lb, ln)
        parts.append((ld, lp, lb, ln))
        size += ln
    out_doc = np.empty(size, dtype=np.int32)
    out_pat = np.empty(size, dtype=np.int32)
    out_bits = np.empty(size, dtype=np.uint8)
    w = 0
    for ld, lp, lb, ln in parts:
        out_doc[w : w + ln] = ld[:ln]
        out_pat[w : w + ln] = lp[:ln]
        out_bits[w : w + ln] = lb[:ln]
        w += ln
    return out_doc, out_pat, out_bits


@njit(cache=True, nogil=True, inline="never")
def _walk4(buf, byte_class, table, i0, i1, i2, i3, s0, s1, s2, s3, m):
    """Up to ``m`` steps of four lanes (bytes ``i0 + k``, ... from states ``s0``, ...), stopping
    after the first step where a lane reaches a state with patterns: (steps taken, the four
    states, the lanes with patterns as bits). A function of its own, so that the hot loop keeps
    everything in registers (inlined in the scan, its states went through the stack)."""
    k = np.uint64(0)
    um = np.uint64(m)
    u0, u1, u2, u3 = np.uint64(i0), np.uint64(i1), np.uint64(i2), np.uint64(i3)
    while k < um:  # unsigned indices: no negative-index check on the chain of loads
        t0 = table[np.uint64(s0 + byte_class[buf[u0 + k]])]
        t1 = table[np.uint64(s1 + byte_class[buf[u1 + k]])]
        t2 = table[np.uint64(s2 + byte_class[buf[u2 + k]])]
        t3 = table[np.uint64(s3 + byte_class[buf[u3 + k]])]
        s0 = t0 & -2
        s1 = t1 & -2
        s2 = t2 & -2
        s3 = t3 & -2
        k += np.uint64(1)
        if (t0 | t1 | t2 | t3) & 1:
            return np.int64(k), s0, s1, s2, s3, (t0 & 1) | (t1 & 1) << 1 | (t2 & 1) << 2 | (t3 & 1) << 3
    return np.int64(k), s0, s1, s2, s3, 0


@njit(cache=True, nogil=True)
def _emit_lane(l, state, end, d, e, starts, buf, term, dict_link, pat_len, pat_rules, word, seen, slot, o_doc, o_pat, o_bits,
               n_out):
    """:func:`_emit` for lane ``l`` of :func:`_scan_kernel` (its document, outputs and count)."""
    n_out[l] = _emit(state, d[l], starts[d[l]], e[l], end, buf, term, dict_link, pat_len, pat_rules, word,
                     seen[l], slot[l], o_doc[l], o_pat[l], o_bits[l], n_out[l])


@njit(cache=True, nogil=True)
def _grow2(a, cap):
    """``a`` (lanes x capacity) with room for ``cap`` per lane."""
    b = np.empty((a.shape[0], max(cap, a.shape[1])), dtype=a.dtype)
    b[:, : a.shape[1]] = a
    return b


@njit(cache=True, nogil=True, inline="always")
def _next_doc(d, stop, starts, ends):
    """The next document of a lane: (index, first byte, end byte); past ``stop``: (index, 0, 0)."""
    d += 1
    if d < stop:
        return d, starts[d], ends[d]
    return d, np.int64(0), np.int64(0)


@njit(cache=True, nogil=True)
def _scan_rest(buf, starts, ends, d, stop, i, s, byte_class, table, stride, term, dict_link, per_byte, pat_len, pat_rules, word,
               seen, slot, o_doc, o_pat, o_bits, n_out):
    """One lane from byte ``i`` (state ``s``) of document ``d`` to the end of document ``stop - 1``."""
    while d < stop:
        lo = starts[d]
        hi = ends[d]
        o_doc, o_pat, o_bits = _ensure(o_doc, o_pat, o_bits, n_out, min(pat_len.shape[0], per_byte * (hi - i)))
        while i < hi:
            t = table[np.uint64(s + byte_class[buf[i]])]
            s = t & -2
            i += 1
            if t & 1:
                n_out = _emit(s // stride, d, lo, hi, i, buf, term, dict_link, pat_len, pat_rules, word,
                              seen, slot, o_doc, o_pat, o_bits, n_out)
        d += 1
        s = 0
        if d < stop:
            i = starts[d]
    return o_doc, o_pat, o_bits, n_out


@njit(cache=True, nogil=True, inline="always")
def _ensure(o_doc, o_pat, o_bits, n_out, need):
    """The output arrays, grown if they have room for fewer than ``need`` more pairs."""
    if o_doc.shape[0] - n_out >= need:
        return o_doc, o_pat, o_bits
    cap = 2 * o_doc.shape[0] + need
    return _grow(o_doc, cap), _grow(o_pat, cap), _grow(o_bits, cap)


@njit(cache=True, nogil=True)
def _grow(a, cap):
    b = np.empty(max(cap, a.shape[0]), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _visit_counts(buf, starts, ends, byte_class, table, stride, limit):
    """How often the walk over the documents (their first ``limit`` bytes, whole documents)
    takes each state and each byte class: the profile :func:`_relabel` lays the table out by."""
    n_states = table.shape[0] // stride
    state_visits = np.zeros(n_states, dtype=np.int64)
    class_visits = np.zeros(stride, dtype=np.int64)
    seen = 0
    for d in range(starts.shape[0]):
        if seen >= limit:
            break
        s = 0
        for i in range(starts[d], ends[d]):
            c = byte_class[buf[i]]
            class_visits[c] += 1
            s = table[s + c] & -2
            state_visits[s // stride] += 1
        seen += ends[d] - starts[d]
    return state_visits, class_visits


@njit(cache=True, nogil=True)
def _relabel(table, stride, term, dict_link, new_state, new_class):
    """The same automaton with state ``s`` renumbered ``new_state[s]`` and byte class ``c``
    ``new_class[c]`` (permutations; the root stays 0): (table, term, dict_link), new arrays."""
    n_states = term.shape[0]
    out = np.empty_like(table)
    for s in range(n_states):
        row = s * stride
        new_row = new_state[s] * stride
        for c in range(stride):
            t = table[row + c]
            out[new_row + new_class[c]] = new_state[(t & -2) // stride] * stride + (t & 1)
    new_term = np.empty_like(term)
    new_link = np.empty_like(dict_link)
    for s in range(n_states):
        new_term[new_state[s]] = term[s]
        new_link[new_state[s]] = new_state[dict_link[s]] if dict_link[s] >= 0 else -1
    return out, new_term, new_link


# --------------------------------------------------------------------------- the matcher


class CompiledMatcher:
    """Normalise a batch of texts and find, per document, each pattern with the rules it is
    found under. ``patterns``: distinct normalised strings; ``rules``: per pattern, the bits
    (:data:`RULE_BITS`) of the rules it is confirmed with."""

    def __init__(self, patterns: Sequence[str], rules: Sequence[int], tables: NormTables, normalise_one) -> None:
        encoded = [p.encode("utf-8") for p in patterns]
        if any(not p for p in encoded):
            raise ValueError("an empty pattern")
        used = np.zeros(256, dtype=bool)
        for p in encoded:
            used[np.frombuffer(p, dtype=np.uint8)] = True
        byte_class = np.zeros(256, dtype=np.int32)
        byte_class[used] = np.arange(1, int(used.sum()) + 1, dtype=np.int32)
        pat_off = np.zeros(len(encoded) + 1, dtype=np.int64)
        pat_off[1:] = np.cumsum([len(p) for p in encoded])
        pat_bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self.pat_len = np.diff(pat_off).astype(np.int64)
        self.pat_rules = np.asarray(rules, dtype=np.uint8)
        table, self.stride, term, dict_link, self.per_byte = _build_automaton(
            pat_bytes, pat_off, byte_class, int(used.sum()) + 1, _trie_size(encoded)
        )
        self.automaton = (table, term, dict_link, byte_class)  # replaced as one: see lay_out
        self.laid_out = False
        self.tables = tables
        self.normalise_one = normalise_one

    def lay_out(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        """Renumber the automaton's states by how often the walk over these (normalised)
        documents takes them, and its byte classes likewise, so that the few thousand hot rows
        of the 90 MB table, and their hot entries, lie together: fewer cache lines and pages
        to reach (the walk is a chain of dependent loads). Matches are the same whatever the
        numbering. Done once, by :meth:`find`, on the first batch with enough text."""
        table, term, dict_link, byte_class = self.automaton
        limit = min(int(buf.shape[0]), self.LAYOUT_SAMPLE)
        state_visits, class_visits = _visit_counts(buf, starts, ends, byte_class, table, self.stride, limit)
        state_visits[0] = np.iinfo(np.int64).max  # the root stays state 0, where every walk starts
        new_state = np.empty(term.shape[0], dtype=np.int64)
        new_state[np.argsort(-state_visits, kind="stable")] = np.arange(term.shape[0])
        new_class = np.empty(self.stride, dtype=np.int64)
        new_class[np.argsort(-class_visits, kind="stable")] = np.arange(self.stride)
        table, term, dict_link = _relabel(table, self.stride, term, dict_link, new_state, new_class)
        self.automaton = (table, term, dict_link, new_class[byte_class].astype(np.int32))
        self.laid_out = True

    # Text the layout is learnt from (the walk over it takes about 10 ms), and the least a
    # first batch must have for it (smaller batches are matched with the table as built).
    LAYOUT_SAMPLE = 2_000_000
    LAYOUT_MIN = 250_000

    def normalise(self, texts: Sequence[str], *, normalised: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(buffer, starts, ends): each text's normalised UTF-8 bytes in ``buffer`` (the texts'
        own bytes when they are ``normalised`` already)."""
        if normalised:
            array = pa.array(texts, type=pa.large_string())
            offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[: len(texts) + 1]
            data = array.buffers()[2]
            return (np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)), offsets[:-1], offsets[1:]
        texts = texts if isinstance(texts, list) else list(texts)
        if not texts:
            return np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        t = self.tables
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=offsets[1:])
        out, starts, ends, win_doc, win_lo, win_hi, win_out = _normalise_kernel(
            "".join(texts), offsets, t.simple, t.info, t.rep_off, t.rep_bytes, t.check
        )
        if win_doc.shape[0]:  # windows where characters compose or reorder: unicodedata's image, spliced in
            images = [image.encode("utf-8", "surrogatepass") for image in self._window_images(texts, win_doc, win_lo, win_hi)]
            img_off = np.zeros(len(images) + 1, dtype=np.int64)
            img_off[1:] = np.cumsum([len(b) for b in images])
            img_bytes = np.frombuffer(b"".join(images), dtype=np.uint8)
            spliced, d_starts, d_ends = _splice_kernel(out, starts, ends, win_doc, win_out, img_bytes, img_off)
            docs = np.unique(win_doc)  # ascending, as the kernel met them
            starts[docs] = out.shape[0] + d_starts
            ends[docs] = out.shape[0] + d_ends
            out = np.concatenate((out, spliced))
        return out, starts, ends

    def _window_images(self, texts: list[str], win_doc: np.ndarray, win_lo: np.ndarray, win_hi: np.ndarray) -> list[str]:
        """The normalised image of each window, from one call over all of them joined by U+0000:
        a character that normalises and casefolds to itself and composes or reorders with
        nothing, so the joined image is the images joined (two microseconds a window saved).
        Where a window holds a U+0000 itself, each window is normalised alone."""
        windows = [texts[d][lo:hi] for d, lo, hi in zip(win_doc.tolist(), win_lo.tolist(), win_hi.tolist())]
        images = self.normalise_one("\0".join(windows)).split("\0")
        if len(images) != len(windows):
            images = [self.normalise_one(w) for w in windows]
        return images

    def find(self, texts: Sequence[str], *, normalised: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(doc, pattern, rule bits) arrays: each pattern found in each document, once, with the
        rules (:data:`RULE_BITS`) that one of its occurrences satisfies (0: none)."""
        buf, starts, ends = self.normalise(texts, normalised=normalised)
        if not self.laid_out and buf.shape[0] >= self.LAYOUT_MIN:
            self.lay_out(buf, starts, ends)
        table, term, dict_link, byte_class = self.automaton
        return _scan_kernel(buf, starts, ends, byte_class, table, self.stride, term, dict_link,
                            self.per_byte, self.pat_len, self.pat_rules, self.tables.word)
