"""The commission's result declaration: a bilingual PDF, PAdES-signed (``docs/result-pdf.md``).

:func:`build_result_pdf` builds and signs it with a :class:`CommissionSigner` (the commission's
document-signing key, its certificate and the chain to its root); malformed input raises
:class:`ResultPdfInputError`. The verifier checks the result with its own code (``verifier/``), never this.
"""

from __future__ import annotations

from ._result_pdf import FONT_FILE, CommissionSigner, ResultPdfInputError, build_result_pdf

#: The Japanese TrueType font the declaration embeds (IPAex Gothic, IPA Font License, package data); the
#: kiosk's printouts embed the same one.
JAPANESE_FONT_FILE = FONT_FILE

__all__ = ["JAPANESE_FONT_FILE", "CommissionSigner", "ResultPdfInputError", "build_result_pdf"]
