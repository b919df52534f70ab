"""The commission's result declaration: a bilingual PDF, PAdES-signed (``docs/result-pdf.md``).

:func:`build_result_pdf` builds and signs it with a :class:`CommissionSigner` (the commission's
document-signing key, its certificate and the chain to its root); malformed input raises
:class:`ResultPdfInputError`. The verifier checks the result with its own code (``verifier/``), never this.
"""

from __future__ import annotations

from ._result_pdf import CommissionSigner, ResultPdfInputError, build_result_pdf

__all__ = ["CommissionSigner", "ResultPdfInputError", "build_result_pdf"]
