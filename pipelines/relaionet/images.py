"""reLAIONet image layer: decode and check downloaded images, perceptual hashes, near-duplicates.

Three jobs, all pure functions over bytes and numpy arrays (no I/O, no pipeline wiring):

* ``check_image`` decodes one file safely (allowed formats only, a pixel limit enforced before any
  pixel is decoded, truncated files rejected), records what the file is and returns the bytes to
  store: the original when it already is an upright, opaque RGB JPEG or PNG, else a lossless PNG of
  its RGB conversion. It also returns the 32 x 32 luma image the perceptual hash is computed from.
* ``phash_batch`` / ``dhash_batch`` hash many images at once (one matrix product for the DCT of a
  whole batch); ``hamming`` counts differing bits.
* ``near_duplicates`` / ``against_reference`` find pairs of hashes within a Hamming distance by
  multi-index hashing (exact, not approximate); ``dedupe`` keeps the first image of each group.

Hash format: an unsigned 64-bit integer (``np.uint64``); bit 63 (the most significant) is the first
coefficient in the order the docstrings give.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

REJECT_REASONS = ("empty", "not_an_image", "too_large", "too_small", "truncated", "corrupt")
DEFAULT_MIN_SIDE = 64
# 40 megapixels (8000 x 5000) decodes to 120 MB of RGB; Pillow's own bomb warning starts at 89.5 M.
DEFAULT_MAX_PIXELS = 40_000_000
# Formats Image.open may try (JPEG's opener also reads MPO). Excludes formats whose plugins shell
# out (EPS runs Ghostscript) or that no photo crawl needs; anything else is `not_an_image`.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# An MPO file (JPEG with extra "multi-picture" frames) starts with a plain JPEG that every JPEG
# decoder reads, so it is kept as it is like a JPEG.
_JPEG_FORMATS = ("JPEG", "MPO")
_KEPT_FORMATS = ("JPEG", "MPO", "PNG")
_GREY16_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")
_WHITE = (255, 255, 255, 255)
HASH_INPUT_SIDE = 32
# RGB JPEGs are decoded for the hash at the smallest DCT scale (1/2, 1/4, 1/8) that keeps both
# sides >= 128: 4x the hash input keeps hashes within a bit or two of a full decode's, at a sixth
# of the time for a 640 x 480 photo.
_DRAFT_SIDE = 128
# EXIF orientation -> the transpose that makes the pixels upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True, eq=False)
class ImageCheck:
    """What ``check_image`` found. ``reason is None`` means accepted.

    ``format``/``mode``: Pillow's names for the file as stored (``mode`` before any conversion:
    RGB, CMYK, P, LA, I;16, ...), set whenever the header could be read. ``width``/``height``: the
    image as displayed, i.e. after its EXIF orientation (90-degree rotations swap them).
    Accepted only: ``data`` is what to store (the input itself when ``reencoded`` is False, else a
    PNG of the RGB image); ``flattened`` says transparent pixels were composited on white;
    ``hash_input`` is the (32, 32) float32 luma image that ``phash_batch`` takes.
    """

    reason: str | None
    detail: str = ""
    format: str | None = None
    mode: str | None = None
    width: int | None = None
    height: int | None = None
    data: bytes | None = None
    reencoded: bool = False
    flattened: bool = False
    hash_input: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def check_image(data: bytes, *, min_side: int = DEFAULT_MIN_SIDE, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageCheck:
    """Decode ``data`` safely and say whether it is a usable image; never raises for bad input.

    Checks, in this order (the first failure is the reason): ``empty`` (no bytes);
    ``not_an_image`` (no accepted format recognises the header); ``too_large`` (width x height
    above ``max_pixels``, or above Pillow's own ``Image.MAX_IMAGE_PIXELS``, whose
    DecompressionBombWarning counts as a reject too: both are decided from the header, before
    decoding); ``too_small`` (the shorter side below ``min_side``); ``truncated`` (the data ends
    before the image does); ``corrupt`` (the header is fine, the pixel data is not). The file is
    checked with ``verify()`` and then decoded in full with ``load()``: a truncated file is
    never padded (``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False; this function raises
    RuntimeError when something in the process has set it, since truncated files would pass).

    Accepted images keep their original bytes when the file is an RGB JPEG (or MPO) or PNG with no
    transparency, a single frame and no EXIF rotation: every decoder then shows the same pixels.
    Anything else is converted by ``to_rgb``, turned upright, and stored as a lossless PNG (no ICC
    profile, no EXIF). RGB JPEGs are decoded for the hash at reduced size (libjpeg DCT scaling,
    ``draft``), which still reads every byte, so truncation is still detected.

    Uses ``warnings.catch_warnings``, which is not thread-safe: call from one thread per process.
    """
    if not data:
        return ImageCheck("empty", "0 bytes")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process, so truncated images would "
            "decode as padded images; check_image needs it False (find what sets it and unset it)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _check(bytes(data), min_side, max_pixels)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            return ImageCheck("too_large", str(exc))


def _open(data: bytes) -> ImageFile.ImageFile:
    return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)


def _check(data: bytes, min_side: int, max_pixels: int) -> ImageCheck:
    fmt = mode = None
    try:
        im = _open(data)
        fmt, mode, (width, height) = im.format, im.mode, im.size
        if width * height > max_pixels:
            return ImageCheck("too_large", f"{width} x {height} = {width * height:,} pixels > {max_pixels:,}",
                              fmt, mode, width, height)
        if min(width, height) < min_side:
            return ImageCheck("too_small", f"{width} x {height}: a side is under {min_side} pixels",
                              fmt, mode, width, height)
        # Read before verify(), which leaves the image unusable.
        plain = "transparency" not in im.info and not (fmt == "PNG" and getattr(im, "is_animated", False))
        im.verify()
        keep = fmt in _KEPT_FORMATS and mode == "RGB" and plain
        im = _open(data)
        if keep and fmt in _JPEG_FORMATS:
            im.draft("RGB", (_DRAFT_SIDE, _DRAFT_SIDE))
        im.load()
        orientation = _orientation(im)
        if keep and orientation == 1:
            return ImageCheck(None, format=fmt, mode=mode, width=width, height=height, data=data,
                              hash_input=hash_input(im))
        if im.size != (width, height):  # the reduced decode of a rotated JPEG: the PNG needs full size
            im = _open(data)
            im.load()
        rgb, flattened = to_rgb(im)
        if orientation in _UPRIGHT:
            rgb = rgb.transpose(_UPRIGHT[orientation])
        out = io.BytesIO()
        rgb.save(out, "PNG")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise
    except UnidentifiedImageError:
        # not str(exc): Pillow names the buffer object by its memory address, which would make
        # the rejects (and so the stage) differ from run to run
        return ImageCheck("not_an_image", f"cannot identify the image (not one of {', '.join(ACCEPTED_FORMATS)})")
    # Pillow signals bad input with many exception types (OSError, SyntaxError, EOFError,
    # ValueError, struct.error, zlib.error, ...): any of them is a reject, never a crash.
    except Exception as exc:  # noqa: BLE001
        detail = f"{type(exc).__name__}: {exc}"
        if fmt is None:
            cut_short = _is_truncation(exc) or _webp_cut_short(data)
            return ImageCheck("truncated" if cut_short else "not_an_image", detail)
        return ImageCheck("truncated" if _is_truncation(exc) else "corrupt", detail, fmt, mode, width, height)
    return ImageCheck(None, format=fmt, mode=mode, width=rgb.width, height=rgb.height, data=out.getvalue(),
                      reencoded=True, flattened=flattened, hash_input=hash_input(rgb))


def _is_truncation(exc: Exception) -> bool:
    # Pillow's messages: "image file is truncated (N bytes not processed)", "Truncated File Read".
    return isinstance(exc, EOFError) or "truncated" in str(exc).lower()


def _webp_cut_short(data: bytes) -> bool:
    """A RIFF/WEBP file shorter than its header says (Pillow's WebP opener fails on it with a bare
    "could not create decoder object")."""
    return (len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"
            and int.from_bytes(data[4:8], "little") + 8 > len(data))


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 = upright); a malformed EXIF block counts as upright."""
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 -- a bad EXIF block is not a reason to reject the pixels
        return 1
    return value if value in _UPRIGHT else 1


def to_rgb(im: Image.Image) -> tuple[Image.Image, bool]:
    """Convert a decoded image to RGB; returns ``(rgb, flattened)``.

    * Transparency (an alpha channel: RGBA, LA, PA; or a transparent colour or palette entries,
      ``info["transparency"]``) is composited on white, the background a page shows; ``flattened``
      is True when some pixel was not fully opaque. An alpha channel that is opaque everywhere is
      dropped.
    * CMYK uses Pillow's conversion (R = (255 - C)(255 - K) / 255, ...; Adobe's inverted CMYK
      JPEGs are un-inverted by the decoder). Embedded ICC profiles are not applied.
    * 16-bit greyscale (I;16*, and I, taken as 16-bit) is scaled by 255/65535; Pillow's own
      conversion would clip everything above 255 to white. A 16-bit transparent grey is honoured.
    * Everything else (L, 1, P, YCbCr, LAB, F, ...) uses Pillow's conversion.
    """
    if im.mode in _GREY16_MODES:
        values = np.asarray(im)
        grey = Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8))
        key = im.info.get("transparency")
        if isinstance(key, int):
            alpha = Image.fromarray(np.where(values == key, 0, 255).astype(np.uint8))
            im = Image.merge("LA", (grey, alpha))
        else:
            im = grey
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] == 255:
            return rgba.convert("RGB"), False
        return Image.alpha_composite(Image.new("RGBA", im.size, _WHITE), rgba).convert("RGB"), True
    return (im if im.mode == "RGB" else im.convert("RGB")), False


def hash_input(im: Image.Image) -> np.ndarray:
    """The (32, 32) float32 image the hashes start from: luma (ITU-R 601-2, Pillow's "L" weights,
    in floating point) averaged over boxes (Pillow's BOX filter) down to 32 x 32, aspect ignored."""
    return np.asarray(im.convert("F").resize((HASH_INPUT_SIDE, HASH_INPUT_SIDE), Image.Resampling.BOX),
                      dtype=np.float32)


def _dct_rows(n: int, rows: range) -> np.ndarray:
    """Rows of the DCT-II basis of length n (unnormalised: every row used here has the same scale)."""
    k = np.asarray(rows, dtype=np.float64)[:, None]
    return np.cos(np.pi * (2 * np.arange(n) + 1)[None, :] * k / (2 * n))


# Frequencies 1..8 on each axis: the 8 x 8 block of lowest frequencies without row 0 and column 0
# (the DC term and the pure horizontal / vertical averages), as the reference pHash (phash.org).
_PHASH_DCT = _dct_rows(HASH_INPUT_SIDE, range(1, 9))


def _hash_inputs(images: Sequence[Image.Image | np.ndarray] | np.ndarray) -> np.ndarray:
    """Stack images (PIL images of any mode, or (32, 32) arrays from ``hash_input``) as (n, 32, 32)."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        stack = images
    else:
        stack = np.stack([hash_input(to_rgb(x)[0]) if isinstance(x, Image.Image) else np.asarray(x)
                          for x in images]) if len(images) else np.empty((0, HASH_INPUT_SIDE, HASH_INPUT_SIDE))
    if stack.shape[1:] != (HASH_INPUT_SIDE, HASH_INPUT_SIDE):
        raise ValueError(f"hash inputs must be {HASH_INPUT_SIDE} x {HASH_INPUT_SIDE}, got {stack.shape[1:]}")
    return stack.astype(np.float64, copy=False)


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """(n, 64) booleans -> (n,) uint64, the first column in bit 63."""
    return np.packbits(bits, axis=1).view(">u8")[:, 0].astype(np.uint64)


def phash_batch(images: Sequence[Image.Image | np.ndarray] | np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes, one per image, as a (n,) uint64 array.

    Algorithm: the 32 x 32 luma image of ``hash_input`` (PIL images are first converted with
    ``to_rgb``); its 2-D DCT-II; the 64 coefficients of frequencies 1..8 vertically x 1..8
    horizontally (the low-frequency 8 x 8 block without the DC row and column); bit set where a
    coefficient is strictly above the median of the 64. Bit 63 holds frequency (1, 1), then row
    by row: (1, 2) ... (1, 8), (2, 1) ... (8, 8) in bit 0. The batch's DCT is two matrix products.
    """
    x = _hash_inputs(images)
    coefficients = (_PHASH_DCT @ x @ _PHASH_DCT.T).reshape(len(x), 64)
    return _pack_bits(coefficients > np.median(coefficients, axis=1, keepdims=True))


def dhash_batch(images: Sequence[Image.Image | np.ndarray] | np.ndarray) -> np.ndarray:
    """64-bit difference hashes, (n,) uint64: the 32 x 32 hash input averaged down to 9 x 8
    (BOX filter), bit set where a pixel is brighter than its left neighbour; row by row from
    the top, bit 63 first. Cheaper and less robust than pHash; a second opinion on a match."""
    x = _hash_inputs(images)
    small = np.stack([np.asarray(Image.fromarray(v.astype(np.float32)).resize((9, 8), Image.Resampling.BOX))
                      for v in x]) if len(x) else np.empty((0, 8, 9))
    return _pack_bits((small[:, :, 1:] > small[:, :, :-1]).reshape(len(x), 64))


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount_table(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64 through a 256-entry byte table (numpy < 2 has no bitwise_count)."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    return _BYTE_POPCOUNT[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)


_popcount = getattr(np, "bitwise_count", _popcount_table)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Number of differing bits between uint64 hashes, elementwise with broadcasting (uint8)."""
    return _popcount(np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)))


def _as_hashes(values: np.ndarray | Sequence[int], name: str) -> np.ndarray:
    # int64 columns (e.g. parquet without unsigned types) hold the same bits: the cast wraps.
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a 1-D array of 64-bit integer hashes, got {arr.dtype} {arr.shape}")
    return arr.astype(np.uint64, copy=False)


def _check_threshold(threshold: int) -> int:
    if not 0 <= int(threshold) < 64:
        raise ValueError(f"threshold must be between 0 and 63 bits, got {threshold}")
    return int(threshold)


def _bands(threshold: int) -> list[tuple[int, int]]:
    """Split the 64 bits into threshold + 1 contiguous bands (shift, width), widths differing by at
    most one: two hashes within ``threshold`` bits agree exactly on at least one band."""
    count = threshold + 1
    widths = [64 // count + (1 if b < 64 % count else 0) for b in range(count)]
    shifts = np.concatenate([[0], np.cumsum(widths)[:-1]]).tolist()
    return list(zip(shifts, widths, strict=True))


def _band_keys(hashes: np.ndarray, shift: int, width: int) -> np.ndarray:
    return (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)


# Multi-index hashing stops paying once bands are so short that many pairs share one: candidates
# per pair ~ (threshold + 1) * 2**-(64 // (threshold + 1)) for uniform hashes (0.16 at threshold
# 9, 0.34 at 10, where comparing every pair, blockwise, is as fast).
_MAX_BAND_COLLISION_RATE = 0.25
_CHUNK_PAIRS = 1 << 22  # candidate pairs materialised at once (bounds memory on skewed data)


def _mih_worthwhile(threshold: int) -> bool:
    count = threshold + 1
    return count * 2.0 ** -(64 // count) <= _MAX_BAND_COLLISION_RATE


def _expand(rows: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs (rows[k], starts[k] + o) for o in 0..counts[k]-1, as index arrays in chunks of about
    ``_CHUNK_PAIRS`` pairs."""
    nonzero = counts > 0
    rows, starts, counts = rows[nonzero], starts[nonzero], counts[nonzero]
    ends = np.cumsum(counts)
    lo = 0
    while lo < len(counts):
        before = ends[lo] - counts[lo]
        hi = max(lo + 1, int(np.searchsorted(ends, before + _CHUNK_PAIRS, side="right")))
        c = counts[lo:hi]
        offsets = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        yield np.repeat(rows[lo:hi], c), np.repeat(starts[lo:hi], c) + offsets
        lo = hi


def _within_candidates(keys: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Index pairs (i, j), i != j unordered, of equal keys."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    positions = np.arange(len(keys))
    counts = np.searchsorted(ordered, ordered, side="right") - positions - 1
    for a, b in _expand(positions, positions + 1, counts):
        yield order[a], order[b]


def _cross_candidates(keys: np.ndarray, ref_keys: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Index pairs (i into keys, j into ref_keys) of equal keys."""
    order = np.argsort(ref_keys, kind="stable")
    ordered = ref_keys[order]
    left = np.searchsorted(ordered, keys, side="left")
    counts = np.searchsorted(ordered, keys, side="right") - left
    for a, b in _expand(np.arange(len(keys)), left, counts):
        yield a, order[b]


def _brute_pairs(hashes: np.ndarray, ref: np.ndarray | None, threshold: int) -> tuple[np.ndarray, ...]:
    """All pairs within threshold by comparing every pair, in row blocks (ref None: within hashes,
    i < j). Exact; the fallback for large thresholds and the benchmark's baseline."""
    other = hashes if ref is None else ref
    block = max(1, _CHUNK_PAIRS // max(1, len(other)))
    found: list[tuple[np.ndarray, ...]] = []
    for lo in range(0, len(hashes), block):
        hi = min(len(hashes), lo + block)
        first = lo + 1 if ref is None else 0  # within a set, only columns right of the block's first row
        distances = hamming(hashes[lo:hi, None], other[None, first:])
        hit = distances <= threshold
        if ref is None:
            hit &= np.arange(first, len(other))[None, :] > np.arange(lo, hi)[:, None]
        r, c = np.nonzero(hit)
        found.append((r + lo, c + first, distances[r, c]))
    return _concat(found)


def _concat(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint8)
    i, j, d = (np.concatenate(column) for column in zip(*parts, strict=True))
    return i.astype(np.int64), j.astype(np.int64), d.astype(np.uint8)


def _mih_pairs(hashes: np.ndarray, ref: np.ndarray | None, threshold: int) -> tuple[np.ndarray, ...]:
    """As ``_brute_pairs``, by multi-index hashing: candidates agree exactly on one band; each is
    checked exactly; pairs found in several bands are reported once. Sorted by (i, j)."""
    other = hashes if ref is None else ref
    found: list[tuple[np.ndarray, ...]] = []
    for shift, width in _bands(threshold):
        keys = _band_keys(hashes, shift, width)
        if ref is None:
            candidates = _within_candidates(keys)
        else:
            candidates = _cross_candidates(keys, _band_keys(ref, shift, width))
        for i, j in candidates:
            if ref is None:
                i, j = np.minimum(i, j), np.maximum(i, j)
            d = hamming(hashes[i], other[j])
            near = d <= threshold
            found.append((i[near], j[near], d[near]))
    i, j, d = _concat(found)
    _, first = np.unique(i * len(other) + j, return_index=True)
    return i[first], j[first], d[first]


SEARCH_METHODS = ("auto", "mih", "brute")


def _pairs(hashes: np.ndarray, ref: np.ndarray | None, threshold: int, method: str = "auto") -> tuple[np.ndarray, ...]:
    if method not in SEARCH_METHODS:
        raise ValueError(f"method must be one of {', '.join(SEARCH_METHODS)}, got {method!r}")
    if method == "mih" or (method == "auto" and _mih_worthwhile(threshold)):
        return _mih_pairs(hashes, ref, threshold)
    return _brute_pairs(hashes, ref, threshold)


def _as_list(pairs: tuple[np.ndarray, ...]) -> list[tuple[int, int, int]]:
    i, j, d = pairs
    return list(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))


def near_duplicates(hashes: np.ndarray | Sequence[int], threshold: int, *,
                    method: str = "auto") -> list[tuple[int, int, int]]:
    """Every pair of positions ``(i, j, distance)``, ``i < j``, whose hashes differ in at most
    ``threshold`` bits, sorted by (i, j). Exact: the same pairs as comparing all of them.

    Multi-index hashing: the 64 bits are cut into ``threshold + 1`` bands; two hashes within
    ``threshold`` bits agree on some band (pigeonhole), so only pairs that share a band value are
    compared. Cost grows with the pairs that share a band, not with n^2: 20,000 uniform hashes
    at threshold 6 (7 bands of 9-10 bits) need about 3 M comparisons instead of 200 M. From
    threshold 10 on the bands stop pruning and every pair is compared, blockwise. Many
    copies of one hash make the output itself quadratic; ``dedupe`` collapses them first.
    ``method``: "auto" (as above), "mih" or "brute" (every pair) to force one; same result.
    Raises ValueError for a threshold outside 0..63 or hashes that are not 1-D integers.
    """
    threshold = _check_threshold(threshold)
    return _as_list(_pairs(_as_hashes(hashes, "hashes"), None, threshold, method))


def against_reference(hashes: np.ndarray | Sequence[int], reference_hashes: np.ndarray | Sequence[int],
                      threshold: int, *, method: str = "auto") -> list[tuple[int, int, int]]:
    """Every ``(i, j, distance)`` with ``hashes[i]`` within ``threshold`` bits of
    ``reference_hashes[j]`` (e.g. candidate images against ImageNet's), sorted by (i, j). Same
    method and guarantees as ``near_duplicates``."""
    threshold = _check_threshold(threshold)
    ref = _as_hashes(reference_hashes, "reference_hashes")
    return _as_list(_pairs(_as_hashes(hashes, "hashes"), ref, threshold, method))


class Duplicate(NamedTuple):
    id: Hashable
    duplicate_of: Hashable
    distance: int


class Deduplicated(NamedTuple):
    kept: list[Hashable]
    removed: list[Duplicate]


def dedupe(hashes: np.ndarray | Sequence[int], ids: Sequence[Hashable], threshold: int) -> Deduplicated:
    """Keep one image per group of near-duplicates; returns ``(kept, removed)``.

    Images are visited in ascending id order (not input order: shuffled or re-partitioned input
    gives the same answer). An image is removed when an already kept image lies within
    ``threshold`` bits; it records the first such kept image (in id order) and their distance.
    Comparing only with kept images means no chains: A kept, B removed as near A, C near B but
    far from A is kept. ``kept`` is in id order, ``removed`` too. Ids must be unique and mutually
    orderable (ValueError otherwise). Identical hashes are grouped before the pair search, so
    thousands of copies of one placeholder image cost no more than one.
    """
    threshold = _check_threshold(threshold)
    values = _as_hashes(hashes, "hashes")
    if len(ids) != len(values):
        raise ValueError(f"{len(ids)} ids for {len(values)} hashes")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    order = sorted(range(len(ids)), key=ids.__getitem__)
    ranked = values[order]
    # Distinct hashes, numbered by their first appearance in id order.
    unique, first, inverse = np.unique(ranked, return_index=True, return_inverse=True)
    by_first = np.argsort(first)
    number = np.empty_like(by_first)
    number[by_first] = np.arange(len(by_first))
    item_number = number[inverse.reshape(-1)]
    first_rank = first[by_first]

    earlier, later, distance = _pairs(unique[by_first], None, threshold)  # earlier < later
    # Within a later hash, earlier ones ascending: the first kept one found is the earliest.
    sequence = np.lexsort((earlier, later))
    kept = np.ones(len(by_first), dtype=bool)
    target = np.full(len(by_first), -1, dtype=np.int64)
    target_distance = np.zeros(len(by_first), dtype=np.int64)
    for late, early, d in zip(later[sequence].tolist(), earlier[sequence].tolist(),
                              distance[sequence].tolist(), strict=True):
        if kept[late] and kept[early]:  # `early` is final: its own pairs came before
            kept[late], target[late], target_distance[late] = False, early, d

    kept_ids: list[Hashable] = []
    removed: list[Duplicate] = []
    for rank, u in enumerate(item_number.tolist()):
        item_id = ids[order[rank]]
        if rank == first_rank[u]:
            if kept[u]:
                kept_ids.append(item_id)
            else:
                removed.append(Duplicate(item_id, ids[order[first_rank[target[u]]]], int(target_distance[u])))
        elif kept[u]:  # a later copy of a kept hash
            removed.append(Duplicate(item_id, ids[order[first_rank[u]]], 0))
        else:  # a later copy of a removed hash: the same earliest kept image
            removed.append(Duplicate(item_id, ids[order[first_rank[target[u]]]], int(target_distance[u])))
    return Deduplicated(kept_ids, removed)
