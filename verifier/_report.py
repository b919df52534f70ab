"""The verification report: per-check status, failures with their ledger entries, summary and result.

:meth:`Report.to_dict` is the machine-readable form written by ``tvote-verify --json FILE``
(``"format": "tvote-verify-report/1"``); ``docs/verifier.md`` documents it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ._checks import CHECKS, by_id, failure
from ._errors import CheckFailed

__all__ = [
    "INVALID",
    "MAX_FAILURES_PER_CHECK",
    "NOT_CHECKED",
    "NOT_FULLY_VERIFIED",
    "RECEIPT_DOES_NOT_MATCH",
    "RECEIPT_MATCHES",
    "RECEIPT_STEP",
    "REPORT_FORMAT",
    "VALID",
    "Report",
]

REPORT_FORMAT: Final[str] = "tvote-verify-report/1"
#: the status of a check that applies but could not run for a missing input (``--trust-root``, the PDF):
#: never a pass, never a failure; the verdict is then NOT_FULLY_VERIFIED
NOT_CHECKED: Final[str] = "not-checked"
#: the record's verdicts (``Report.verdict``; the JSON report's ``verdict``)
VALID: Final[str] = "valid"
NOT_FULLY_VERIFIED: Final[str] = "not-fully-verified"
INVALID: Final[str] = "invalid"
#: V25 receipt.inclusion concerns the voter's receipt, not the record: its outcome is the receipt verdict
RECEIPT_STEP: Final[int] = 25
RECEIPT_MATCHES: Final[str] = "matches"
RECEIPT_DOES_NOT_MATCH: Final[str] = "does-not-match"
#: A record where a million ballots fail must not produce a million-line report: further failures of the
#: same check are counted, not listed.
MAX_FAILURES_PER_CHECK: Final[int] = 100


@dataclass
class Report:
    record: str
    statuses: dict[int, str] = field(default_factory=lambda: {c.step: "pending" for c in CHECKS})
    failures: list[CheckFailed] = field(default_factory=list)
    suppressed: dict[int, int] = field(default_factory=dict)
    summary: dict[str, int] = field(default_factory=dict)
    results: dict[str, dict[str, int]] | None = None
    election_id: str | None = None
    #: display names from the manifest (``verifier._manifest.ElectionInfo.labels``); the CLI shows them
    labels: dict[str, str] = field(default_factory=dict)
    entries: int = 0
    elapsed_seconds: float = 0.0
    #: the ballot engine that verified the ballots (``"python"``: the reference, ``"native"``: tvote_native)
    engine: str = "python"
    notes: list[str] = field(default_factory=list)
    #: checked in official mode (``--pins``, V27): against pins obtained out of band, not only itself
    official: bool = False
    #: the booth's digest as the record publishes it (``booth.published``, V29) and its entry
    booth_digest: str | None = None
    booth_entry: int | None = None
    #: why each check with status NOT_CHECKED could not run (English; ``verifier._lang`` translates)
    not_checked_reasons: dict[int, str] = field(default_factory=dict)
    #: failures listed per step (so that :meth:`add` is O(1) however many ballots fail)
    _listed: dict[int, int] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ recording
    def add(self, err: CheckFailed) -> None:
        self.statuses[err.step] = "fail"
        listed = self._listed.get(err.step, 0)
        if listed >= MAX_FAILURES_PER_CHECK:
            self.suppressed[err.step] = self.suppressed.get(err.step, 0) + 1
        else:
            self.failures.append(err)
            self._listed[err.step] = listed + 1

    def add_first(self, errs: list[CheckFailed]) -> None:
        """Record ``errs`` as found before every failure recorded so far (the per-check listing limit then
        keeps what it would have kept had they been added first)."""
        if not errs:
            return
        earlier, suppressed = self.failures, self.suppressed
        self.failures, self.suppressed, self._listed = [], {}, {}
        for e in [*errs, *earlier]:
            self.add(e)
        for step, n in suppressed.items():
            self.suppressed[step] = self.suppressed.get(step, 0) + n

    def fail(
        self, check_id: str, message: str, *, entry: int | None = None, detail: str | None = None
    ) -> None:
        """Record a failure of the check ``check_id`` (its step derived from the id)."""
        self.add(failure(check_id, message, entry=entry, detail=detail))

    def passed(self, check_id: str) -> None:
        step = by_id(check_id).step
        if self.statuses[step] not in ("fail", NOT_CHECKED):
            self.statuses[step] = "pass"

    def not_checked(self, check_id: str, reason: str) -> None:
        """The check ``check_id`` applies but could not run for a missing input (``reason`` says which and
        how to give it): it neither passes nor fails, and the record is then NOT_FULLY_VERIFIED."""
        step = by_id(check_id).step
        if self.statuses[step] != "fail":
            self.statuses[step] = NOT_CHECKED
            self.not_checked_reasons[step] = reason

    def not_applicable(self, check_id: str, why: str) -> None:
        step = by_id(check_id).step
        if self.statuses[step] == "pending":
            self.statuses[step] = "n/a"
            self.notes.append(f"V{step} {check_id}: not applicable ({why})")

    def failed_steps(self) -> list[int]:
        return sorted(s for s, st in self.statuses.items() if st == "fail")

    @property
    def verdict(self) -> str:
        """The record's verdict (the receipt, V25, is :attr:`receipt_verdict`): INVALID when a check of the
        record failed; NOT_FULLY_VERIFIED when none failed but one that applies could not run; else VALID."""
        if any(st == "fail" for s, st in self.statuses.items() if s != RECEIPT_STEP) or any(
            f.step != RECEIPT_STEP for f in self.failures
        ):
            return INVALID
        if any(st == NOT_CHECKED for st in self.statuses.values()):
            return NOT_FULLY_VERIFIED
        return VALID

    @property
    def receipt_verdict(self) -> str | None:
        """``None`` without ``--receipt``; else whether the receipt matches the record (V25)."""
        st = self.statuses[RECEIPT_STEP]
        if st == "pending":
            return None
        return RECEIPT_MATCHES if st == "pass" else RECEIPT_DOES_NOT_MATCH

    @property
    def ok(self) -> bool:
        """Everything holds: the record is VALID and the receipt, if one was given, matches it."""
        return self.verdict == VALID and self.receipt_verdict != RECEIPT_DOES_NOT_MATCH

    def failure_count(self, step: int) -> int:
        return sum(1 for f in self.failures if f.step == step) + self.suppressed.get(step, 0)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "record": self.record,
            "election_id": self.election_id,
            "valid": self.ok,
            "verdict": self.verdict,
            "receipt": self.receipt_verdict,
            "official": self.official,
            "entries": self.entries,
            "booth": None
            if self.booth_digest is None
            else {"digest": self.booth_digest, "entry": self.booth_entry},
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "engine": self.engine,
            "checks": [
                {
                    "step": c.step,
                    "id": c.id,
                    "title": c.title,
                    "status": self.statuses[c.step],
                    "failures": self.failure_count(c.step),
                    "reason": self.not_checked_reasons.get(c.step),
                }
                for c in CHECKS
            ],
            "failures": [f.to_dict() for f in self.failures],
            "summary": dict(self.summary),
            "results": self.results,
            "notes": list(self.notes),
        }

    def write_json(self, path: str | Path) -> None:
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"
        Path(path).write_text(text, encoding="utf-8")
