"""The manifest's ``pins`` block from this server's configuration, and the check that they agree.

The manifest pins everything an election must trust (``docs/events.md``, "Pins"): the log's signed-note
verifier key, the SHA-256 fingerprints of the JPKI signing roots the server accepts, the fingerprint of the
commission's PDF-signing root, and each trustee's enrolment key. The operator writes them into the manifest
before creating the election (``tvote admin pins``, operator guide §7), so everything they name must exist
first: :func:`server_pins` creates the ledger's key (``ledger-signing.key``) if it is missing, exactly as the
ledger would on first use, and reads the rest.

:func:`pin_problems` is the start-up check ``manifest_pins`` (:mod:`voting._startup`): it only reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ._settings import Settings

__all__ = [
    "LEDGER_KEY_FILE",
    "commission_root_fingerprint",
    "enrolment_fingerprint",
    "jpki_root_fingerprints",
    "log_key_on_disk",
    "official_pins",
    "pin_problems",
    "server_pins",
]

LEDGER_KEY_FILE: Final[str] = "ledger-signing.key"


def enrolment_fingerprint(public_key_hex: str) -> str:
    """How a trustee's enrolment key is read out at the ceremony: SHA-256 of the 32-byte key, first 16 bytes,
    in groups of four hex digits (``1a2b 3c4d …``). The manifest pins the whole key."""
    digest = hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def log_origin(settings: Settings, election_id: str) -> str:
    return settings.log_origin or f"tvote/{election_id}"


def log_key_on_disk(settings: Settings) -> str | None:
    """The verifier key of ``data_dir/ledger-signing.key``, or ``None`` if there is none (never creates)."""
    from ledger.record import LogSigner

    path = settings.data_dir / LEDGER_KEY_FILE
    if not path.is_file():
        return None
    return str(LogSigner.from_skey(path.read_text(encoding="ascii")).public.vkey)


def jpki_root_fingerprints(settings: Settings) -> list[str]:
    """SHA-256 fingerprints (sorted) of the configured JPKI trust anchors (empty: JPKI not configured)."""
    from voting.auth import certificate_fingerprint, load_trust_anchors

    if settings.jpki_trust_anchors is None:
        return []
    return sorted({certificate_fingerprint(a) for a in load_trust_anchors(settings.jpki_trust_anchors)})


def commission_root_fingerprint(settings: Settings) -> str | None:
    """The SHA-256 fingerprint of the self-signed root in ``commission-chain.pem`` (``None``: no chain file,
    or not exactly one self-signed certificate in it)."""
    from ._commission_key import CHAIN_FILE

    path: Path = settings.data_dir / CHAIN_FILE
    if not path.is_file():
        return None
    roots = [c for c in x509.load_pem_x509_certificates(path.read_bytes()) if c.subject == c.issuer]
    if len(roots) != 1:
        return None
    return roots[0].fingerprint(hashes.SHA256()).hex()


def official_pins(manifest: Any) -> dict[str, Any]:
    """The pins file (``tvote-pins/1``) auditors give ``tvote-verify --pins`` (``docs/verifier.md``,
    "Official mode"): the manifest's base hash, its ``pins`` (if any) and its witnesses."""
    d = manifest.to_dict()
    out: dict[str, Any] = {
        "format": "tvote-pins/1",
        "election_id": manifest.election_id,
        "base_hash": manifest.base_hash.hex(),
        "witnesses": d["witnesses"],
    }
    if "pins" in d:
        out["pins"] = d["pins"]
    return out


def server_pins(settings: Settings, election_id: str, enrolment_keys: Sequence[str]) -> dict[str, Any]:
    """The ``pins`` block for an election on this server: creates the ledger key if it does not exist yet
    (and, outside production, the TEST commission key, as start-up would); raises
    :class:`~voting._errors.ConfigurationError` when the commission root cannot be read."""
    from ._commission_key import ensure_test_commission_signer
    from ._errors import ConfigurationError
    from .service import log_signer

    log_key = log_signer(settings, election_id).public.vkey
    ensure_test_commission_signer(settings)
    root = commission_root_fingerprint(settings)
    if root is None:
        raise ConfigurationError(
            "config.commission_key",
            f"commission-chain.pem in {settings.data_dir} is missing or does not hold exactly one "
            "self-signed root (issue the commission key first; docs/operator-guide.md)",
        )
    return {
        "log_key": log_key,
        "jpki_roots_sha256": jpki_root_fingerprints(settings),
        "commission_root_sha256": root,
        "trustee_enrolment_keys": [k.lower() for k in enrolment_keys],
    }


def pin_problems(settings: Settings, manifest: Any, *, production: bool) -> list[str]:
    """Start-up check ``manifest_pins``: production requires the manifest's ``pins``; whenever it has them,
    each must equal this server's configuration (the ledger key, the configured JPKI anchors, the
    commission's root). Never creates anything."""
    pins = manifest.pins
    if pins is None:
        if production:
            return [
                "the manifest pins nothing (no 'pins' block): production needs the log key, the JPKI roots, "
                "the commission root and the trustees' enrolment keys pinned (`tvote admin pins`)"
            ]
        return []
    from ledger.record import LogKey

    problems: list[str] = []
    try:
        have_key = log_key_on_disk(settings)
    except Exception as e:  # a malformed key file: reported, not a traceback
        problems.append(f"{LEDGER_KEY_FILE} cannot be read ({type(e).__name__})")
    else:
        if have_key is None:
            problems.append(
                f"there is no {LEDGER_KEY_FILE} in {settings.data_dir}: the pinned log key cannot be this "
                "server's (create it with `tvote admin pins` before writing the manifest)"
            )
        elif have_key != pins.log_key:
            problems.append(f"pins.log_key is not the key of this server's {LEDGER_KEY_FILE} ({have_key})")
    if LogKey.from_vkey(pins.log_key).name != log_origin(settings, manifest.election_id):
        problems.append("pins.log_key names another log origin than this election's")
    try:
        jpki = jpki_root_fingerprints(settings)
    except Exception as e:  # reported by the jpki_trust_anchors check too
        problems.append(f"the JPKI trust anchors cannot be loaded ({type(e).__name__})")
    else:
        if sorted(pins.jpki_roots_sha256) != jpki:
            problems.append(
                "pins.jpki_roots_sha256 differs from the configured JPKI trust anchors "
                f"(configured: {', '.join(jpki) or 'none'})"
            )
    try:
        root = commission_root_fingerprint(settings)
    except (OSError, ValueError) as e:
        root, problems = None, [*problems, f"commission-chain.pem cannot be read ({type(e).__name__})"]
    if root is None:
        problems.append("no commission root to match pins.commission_root_sha256 (commission-chain.pem)")
    elif root != pins.commission_root_sha256:
        problems.append(f"pins.commission_root_sha256 is not the root of commission-chain.pem ({root})")
    return problems
