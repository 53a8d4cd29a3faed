"""The verdict of a validation run: per-check results, JSON summary, text and self-contained HTML.

Imports neither Great Expectations nor polars: a report can be built, read and rendered anywhere.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.core.fileio import atomic_write_text

MAX_FAILING_IDS = 100  # ids kept per failing check (sorted)
TEXT_IDS_SHOWN = 10  # ids printed per failing check by render_text


@dataclass
class CheckResult:
    """One named check (one GX expectation) and its outcome.

    ``failing_ids`` names the failing rows by ``id_column`` (at most :data:`MAX_FAILING_IDS`,
    sorted, distinct); a row whose id is itself null is named ``"<null id: row N>"``.
    ``unexpected_count`` counts failing rows of the frame the check ran on (for checks on an
    exploded list, failing elements). Table-level checks (row counts) name no ids; ``details``
    then carries the observed value.
    """

    name: str
    table: str
    description: str
    success: bool
    unexpected_count: int
    failing_ids: list[str]
    id_column: str | None
    expectation: str = ""  # GX expectation type, e.g. expect_column_values_to_be_in_set
    origin: str = ""  # "schema" (derived from the table definition) or "rule" (dataset rule)
    details: str = ""  # e.g. "observed 392822 rows, expected between 1 and None"


@dataclass
class ValidationReport:
    dataset: str
    success: bool
    checks: list[CheckResult]
    counts: dict[str, int]  # rows per table
    out_dir: Path | None = None
    data_docs_index: Path | None = None  # GX Data Docs index.html
    results_path: Path | None = None  # GX validation results (JSON)
    summary_path: Path | None = None  # to_dict() as JSON
    html_path: Path | None = None  # self-contained report.html
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    # ------------------------------------------------------------------ views
    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.success]

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; checks: {[c.name for c in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "success": self.success,
            "counts": dict(self.counts),
            "n_checks": len(self.checks),
            "n_failed": len(self.failed),
            "checks": [asdict(c) for c in self.checks],
            "data_docs_index": str(self.data_docs_index) if self.data_docs_index else None,
            "results_path": str(self.results_path) if self.results_path else None,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def render_text(self, ids_shown: int = TEXT_IDS_SHOWN, show_passed: bool = True) -> str:
        """One line per check (or per failing check with ``show_passed=False``) and a verdict."""
        lines = [f"Validation of {self.dataset}: " + ", ".join(f"{t} {n:,} rows" for t, n in self.counts.items())]
        width = max((len(c.name) for c in self.checks), default=10)
        if not show_passed:
            lines.append(f"  {len(self.checks) - len(self.failed)} of {len(self.checks)} checks passed (all listed in {self.html_path})")
        for c in self.checks:
            if c.success and not show_passed:
                continue
            status = "PASS" if c.success else "FAIL"
            line = f"  {status}  {c.name:<{width}}  {c.description}"
            if c.details:
                line += f" [{c.details}]"
            lines.append(line)
            if not c.success and c.failing_ids:
                shown = ", ".join(c.failing_ids[:ids_shown])
                more = c.unexpected_count - min(ids_shown, len(c.failing_ids))
                suffix = f" (+{more:,} more rows)" if more > 0 else ""
                rows = "row" if c.unexpected_count == 1 else "rows"
                lines.append(f"        {c.unexpected_count:,} failing {rows}; {c.id_column}: {shown}{suffix}")
        n_failed = len(self.failed)
        if self.success:
            verdict = f"VERDICT: PASS - all {len(self.checks)} checks passed"
        else:
            verdict = (
                f"VERDICT: FAIL - {n_failed} of {len(self.checks)} checks failed: "
                + ", ".join(c.name for c in self.failed)
            )
        lines.append(verdict)
        if self.data_docs_index:
            lines.append(f"Data Docs: {self.data_docs_index}")
        return "\n".join(lines)

    def render_html(self) -> str:
        """A self-contained page (inline CSS, no scripts, no external URLs)."""
        e = html.escape
        rows = []
        for c in self.checks:
            status = "PASS" if c.success else "FAIL"
            ids = ""
            if not c.success and c.failing_ids:
                more = c.unexpected_count - len(c.failing_ids)
                ids = ", ".join(f"<code>{e(i)}</code>" for i in c.failing_ids)
                if more > 0:
                    ids += f" <em>(+{more:,} more)</em>"
            rows.append(
                f'<tr class="{status.lower()}"><td class="st">{status}</td><td>{e(c.table)}</td>'
                f"<td><code>{e(c.name)}</code></td><td>{e(c.description)}"
                + (f"<div class='det'>{e(c.details)}</div>" if c.details else "")
                + f"</td><td class='num'>{c.unexpected_count:,}</td>"
                f"<td>{e(c.id_column or '')}</td><td class='ids'>{ids}</td></tr>"
            )
        counts = "".join(f"<li>{e(t)}: {n:,} rows</li>" for t, n in self.counts.items())
        verdict = "PASS" if self.success else f"FAIL ({len(self.failed)} of {len(self.checks)} checks failed)"
        failed = ""
        if self.failed:
            failed = "<p>Failed: " + ", ".join(f"<code>{e(c.name)}</code>" for c in self.failed) + "</p>"
        docs = ""
        if self.data_docs_index and self.out_dir:
            try:
                rel = Path(self.data_docs_index).relative_to(self.out_dir).as_posix()
                docs = f'<p>Great Expectations Data Docs: <a href="{e(rel)}">{e(rel)}</a></p>'
            except ValueError:
                pass
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Validation of {e(self.dataset)}: {e(verdict)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
h1 .pass, .verdict.pass {{ color: #1a7f37; }} h1 .fail, .verdict.fail {{ color: #c62828; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9em; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; text-align: left; }}
th {{ background: #f3f3f3; }}
tr.pass td.st {{ background: #e6f4ea; color: #1a7f37; font-weight: bold; }}
tr.fail td.st {{ background: #fdecea; color: #c62828; font-weight: bold; }}
td.num {{ text-align: right; }} td.ids {{ max-width: 40em; word-break: break-all; }}
.det {{ color: #666; font-size: 0.9em; }} code {{ font-size: 0.95em; }}
</style></head>
<body>
<h1>Validation of {e(self.dataset)}: <span class="{'pass' if self.success else 'fail'}">{e(verdict)}</span></h1>
<ul>{counts}</ul>
{failed}
{docs}
<table>
<thead><tr><th>Status</th><th>Table</th><th>Check</th><th>Description</th><th>Failing rows</th><th>Id column</th><th>Failing ids (first {MAX_FAILING_IDS})</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p class="verdict {'pass' if self.success else 'fail'}"><strong>Verdict: {e(verdict)}</strong></p>
</body></html>
"""

    # ------------------------------------------------------------------ files
    def write_summary(self, path: Path) -> Path:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        self.summary_path = path
        return path

    def write_html(self, path: Path) -> Path:
        atomic_write_text(path, self.render_html())
        self.html_path = path
        return path
