"""Check a release folder against its checksums.sha256 (and manifest.json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from releases.errors import ReleaseNotFoundError
from releases.manifest import CHECKSUMS_NAME, MANIFEST_NAME, file_sha256, iter_release_files, parse_checksums


@dataclass
class VerifyReport:
    release_dir: str
    ok: bool
    checked: int  # files listed in checksums.sha256 that were re-hashed
    mismatched: list[str] = field(default_factory=list)  # listed, present, different sha256
    missing: list[str] = field(default_factory=list)  # listed, absent
    unexpected: list[str] = field(default_factory=list)  # present, not listed
    problems: list[str] = field(default_factory=list)  # malformed lines, manifest disagreements

    def to_dict(self) -> dict:
        return {
            "release_dir": self.release_dir,
            "ok": self.ok,
            "checked": self.checked,
            "mismatched": self.mismatched,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "problems": self.problems,
        }

    def render_text(self) -> str:
        head = f"{'OK' if self.ok else 'FAILED'}: {self.release_dir}: {self.checked} files checked"
        lines = [head]
        for title, items in (
            ("modified (sha256 differs)", self.mismatched),
            ("missing", self.missing),
            ("not listed in checksums.sha256", self.unexpected),
            ("problems", self.problems),
        ):
            if items:
                lines.append(f"  {title}: {len(items)}")
                lines.extend(f"    {x}" for x in items)
        return "\n".join(lines)


def verify_release(release_dir: str | Path) -> VerifyReport:
    """Re-hash every file listed in checksums.sha256; report modified, missing and unlisted files.

    Also reports (as ``problems``) malformed checksum lines and files whose sha256 in
    manifest.json disagrees with checksums.sha256.
    """
    root = Path(release_dir)
    if not root.is_dir():
        raise ReleaseNotFoundError(f"no release folder at {root}")
    present = set(iter_release_files(root))
    report = VerifyReport(release_dir=str(root), ok=False, checked=0)
    sums_path = root / CHECKSUMS_NAME
    if not sums_path.is_file():
        report.missing.append(CHECKSUMS_NAME)
        report.unexpected = sorted(present)
        return report
    present.discard(CHECKSUMS_NAME)
    records, bad = parse_checksums(sums_path.read_text(encoding="utf-8"))
    report.problems.extend(f"malformed line in {CHECKSUMS_NAME}: {line!r}" for line in bad)

    for rel in sorted(records):
        path = root / rel
        if rel not in present:
            report.missing.append(rel)
            continue
        report.checked += 1
        if file_sha256(path) != records[rel]:
            report.mismatched.append(rel)
    report.unexpected = sorted(present - set(records))

    # The manifest's own record of the data files must agree with the checksums.
    if MANIFEST_NAME in records and MANIFEST_NAME in present and MANIFEST_NAME not in report.mismatched:
        import json

        try:
            manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
            for rel, rec in sorted(manifest.get("files", {}).items()):
                if rel not in records:
                    report.problems.append(f"{rel} is in {MANIFEST_NAME} but not in {CHECKSUMS_NAME}")
                elif rec.get("sha256") != records[rel]:
                    report.problems.append(f"{rel}: sha256 in {MANIFEST_NAME} differs from {CHECKSUMS_NAME}")
        except (ValueError, AttributeError) as e:
            report.problems.append(f"{MANIFEST_NAME} is not valid: {e}")

    report.ok = not (report.mismatched or report.missing or report.unexpected or report.problems)
    return report
