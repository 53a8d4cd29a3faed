"""Benchmark: annotation under load against a real local Label Studio (issue 9, scope 3).

    python bench/annotation_load.py                                  # 2,000 items, overlap 3, 6 annotators
    python bench/annotation_load.py --items 500 --annotators 4       # a quick look

Starts its own Label Studio (``LocalLabelStudio``) on a fresh data dir and a free port, pushes
``--items`` SAD items (synthetic SAD-like candidate, every item routed, overlap ``--overlap``)
through ``corpusforge.ops.annotate``, then ``--annotators`` threads submit every routed
(item, annotator) pair through the backend's ``submit`` while the main thread pulls and merges
again and again. At the end one more pull and merge, checked as in
``tests/annotation/test_load.py``: every submitted annotation exactly once in the latest
snapshot, merged labels consistent with it.

Prints the load held (annotations/s over the submitting period), the pull latency while the
annotators worked (median, max) and the final pull, and writes them to
bench/out/annotation_load.json. The load average is printed too: anything else running on the
machine shows in the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT_JSON = REPO / "bench" / "out" / "annotation_load.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--annotators", type=int, default=6)
    parser.add_argument("--min-pulls", type=int, default=3)
    args = parser.parse_args(argv)

    from annotation.backends.labelstudio.server import LocalLabelStudio, ensure_environment, ensure_template
    from corpusforge.ops import annotate as ops_annotate
    from tests.annotation.test_load import check_complete, describe, run_load, settings_for, synthetic_spec

    ensure_environment()
    ensure_template()
    spec = synthetic_spec(args.items)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cf-annotation-load-") as tmp:
        with LocalLabelStudio(Path(tmp) / "label-studio", port=0) as server:
            os.environ["CORPUSFORGE_LABEL_STUDIO_TOKEN"] = server.token
            ops_annotate.sad_spec = lambda settings, preannotator=None: spec  # the synthetic spec, not a build
            settings = settings_for(server.url, Path(tmp) / "ws", args.overlap)
            started = time.perf_counter()
            result = run_load(settings, spec, server.url, server.token, annotators=args.annotators,
                              overlap=args.overlap, min_pulls=args.min_pulls)
            total = time.perf_counter() - started
            check_complete(result, spec)
    during = sorted(result.pulls[:-1])
    figures = {
        "items": args.items, "overlap": args.overlap, "annotator_threads": args.annotators,
        "annotations": len(result.submitted), "submit_seconds": round(result.submit_seconds, 2),
        "annotations_per_second": round(result.rate, 1),
        "pulls_while_submitting": len(during), "merges": result.merges,
        "pull_seconds_median": round(during[len(during) // 2], 2), "pull_seconds_max": round(during[-1], 2),
        "export_seconds_median": round(sorted(result.exports[:-1])[len(during) // 2], 2),
        "final_pull_seconds": round(result.pulls[-1], 2), "total_seconds": round(total, 1),
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "complete": True,
    }
    print(describe(result, args.annotators))
    print(f"every submitted annotation exactly once in the latest snapshot and the merged labels; "
          f"load average {figures['load_average']['before']} -> {figures['load_average']['after']}")
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
