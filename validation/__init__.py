"""Validation of release candidates with Great Expectations.

``validation.gx_suite`` turns table definitions and dataset rules into GX checks and runs them;
``validation.sad`` holds the SAD rules (:func:`validation.sad.validate_sad`);
``validation.report`` the verdict (importing it, or this package, does not import GX).
"""

from validation.report import CheckResult, ValidationReport

__all__ = ["CheckResult", "ValidationReport"]
