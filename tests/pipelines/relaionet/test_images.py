"""reLAIONet image layer: decoding and checks on files made here with Pillow, perceptual hashes,
near-duplicate search against brute force, dedupe, and a smoke run of the benchmark."""

from __future__ import annotations

import io
import json
import math
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile, ImageFilter

from pipelines.relaionet import images
from pipelines.relaionet.images import (
    REJECT_REASONS,
    Duplicate,
    against_reference,
    check_image,
    dedupe,
    dhash_batch,
    hamming,
    hash_input,
    near_duplicates,
    phash_batch,
    to_rgb,
)

REPO = Path(__file__).resolve().parents[3]


def encode(im: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A photo-like RGB image: coloured background, a few blurred ellipses and rectangles."""
    rng = random.Random(seed)
    w, h = size
    im = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    for k in range(7):
        x, y = rng.randrange(w), rng.randrange(h)
        box = [x, y, x + rng.randrange(w // 8, w // 2), y + rng.randrange(h // 8, h // 2)]
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if k % 2 else draw.rectangle)(box, fill=colour)
    return im.filter(ImageFilter.GaussianBlur(2))


def decoded(check) -> Image.Image:
    return Image.open(io.BytesIO(check.data))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(width: int, height: int, *, bit_depth: int = 8, rows: bool = False) -> bytes:
    """A greyscale PNG declaring width x height. rows=False: no pixel data at all (header only);
    rows=True: every row present, all zero, compressed without materialising the image."""
    idat = zlib.compressobj(9)
    body = b""
    if rows:
        row = bytes(1 + math.ceil(width * bit_depth / 8))  # filter byte + pixels
        body = b"".join(idat.compress(row) for _ in range(height))
    body += idat.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body)
            + png_chunk(b"IEND", b""))


# --- check_image ------------------------------------------------------------------------------


def test_rgb_jpeg_keeps_its_bytes() -> None:
    data = encode(picture(1), "JPEG", quality=85)
    check = check_image(data)
    assert check.ok and check.reason is None
    assert (check.format, check.mode, check.width, check.height) == ("JPEG", "RGB", 320, 240)
    assert check.data is data and not check.reencoded and not check.flattened
    assert check.hash_input.shape == (32, 32) and check.hash_input.dtype == np.float32


def test_rgb_png_keeps_its_bytes() -> None:
    data = encode(picture(2), "PNG")
    check = check_image(data)
    assert check.ok and check.data is data and not check.reencoded
    assert (check.format, check.mode) == ("PNG", "RGB")


def test_cmyk_jpeg_is_converted_to_rgb_png() -> None:
    im = Image.new("CMYK", (100, 80), (0, 255, 255, 0))  # red
    im.paste((255, 0, 0, 0), (50, 0, 100, 80))  # cyan
    check = check_image(encode(im, "JPEG", quality=95))
    assert check.ok and check.reencoded and check.mode == "CMYK"
    out = decoded(check)
    assert (out.format, out.mode, out.size) == ("PNG", "RGB", (100, 80))
    red, cyan = np.asarray(out)[40, 10].astype(int), np.asarray(out)[40, 90].astype(int)
    assert np.abs(red - [255, 0, 0]).max() <= 8
    assert np.abs(cyan - [0, 255, 255]).max() <= 8


def test_palette_png_with_transparency_is_composited_on_white() -> None:
    im = Image.new("P", (80, 80), 0)
    im.putpalette([0, 0, 0, 200, 30, 40] + [0] * 762)
    im.paste(1, (0, 0, 40, 80))  # left half: palette entry 1, opaque red
    check = check_image(encode(im, "PNG", transparency=0))  # entry 0 is fully transparent
    assert check.ok and check.reencoded and check.flattened and check.mode == "P"
    pixels = np.asarray(decoded(check))
    assert pixels[10, 10].tolist() == [200, 30, 40]
    assert pixels[10, 70].tolist() == [255, 255, 255]


def test_la_png_blends_partial_alpha_with_white() -> None:
    im = Image.new("LA", (64, 64), (0, 128))  # black, half transparent
    check = check_image(encode(im, "PNG"))
    assert check.ok and check.flattened and check.mode == "LA"
    assert np.asarray(decoded(check))[5, 5].tolist() == [127, 127, 127]


def test_opaque_alpha_and_colour_key() -> None:
    opaque = check_image(encode(Image.new("RGBA", (64, 64), (10, 20, 30, 255)), "PNG"))
    assert opaque.ok and opaque.reencoded and not opaque.flattened
    assert np.asarray(decoded(opaque))[0, 0].tolist() == [10, 20, 30]
    keyed = Image.new("RGB", (64, 64), (1, 2, 3))
    keyed.paste((9, 9, 9), (0, 0, 32, 64))
    check = check_image(encode(keyed, "PNG", transparency=(1, 2, 3)))  # a tRNS colour key
    assert check.ok and check.flattened and check.reencoded
    assert np.asarray(decoded(check))[0, 63].tolist() == [255, 255, 255]
    assert np.asarray(decoded(check))[0, 0].tolist() == [9, 9, 9]


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    values = np.zeros((64, 64), dtype=np.uint16)
    values[:, 16:32], values[:, 32:48], values[:, 48:] = 1000, 32896, 65535
    im = Image.fromarray(values)
    assert im.mode == "I;16"
    check = check_image(encode(im, "PNG"))
    assert check.ok and check.reencoded and check.mode.startswith("I")
    row = np.asarray(decoded(check))[0, [0, 20, 40, 60], 0].tolist()
    assert row == [0, 4, 128, 255]  # Pillow's own convert("L") gives [0, 255, 255, 255]


def test_exif_rotation_is_applied_and_the_file_re_encoded() -> None:
    im = Image.new("RGB", (120, 80), (220, 0, 0))
    im.paste((0, 0, 220), (60, 0, 120, 80))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    check = check_image(encode(im, "JPEG", quality=95, exif=exif.tobytes()))
    assert check.ok and check.reencoded
    assert (check.width, check.height) == (80, 120)
    out = np.asarray(decoded(check)).astype(int)
    assert out.shape == (120, 80, 3)
    assert out[5, 40, 0] > 200 and out[115, 40, 2] > 200  # red on top, blue at the bottom


def test_animated_png_is_re_encoded_as_its_first_frame() -> None:
    frames = [Image.new("RGB", (64, 64), c) for c in ((250, 0, 0), (0, 250, 0))]
    check = check_image(encode(frames[0], "PNG", save_all=True, append_images=frames[1:]))
    assert check.ok and check.reencoded
    assert np.asarray(decoded(check))[0, 0].tolist() == [250, 0, 0]


def test_accepted_data_decodes_to_the_reported_size() -> None:
    for data in (encode(picture(3, (300, 200)), "WEBP"), encode(picture(4).convert("L"), "JPEG"),
                 encode(picture(5).quantize(16), "GIF"), encode(picture(6), "BMP")):
        check = check_image(data)
        assert check.ok, check.detail
        assert decoded(check).convert("RGB").size == (check.width, check.height)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_rejects(fmt: str) -> None:
    data = encode(picture(7), fmt)
    for keep in (0.2, 0.5, 0.9):
        check = check_image(data[: int(len(data) * keep)])
        assert check.reason == "truncated", (keep, check.detail)


def test_truncated_jpeg_is_rejected_by_the_reduced_decode_too() -> None:
    data = encode(picture(8, (640, 480)), "JPEG")  # large enough for a 1/2-scale draft decode
    check = check_image(data[:-300])
    assert check.reason == "truncated" and check.format == "JPEG" and check.width == 640


def test_corrupt_and_foreign_bytes() -> None:
    noise = random.Random(0).randbytes(5000)
    assert check_image(noise).reason == "not_an_image"
    assert check_image(b"<html><body>404 Not Found</body></html>").reason == "not_an_image"
    assert check_image(encode(Image.new("RGB", (64, 64)), "ICO")).reason == "not_an_image"  # not accepted
    broken = bytearray(encode(picture(9), "PNG"))
    broken[len(broken) // 2] ^= 0xFF  # a bad IDAT checksum: complete but damaged
    check = check_image(bytes(broken))
    assert check.reason == "corrupt" and check.format == "PNG" and "checksum" in check.detail


def test_empty_and_too_small() -> None:
    assert check_image(b"").reason == "empty"
    tiny = check_image(encode(Image.new("RGB", (32, 32)), "PNG"))
    assert (tiny.reason, tiny.width, tiny.height, tiny.data) == ("too_small", 32, 32, None)
    assert check_image(encode(Image.new("RGB", (32, 32)), "PNG"), min_side=32).ok
    assert check_image(encode(Image.new("RGB", (400, 63)), "JPEG")).reason == "too_small"
    assert set(REJECT_REASONS) == {"empty", "not_an_image", "too_large", "too_small", "truncated", "corrupt"}


def test_decompression_bombs_are_rejected_before_decoding() -> None:
    # 12,000 x 12,000 one-bit pixels, compressed to a few KB: above Pillow's 89 M pixel warning.
    bomb = png_bytes(12_000, 12_000, bit_depth=1, rows=True)
    assert len(bomb) < 100_000
    check = check_image(bomb)
    assert check.reason == "too_large"
    # A caller's higher limit does not lift Pillow's: its warning still rejects.
    raised = check_image(bomb, max_pixels=10**12)
    assert raised.reason == "too_large" and "could be decompression bomb" in raised.detail
    # Header only, absurd sizes: Pillow refuses them when opening.
    for width, height in ((100_000, 100_000), (2**31 - 1, 1)):
        assert check_image(png_bytes(width, height)).reason == "too_large"


def test_the_pixel_limit_is_ours_and_checked_from_the_header() -> None:
    data = png_bytes(2_000, 1_000, rows=True)  # 2 M pixels, valid
    limited = check_image(data, max_pixels=1_000_000)
    assert limited.reason == "too_large" and (limited.width, limited.height) == (2_000, 1_000)
    assert "2,000,000 pixels" in limited.detail
    assert check_image(data).ok
    # Header only: a limit check from the header, so no truncation error is ever reached.
    assert check_image(png_bytes(9_000, 9_000)).reason == "too_large"


def test_refuses_to_run_when_truncated_images_are_allowed(monkeypatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        check_image(encode(picture(10), "JPEG"))


def test_to_rgb_keeps_rgb_and_flags_only_real_transparency() -> None:
    rgb = picture(11)
    assert to_rgb(rgb) == (rgb, False)
    la = Image.new("LA", (8, 8), (50, 255))
    out, flattened = to_rgb(la)
    assert out.mode == "RGB" and not flattened and out.getpixel((0, 0)) == (50, 50, 50)


# --- hashes -------------------------------------------------------------------------------------


def naive_phash(grey: np.ndarray) -> int:
    """The documented algorithm written out with loops, from a 32 x 32 hash input."""
    pixels = grey.astype(float).tolist()
    basis = [[math.cos(math.pi * (2 * x + 1) * u / 64) for x in range(32)] for u in range(9)]
    coefficients = []
    for u in range(1, 9):
        for v in range(1, 9):
            coefficients.append(sum(basis[u][y] * basis[v][x] * pixels[y][x] for y in range(32) for x in range(32)))
    ordered = sorted(coefficients)
    median = (ordered[31] + ordered[32]) / 2
    return sum(1 << (63 - k) for k, c in enumerate(coefficients) if c > median)


def test_phash_follows_the_documented_algorithm() -> None:
    inputs = [hash_input(picture(s)) for s in range(3)]
    assert phash_batch(inputs).tolist() == [naive_phash(x) for x in inputs]
    # PIL images in, any mode: converted with to_rgb first.
    assert phash_batch([picture(0)]).tolist() == [naive_phash(inputs[0])]
    assert phash_batch(np.stack(inputs)).dtype == np.uint64


def test_phash_batch_edge_cases() -> None:
    assert phash_batch([]).shape == (0,) and phash_batch([]).dtype == np.uint64
    with pytest.raises(ValueError, match="32 x 32"):
        phash_batch([np.zeros((16, 16))])
    batch = phash_batch([hash_input(picture(s)) for s in range(4)])
    assert batch.tolist() == [int(phash_batch([hash_input(picture(s))])[0]) for s in range(4)]


def test_phash_is_stable_under_re_encoding_and_small_resizes() -> None:
    worst = 0
    for seed in range(20):
        im = picture(100 + seed, (400, 300))
        base = check_image(encode(im, "PNG")).hash_input
        variants = [check_image(encode(im, "JPEG", quality=q)).hash_input for q in (60, 90)]
        for scale in (0.8, 1.15):
            small = im.resize((round(400 * scale), round(300 * scale)), Image.Resampling.BICUBIC)
            variants.append(check_image(encode(small, "JPEG", quality=85)).hash_input)
        hashes = phash_batch([base, *variants])
        worst = max(worst, int(hamming(hashes[0], hashes[1:]).max()))
    assert worst <= 6


def test_phash_separates_different_images() -> None:
    hashes = phash_batch([check_image(encode(picture(200 + s), "JPEG")).hash_input for s in range(40)])
    distances = hamming(hashes[:, None], hashes[None, :])[np.triu_indices(40, 1)]
    assert distances.mean() >= 20 and distances.min() > 6


def test_dhash_bits_and_stability() -> None:
    ramp = Image.fromarray(np.tile(np.arange(0, 256, 2, dtype=np.uint8), (64, 1)))  # brighter to the right
    assert dhash_batch([ramp]).tolist() == [2**64 - 1]
    assert dhash_batch([ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]).tolist() == [0]
    im = picture(12)
    png, jpeg = check_image(encode(im, "PNG")), check_image(encode(im, "JPEG", quality=70))
    a, b = dhash_batch([png.hash_input, jpeg.hash_input])
    assert int(hamming(a, b)) <= 8


def test_hamming_and_the_table_popcount_agree() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2**64, 1000, dtype=np.uint64), rng.integers(0, 2**64, 1000, dtype=np.uint64)
    expected = [bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b, strict=True)]
    assert hamming(a, b).tolist() == expected
    assert images._popcount_table(a ^ b).tolist() == expected
    assert int(hamming(0, 2**64 - 1)) == 64


# --- near-duplicates ------------------------------------------------------------------------------


def planted_hashes(n: int, copies: int, seed: int) -> np.ndarray:
    """n random hashes, `copies` of which are replaced by a random earlier-or-later one with 0..10
    bits flipped; plus a run of exact copies."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, n, dtype=np.uint64)
    targets = rng.choice(n, copies, replace=False)
    for t in targets:
        flips = rng.choice(64, rng.integers(0, 11), replace=False)
        hashes[t] = hashes[rng.integers(n)] ^ np.uint64(sum(1 << int(f) for f in flips))
    hashes[:5] = hashes[5]
    return hashes


def brute_force(a: np.ndarray, b: np.ndarray | None, threshold: int) -> list[tuple[int, int, int]]:
    distances = hamming(a[:, None], (a if b is None else b)[None, :]).astype(int)
    hit = distances <= threshold
    if b is None:
        hit &= np.triu(np.ones_like(hit), 1).astype(bool)
    i, j = np.nonzero(hit)
    return list(zip(i.tolist(), j.tolist(), distances[i, j].tolist(), strict=True))


@pytest.mark.parametrize("threshold", [0, 3, 6, 9, 12])
def test_near_duplicates_equal_brute_force(threshold: int) -> None:
    hashes = planted_hashes(3000, 300, seed=threshold)
    expected = brute_force(hashes, None, threshold)
    assert len(expected) > 5 * (threshold > 0)
    assert near_duplicates(hashes, threshold) == expected
    assert near_duplicates(hashes, threshold, method="mih") == expected
    assert near_duplicates(hashes, threshold, method="brute") == expected


@pytest.mark.parametrize("threshold", [2, 8, 11])
def test_against_reference_equals_brute_force(threshold: int) -> None:
    reference = planted_hashes(2000, 0, seed=1)
    rng = np.random.default_rng(2)
    query = rng.integers(0, 2**64, 1500, dtype=np.uint64)
    query[::10] = reference[rng.choice(2000, 150)] ^ np.uint64(0b1011 << 20)  # 3 bits off
    expected = brute_force(query, reference, threshold)
    assert len(expected) >= 150 * (threshold >= 3)
    for method in ("auto", "mih", "brute"):
        assert against_reference(query, reference, threshold, method=method) == expected


def test_small_chunks_give_the_same_pairs(monkeypatch) -> None:
    hashes = planted_hashes(1500, 200, seed=3)
    expected = near_duplicates(hashes, 5)
    monkeypatch.setattr(images, "_CHUNK_PAIRS", 7)
    assert near_duplicates(hashes, 5) == expected
    assert near_duplicates(hashes, 12) == brute_force(hashes, None, 12)


def test_near_duplicates_input_checks() -> None:
    hashes = planted_hashes(200, 20, seed=4)
    assert near_duplicates(hashes.view(np.int64), 4) == near_duplicates(hashes, 4)  # int64 columns
    assert near_duplicates([], 4) == [] and near_duplicates(hashes[:1], 4) == []
    for bad in (-1, 64):
        with pytest.raises(ValueError, match="threshold"):
            near_duplicates(hashes, bad)
    with pytest.raises(ValueError, match="1-D"):
        near_duplicates(hashes.reshape(10, 20), 4)
    with pytest.raises(ValueError, match="method"):
        near_duplicates(hashes, 4, method="lsh")


# --- dedupe --------------------------------------------------------------------------------------


def greedy_reference(hashes: np.ndarray, ids: list, threshold: int) -> tuple[list, list]:
    """dedupe's rule, one image at a time against every kept one."""
    kept: list[int] = []
    removed = []
    for k in sorted(range(len(ids)), key=ids.__getitem__):
        near = [(ids[m], int(hamming(hashes[k], hashes[m]))) for m in kept]
        near = [(i, d) for i, d in near if d <= threshold]
        if near:
            removed.append(Duplicate(ids[k], *min(near)))
        else:
            kept.append(k)
    return [ids[k] for k in kept], removed


def test_dedupe_matches_the_greedy_rule_and_ignores_input_order() -> None:
    hashes = planted_hashes(600, 150, seed=5)
    ids = [f"img-{k:04d}" for k in random.Random(6).sample(range(10_000), 600)]
    expected = greedy_reference(hashes, ids, 6)
    assert expected[1]
    result = dedupe(hashes, ids, 6)
    assert (result.kept, result.removed) == expected
    perm = np.random.default_rng(7).permutation(600)
    assert dedupe(hashes[perm], [ids[k] for k in perm], 6) == result


def test_dedupe_compares_with_kept_images_only() -> None:
    a = 0
    b = a ^ 0b111  # 3 bits from a
    c = b ^ (0b111 << 8)  # 3 bits from b, 6 from a
    kept, removed = dedupe(np.array([c, a, b], dtype=np.uint64), ["c", "a", "b"], 4)
    assert kept == ["a", "c"] and removed == [Duplicate("b", "a", 3)]


def test_dedupe_exact_copies() -> None:
    x, near = 0xF0F0, 0xF0F0 ^ 1
    hashes = np.array([near, x, x, near, x, 2**63], dtype=np.uint64)
    ids = [1, 0, 3, 2, 5, 4]
    kept, removed = dedupe(hashes, ids, 2)
    assert kept == [0, 4]
    assert removed == [Duplicate(1, 0, 1), Duplicate(2, 0, 1), Duplicate(3, 0, 0), Duplicate(5, 0, 0)]
    assert dedupe(np.full(5000, 7, dtype=np.uint64), list(range(5000)), 3).kept == [0]


def test_dedupe_input_checks() -> None:
    with pytest.raises(ValueError, match="unique"):
        dedupe(np.zeros(2, dtype=np.uint64), ["a", "a"], 3)
    with pytest.raises(ValueError, match="ids for"):
        dedupe(np.zeros(2, dtype=np.uint64), ["a"], 3)
    assert dedupe(np.zeros(0, dtype=np.uint64), [], 3) == ([], [])


# --- benchmark ----------------------------------------------------------------------------------


def test_bench_runs_on_200_images(tmp_path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "relaionet_images.py"), "--images", "200",
                          "--naive", "10", "--json", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["images"] == 200 and result["accepted"] == 200
    assert result["images_per_second"] > 0 and result["naive_images_per_second"] > 0
    assert result["pure_python_dct_equal"] == result["naive_images"] == 10
    assert result["near_duplicates"]["same_as_brute_force"] is True
    assert "PASS" in run.stdout or "MISS" in run.stdout
