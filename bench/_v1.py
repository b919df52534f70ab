"""Protocol version 1 (edwards25519) for same-run comparisons.

No v1 code lives in the tree any more. Benchmarks that compare against it read its sources from git
(``git archive V1_COMMIT``) into a temporary directory and run them there in a child process, with the same
interpreter and virtual environment (v1 needed nothing that v2 does not install), on the same machine, in
the same run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

ROOT: Final[Path] = Path(__file__).resolve().parent.parent
#: The last commit of protocol version 1 (edwards25519, compact Σ-proofs).
V1_COMMIT: Final[str] = "8e33eb1"


def extract(dest: Path, paths: tuple[str, ...] = ("crypto",)) -> str | None:
    """Write v1's ``paths`` under ``dest``; ``None`` on success, otherwise why it could not."""
    try:
        cmd = ["git", "-C", str(ROOT), "archive", V1_COMMIT, *paths]
        archive = subprocess.run(cmd, capture_output=True, check=True, timeout=120).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return f"v1's source is not available from git ({type(e).__name__}: no history in this checkout?)"
    return None
