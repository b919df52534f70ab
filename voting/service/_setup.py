"""Stage 1, setup: publish the manifest (``election.manifest``) and issue the trustees' registration codes."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from ledger.events import BASE_HASH, EventType

from .._db import ElectionRow, TrusteeRow
from .._errors import Conflict, ManifestError, ServiceUnavailable
from .._manifest import Manifest, parse_manifest
from ._core import Replay, ServiceCore, _hash_secret, open_ledger, replays

__all__ = ["CreatedElection", "SetupStage"]


@dataclass(frozen=True, slots=True)
class CreatedElection:
    election_id: str
    base_hash: str
    ledger_index: int
    #: One-time registration codes ``"<index>-<secret>"`` for trustees 1..n. Shown once, never stored.
    invitations: Mapping[int, str]


class SetupStage(ServiceCore):
    """Create the election (its manifest on the ledger) and (re)issue the trustees' registration codes."""

    def _preflight(self, m: Manifest) -> None:
        """Production: the server must be able to run this election to its end (witness quorum, every
        allowed ballot-intake method configured, a commission key valid until voting closes, every name
        printable in the result declaration's font) before its manifest goes on the ledger, where it can never
        be changed (``voting._startup``). In every environment, a manifest's ``pins`` must be this server's
        (start-up check ``manifest_pins``)."""
        from .._startup import CHECKS, election_problems, run_checks

        unprintable: list[str] = []
        if self.settings.environment == "production":
            from .._result_pdf import unprintable_names

            problems = election_problems(self.settings, m, now=self._clock())
            # the result declaration must be printable: a name outside its font would stop it at the end
            unprintable = unprintable_names(m.to_dict())
        elif m.pins is not None:  # pins that are given must be this server's, in every environment
            pins_check = tuple(c for c in CHECKS if c.name == "manifest_pins")
            problems = run_checks(self.settings, m, now=self._clock(), checks=pins_check)
        else:
            return
        if problems or unprintable:
            raise ManifestError(
                "election.preflight",
                "this server cannot run the election described by the manifest: "
                + "; ".join([*map(str, problems), *unprintable]),
                details=[{"loc": [p.check], "msg": p.message} for p in problems]
                + [{"loc": ["result_pdf_font"], "msg": msg} for msg in unprintable],
            )

    def create_election(self, manifest: Manifest | Mapping[str, Any] | str | bytes) -> CreatedElection:
        """Publish the manifest (``election.manifest``) and issue one registration code per trustee."""
        m = manifest if isinstance(manifest, Manifest) else parse_manifest(manifest)
        self._preflight(m)
        with self.appending(), self._session() as s, s.no_autoflush:
            if s.exec(select(ElectionRow)).first() is not None:
                raise Conflict("election.exists", "this server already runs an election")
            if self._ledger is None:
                self._ledger = open_ledger(self.settings, m)
            if self._ledger.size != 0:
                raise Conflict("ledger.not_empty", "the ledger already holds entries of another election")
            if m.pins is not None and m.pins.log_key != self._ledger.log_key.vkey:
                raise ManifestError(
                    "election.preflight",
                    "pins.log_key is not this ledger's key",
                    details=[{"loc": ["manifest_pins"], "msg": "pins.log_key is not this ledger's key"}],
                )
            # The roll key and the trustee slots cannot be derived from the manifest entry: write them first
            # (phase "creating", committed), then append; reconciliation removes them if the append never
            # happened and completes them (phase "setup") if it did.
            row = ElectionRow(
                election_id=m.election_id,
                manifest_json=json.dumps(m.to_dict(), ensure_ascii=False),
                base_hash=m.base_hash.hex(),
                phase="creating",
                roll_key_hex=(self.settings.roll_key() or secrets.token_bytes(32)).hex(),
            )
            s.add(row)
            invitations: dict[int, str] = {}
            for i in range(1, m.trustees.n + 1):
                code = f"{i}-{secrets.token_urlsafe(24)}"
                invitations[i] = code
                s.add(TrusteeRow(election_id=m.election_id, index=i, invite_hash=_hash_secret(code)))
            s.commit()
            try:
                index = self._append(
                    EventType.MANIFEST, {"manifest": m.to_dict(), BASE_HASH: m.base_hash.hex()}, row
                )
            except BaseException:
                if self._ledger.size == 0:  # nothing was appended: the pre-written rows are orphans
                    self._delete_election_rows(s, m.election_id)
                raise
            row.phase = "setup"
            s.add(row)
            s.commit()
        self._cache.clear()
        return CreatedElection(m.election_id, m.base_hash.hex(), index, invitations)

    def reissue_invitations(self) -> dict[int, str]:
        """New one-time registration codes for every trustee that has not registered yet (the old codes stop
        working). For a commission that never saw the codes (the server died while creating the election)
        or lost them. No ledger entry: the codes are private."""
        with self.appending(), self._session() as s:
            row = self._row(s)
            if row.phase != "setup" or row.joint_key_json is not None:
                raise Conflict("election.phase", "registration codes are issued during the key ceremony only")
            out: dict[int, str] = {}
            for i, t in self._trustees(s).items():
                if t.status == "invited":
                    code = f"{i}-{secrets.token_urlsafe(24)}"
                    t.invite_hash = _hash_secret(code)
                    s.add(t)
                    out[i] = code
            s.commit()
        return out

    @replays(EventType.MANIFEST, own_check=True)
    def _replay_manifest(self, r: Replay, index: int, etype: str, p: dict[str, Any]) -> bool:
        if p.get(BASE_HASH) != r.row.base_hash:
            raise ServiceUnavailable("reconcile.manifest", "the ledger's manifest is not this election's")
        return self._advance(r.row, "setup")
