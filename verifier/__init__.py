"""tvote verifier: re-checks an exported election record; never imports the server side.

Public API::

    verify_record(path, Options(...), progress=None) -> Report   # every numbered check (docs/verifier.md)
    CHECKS                                                       # the numbered checks V1..V31
    markdown_check_table()                                       # docs/verifier.md's table, from CHECKS
    VerifierError > RecordUnreadable | CheckFailed               # the exception tree (verifier._errors)

The command line is ``tvote-verify`` (:mod:`verifier.cli`).
"""

from __future__ import annotations

from ._checks import CHECKS, Check
from ._checks import markdown_table as markdown_check_table
from ._engine import Options, verify_record
from ._errors import CheckFailed, RecordUnreadable, VerifierError
from ._report import Report

__all__ = [
    "CHECKS",
    "Check",
    "CheckFailed",
    "Options",
    "RecordUnreadable",
    "Report",
    "VerifierError",
    "markdown_check_table",
    "verify_record",
]
