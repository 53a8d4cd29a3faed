"""Benchmark: reLAIONet caption matching and image hashing in one run, each beside its naive baseline.

    python bench/relaionet.py                          # 5,000,000 captions, 20,000 images
    python bench/relaionet.py --captions 200000 --images 2000   # quick look

Runs ``bench/relaionet_captions.py`` (LAIONet caption matching: one multi-pattern pass against a
regular expression per lemma per caption) and then ``bench/relaionet_images.py`` (decode + check +
pHash against a full decode with a pure-Python pHash; near-duplicate search against all pairs),
each on one thread, and prints both results and the issue's targets in one table at the end
(>= 200,000 captions/s and >= 300 images/s per core). The detailed output of each comes first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import relaionet_captions  # noqa: E402  (sets single-thread environment variables on import)
import relaionet_images  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=int, default=5_000_000, help="Captions to generate and match (default 5,000,000).")
    ap.add_argument("--images", type=int, default=20_000, help="Images to generate and check (default 20,000).")
    ap.add_argument("--json", type=Path, default=HERE / "out" / "relaionet.json")
    args = ap.parse_args()

    captions = relaionet_captions.main(["--captions", str(args.captions), "--batch", str(min(100_000, args.captions))])
    images = relaionet_images.run(args.images, min(200, args.images), 6)
    relaionet_images.report(images)

    rows = [
        ("caption matching (captions/s per core)", captions["ours"]["captions_per_cpu_s"], captions["naive"]["captions_per_cpu_s"],
         relaionet_captions.TARGET_CAPTIONS_S),
        ("decode + check + pHash (images/s per core)", images["images_per_cpu_second"], images["naive_images_per_cpu_second"],
         relaionet_images.TARGET_PER_SECOND),
    ]
    print(f"\n{'reLAIONet, one run':<48}{'ours':>12}{'naive':>12}{'speed-up':>10}{'target':>10}  verdict")
    for name, ours, naive, target in rows:
        print(f"{name:<48}{ours:>12,.0f}{naive:>12,.1f}{ours / naive:>9,.0f}x{target:>10,}  {'PASS' if ours >= target else 'MISS'}")
    nd = images["near_duplicates"]
    print(f"{'near-duplicate search (seconds, ' + format(nd['hashes'], ',') + ' hashes)':<48}{nd['mih_seconds']:>12.3f}"
          f"{nd['brute_force_seconds']:>12.3f}{nd['brute_force_seconds'] / max(nd['mih_seconds'], 1e-9):>9,.0f}x{'-':>10}  "
          f"same pairs: {'yes' if nd['same_as_brute_force'] else 'NO'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"captions": captions, "images": images}, indent=2) + "\n")
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
