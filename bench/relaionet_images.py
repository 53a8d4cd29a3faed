"""Benchmark: reLAIONet image checks (decode + check + pHash) per core, and near-duplicate search.

    python bench/relaionet_images.py                  # 20,000 images
    python bench/relaionet_images.py --images 2000    # quick look
    python bench/relaionet_images.py --naive 500      # a larger subsample for the naive baseline

Images (deterministic, seeded; generated in chunks of 500 and not timed): RGB JPEGs of 256 to
640 px a side (quality 70-95), a colour gradient, 3-8 filled shapes and Gaussian-like noise from a
seeded tile; 2% are near copies of an earlier image (resized by 0.85-1.15 and re-encoded), so the
near-duplicate search has something to find.

Timed, on one thread (OMP/OPENBLAS/MKL threads set to 1 before numpy loads; Pillow decodes on the
calling thread): ``check_image`` on every image, then ``phash_batch`` per chunk. Naive baseline,
on an evenly spaced subsample, extrapolated: the same verify and full-size decode with Pillow, then
a pure-Python pHash (the DCT coefficients as nested loops over lists). Its hashes are compared with
``phash_batch`` on the same inputs (they must be equal) and with ours (ours decode JPEGs at reduced
size, so a bit or two may differ). Target (the issue): >= 300 images/s per core.

Near-duplicate search over all the hashes: ``near_duplicates`` (multi-index hashing) against
``method="brute"`` (every pair, blockwise numpy popcount); both must return the same pairs.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import PIL  # noqa: E402
from PIL import Image, ImageChops, ImageDraw  # noqa: E402

from pipelines.relaionet.images import check_image, hamming, hash_input, near_duplicates, phash_batch  # noqa: E402

TARGET_PER_SECOND = 300
CHUNK = 500
SEED = 20_260_314
COPY_SHARE = 0.02
NOISE = 1024  # side of the seeded noise tile that images crop from


def noise_tile() -> Image.Image:
    rng = np.random.default_rng(SEED)
    values = np.clip(rng.normal(128, 10, (NOISE, NOISE, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(values)


def draw_image(k: int, tile: Image.Image) -> Image.Image:
    """Image number k: the same pixels on every run."""
    rng = np.random.default_rng([SEED, k])
    w, h = (int(v) for v in rng.integers(256, 641, 2))
    start, end = (tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(2))
    ramp = Image.linear_gradient("L").resize((w, h), Image.Resampling.BILINEAR)
    ramp = ramp.rotate(float(rng.uniform(0, 360)), fillcolor=128)
    im = Image.merge("RGB", [ramp.point(lambda v, a=a, b=b: a + (b - a) * v // 255) for a, b in zip(start, end)])
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
        box = [x0, y0, x0 + int(rng.integers(w // 10, w // 2)), y0 + int(rng.integers(h // 10, h // 2))]
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse(box, fill=fill)
        elif shape == 1:
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])], fill=fill)
    x, y = int(rng.integers(0, NOISE - w + 1)), int(rng.integers(0, NOISE - h + 1))
    return ImageChops.add(im, tile.crop((x, y, x + w, y + h)), scale=1.0, offset=-128)


def copied_from(k: int) -> int | None:
    """For a planted near copy, the earlier image it copies; else None."""
    rng = np.random.default_rng([SEED, k, 1])
    return int(rng.integers(0, k)) if k > 10 and rng.random() < COPY_SHARE else None


def make_jpeg(k: int, tile: Image.Image) -> tuple[bytes, int | None]:
    """The JPEG of image k and, for a planted near copy, the original it copies (following copies
    of copies back to the first image)."""
    rng = np.random.default_rng([SEED, k, 2])
    source = original = copied_from(k)
    while original is not None and copied_from(original) is not None:
        original = copied_from(original)
    im = draw_image(k if original is None else original, tile)
    if source is not None:
        scale = float(rng.uniform(0.85, 1.15))
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=int(rng.integers(70, 96)))
    return out.getvalue(), original


def naive_hash_input(data: bytes) -> np.ndarray:
    """The straightforward decode: verify, then the full-size image, luma, 32 x 32."""
    with Image.open(io.BytesIO(data)) as im:
        im.verify()
    im = Image.open(io.BytesIO(data))
    im.load()
    return hash_input(im.convert("RGB"))


def naive_phash(grey: list[list[float]]) -> int:
    """pHash with the DCT written as nested loops over Python lists (the 64 coefficients used)."""
    n = len(grey)
    cos = [[math.cos(math.pi * (2 * x + 1) * u / (2 * n)) for x in range(n)] for u in range(9)]
    coefficients = []
    for u in range(1, 9):
        for v in range(1, 9):
            total = 0.0
            for y in range(n):
                row, cu = grey[y], cos[u][y]
                for x in range(n):
                    total += cu * cos[v][x] * row[x]
            coefficients.append(total)
    middle = sorted(coefficients)
    median = (middle[31] + middle[32]) / 2
    bits = 0
    for c in coefficients:
        bits = (bits << 1) | (c > median)
    return bits


def run(n_images: int, n_naive: int, threshold: int) -> dict:
    tile = noise_tile()
    hashes: list[np.ndarray] = []
    reasons: dict[str, int] = {}
    planted: list[tuple[int, int]] = []
    generate_s = check_s = hash_s = cpu_s = 0.0
    total_bytes = 0
    naive_every = max(1, n_images // max(1, n_naive))
    naive_data: list[bytes] = []
    accepted_index: list[int] = []
    for lo in range(0, n_images, CHUNK):
        t = time.perf_counter()
        chunk = [make_jpeg(k, tile) for k in range(lo, min(n_images, lo + CHUNK))]
        generate_s += time.perf_counter() - t
        total_bytes += sum(len(d) for d, _ in chunk)
        planted += [(k, s) for k, (_, s) in enumerate(chunk, lo) if s is not None]
        naive_data += [d for k, (d, _) in enumerate(chunk, lo) if k % naive_every == 0][: n_naive - len(naive_data)]

        t, c0 = time.perf_counter(), time.process_time()
        checks = [check_image(d) for d, _ in chunk]
        t2 = time.perf_counter()
        hashes.append(phash_batch([c.hash_input for c in checks if c.ok]))
        t3 = time.perf_counter()
        cpu_s += time.process_time() - c0
        check_s += t2 - t
        hash_s += t3 - t2
        for k, c in enumerate(checks, lo):
            reasons[c.reason or "accepted"] = reasons.get(c.reason or "accepted", 0) + 1
            if c.ok:
                accepted_index.append(k)
    all_hashes = np.concatenate(hashes)

    # Naive baseline on the subsample.
    naive_c0 = time.process_time()
    t = time.perf_counter()
    naive_inputs = [naive_hash_input(d) for d in naive_data]
    naive_decode_s = time.perf_counter() - t
    t = time.perf_counter()
    naive_hashes = [naive_phash(x.astype(np.float64).tolist()) for x in naive_inputs]
    naive_hash_s = time.perf_counter() - t
    naive_cpu_s = time.process_time() - naive_c0
    naive_per_image = (naive_decode_s + naive_hash_s) / len(naive_data)
    dct_equal = int(np.sum(phash_batch(naive_inputs) == np.array(naive_hashes, dtype=np.uint64)))
    ours_on_subsample = phash_batch([check_image(d).hash_input for d in naive_data])
    vs_full_decode = hamming(ours_on_subsample, np.array(naive_hashes, dtype=np.uint64)).astype(int)

    # Near-duplicate search.
    t = time.perf_counter()
    pairs = near_duplicates(all_hashes, threshold)
    mih_s = time.perf_counter() - t
    t = time.perf_counter()
    brute = near_duplicates(all_hashes, threshold, method="brute")
    brute_s = time.perf_counter() - t
    position = {k: p for p, k in enumerate(accepted_index)}
    found = {(i, j) for i, j, _ in pairs}
    recalled = sum((min(position[a], position[b]), max(position[a], position[b])) in found for a, b in planted)

    ours_s = check_s + hash_s
    return {
        "images": n_images, "accepted": reasons.get("accepted", 0), "reasons": reasons,
        "mean_jpeg_kb": total_bytes / n_images / 1024, "generate_seconds": generate_s,
        "check_seconds": check_s, "phash_seconds": hash_s, "seconds": ours_s,
        "images_per_second": n_images / ours_s, "cpu_seconds": cpu_s, "images_per_cpu_second": n_images / cpu_s,
        "naive_images": len(naive_data), "naive_decode_seconds": naive_decode_s, "naive_hash_seconds": naive_hash_s,
        "naive_images_per_second": 1 / naive_per_image, "naive_images_per_cpu_second": len(naive_data) / naive_cpu_s, "naive_seconds_extrapolated": naive_per_image * n_images,
        "speed_up": naive_per_image * n_images / ours_s,
        "pure_python_dct_equal": dct_equal,
        "ours_vs_full_decode_bits": {"mean": float(vs_full_decode.mean()), "max": int(vs_full_decode.max())},
        "target_images_per_second": TARGET_PER_SECOND, "target_met": n_images / cpu_s >= TARGET_PER_SECOND,
        "near_duplicates": {
            "hashes": len(all_hashes), "threshold": threshold, "pairs": len(pairs),
            "mih_seconds": mih_s, "brute_force_seconds": brute_s, "same_as_brute_force": pairs == brute,
            "planted_copies": len(planted), "planted_found": recalled,
        },
        "threads": 1, "python": platform.python_version(), "pillow": PIL.__version__, "numpy": np.__version__,
        "cpu": platform.processor() or platform.machine(), "cores_on_machine": os.cpu_count(),
    }


def report(r: dict) -> None:
    n = r["images"]
    nd = r["near_duplicates"]
    print(f"\nreLAIONet image checks: {n:,} JPEGs of 256-640 px (mean {r['mean_jpeg_kb']:.0f} KB), one thread "
          f"({r['cores_on_machine']} cores on the machine); generated in {r['generate_seconds']:.1f} s (not timed)")
    print(f"outcomes: {r['reasons']}")
    print(f"{'implementation':<52}{'images':>8}{'seconds':>10}{'images/s':>10}{'speed-up':>10}")
    print(f"{'ours: check_image + phash_batch':<52}{n:>8,}{r['seconds']:>10.2f}{r['images_per_second']:>10,.0f}"
          f"{r['speed_up']:>9.1f}x")
    print(f"{'  of which check_image (decode, checks, hash input)':<52}{'':>8}{r['check_seconds']:>10.2f}")
    print(f"{'  of which phash_batch':<52}{'':>8}{r['phash_seconds']:>10.2f}")
    measured = r["naive_decode_seconds"] + r["naive_hash_seconds"]
    print(f"{'naive: full decode + pure-Python pHash, measured':<52}{r['naive_images']:>8,}{measured:>10.2f}"
          f"{r['naive_images'] / measured:>10,.1f}")
    print(f"{'  of which the pure-Python pHash':<52}{'':>8}{r['naive_hash_seconds']:>10.2f}")
    print(f"{'naive, extrapolated':<52}{n:>8,}{r['naive_seconds_extrapolated']:>10.1f}"
          f"{r['naive_images_per_second']:>10,.1f}{1:>9.1f}x")
    verdict = "PASS" if r["target_met"] else "MISS"
    print(f"per core (process CPU time, one thread; wall clock drops when other jobs share the cores): "
          f"{r['images_per_cpu_second']:,.0f} images per CPU-second ({r['cpu_seconds']:.2f} CPU-s)")
    print(f"target: >= {r['target_images_per_second']} images/s per core: {r['images_per_cpu_second']:,.0f} -> {verdict}")
    print(f"phash_batch == pure-Python pHash on the same inputs: {r['pure_python_dct_equal']}/{r['naive_images']}; "
          f"ours (reduced JPEG decode) vs full decode: mean {r['ours_vs_full_decode_bits']['mean']:.2f} bits, "
          f"max {r['ours_vs_full_decode_bits']['max']}")
    print(f"near-duplicates over {nd['hashes']:,} hashes at <= {nd['threshold']} bits: {nd['pairs']:,} pairs; "
          f"multi-index {nd['mih_seconds']:.3f} s, brute force all pairs {nd['brute_force_seconds']:.3f} s "
          f"({nd['brute_force_seconds'] / max(nd['mih_seconds'], 1e-9):.0f}x); same pairs: "
          f"{'yes' if nd['same_as_brute_force'] else 'NO'}; planted near copies found: "
          f"{nd['planted_found']}/{nd['planted_copies']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20_000, help="Images to generate and check (default 20,000).")
    ap.add_argument("--naive", type=int, default=200, help="Subsample for the naive baseline (default 200).")
    ap.add_argument("--threshold", type=int, default=6, help="Near-duplicate threshold in bits (default 6).")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "out" / "relaionet_images.json")
    args = ap.parse_args()
    if args.images < 1 or args.naive < 1:
        ap.error("--images and --naive must be at least 1")
    result = run(args.images, min(args.naive, args.images), args.threshold)
    report(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
