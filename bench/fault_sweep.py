"""Fault-injection sweep: SIGKILL every command at >= 20 points each, rerun, compare (long; not CI).

    python bench/fault_sweep.py [--points 20] [--seed 0] [--only "build sad"] [--no-annotation]

``--only`` takes a command's name as the table prints it, e.g. "release facts" or
"annotate pull sad (argilla)"; repeat it for several.

For build, validate and release of each dataset (SAD, PolyRefuse de+en from the published sample,
reLAIONet without models, fact frequencies over a generated corpus; releases sharded into small
files) and, against a local Label Studio and a local argilla-server started here, annotate push sad
(chunks of 3 tasks or records) and annotate pull sad (one task or record a request): list
the command's kill points
with an uninterrupted run (CORPUSFORGE_FAULT_LIST), then for each chosen point kill the command
there (CORPUSFORGE_FAULT_AT), rerun it and compare its outputs with the uninterrupted run
(tests/faults/harness.py). Prints one line per trial and a table: command, points available,
points tried, reruns identical, failures (with details). Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults import harness  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", help="command name(s) to sweep, e.g. 'build sad'")
    ap.add_argument("--no-annotation", action="store_true", help="skip push/pull (no annotation servers)")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fault-sweep-"))
    wanted = lambda name: not args.only or name in args.only  # noqa: E731
    jobs = [(c, None) for c in harness.dataset_commands(work / "inputs", set(args.only) if args.only else None)]
    servers = []
    backends = (("", "labelstudio", "LocalLabelStudio", "token", harness.LabelStudioTarget),
                (" (argilla)", "argilla", "LocalArgilla", "api_key", harness.ArgillaTarget))
    for suffix, package, server_class, secret, target in backends:
        if args.no_annotation or not any(wanted(f"annotate {verb} sad{suffix}") for verb in ("push", "pull")):
            continue
        module = importlib.import_module(f"annotation.backends.{package}.server")
        module.ensure_environment()
        module.ensure_template()
        server = getattr(module, server_class)(work / package, port=0).start()
        servers.append(server)
        push, push_check, pull, pull_check = harness.annotation_commands(target(server.url, getattr(server, secret)))
        jobs += [(push, push_check), (pull, pull_check)]
    results = []
    try:
        for cmd, check in jobs:
            if not wanted(cmd.name):
                continue
            started = time.perf_counter()
            res = harness.sweep(cmd, work / re.sub(r"\W+", "_", cmd.name).strip("_"), args.points, seed=args.seed, check=check,
                                log=lambda line: print(line, flush=True))
            results.append((res, time.perf_counter() - started))
    finally:
        for server in servers:
            server.stop()
    print()
    print("| command | points available | points tried | reruns identical | failures | seconds |")
    print("|---|---|---|---|---|---|")
    for res, seconds in results:
        print(f"| {res.command} | {res.points_available} | {len(res.trials)} | {res.identical} | {len(res.failures)} | {seconds:.0f} |")
    for res, _ in results:
        for t in res.failures:
            print(f"FAILED {res.command} at {t.point}: {t.detail}")
    return 1 if any(res.failures for res, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
