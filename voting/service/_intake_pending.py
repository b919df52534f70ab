"""Step 6's pending commit of a cast (:mod:`voting.service._intake`): the checks under the locks and the one
commit BEFORE the append of what the public entry cannot rebuild (the evidence, pending) and what no other
submission may take meanwhile (the ballot's unique values, reserved; the one-time challenge, digital-ID
authorization or signing transaction, used; a digital-ID binding).

:meth:`IntakePending._commit_pending` chooses: :meth:`IntakePending._pend` runs them statement by
statement (every method, both databases); :meth:`IntakePending._pend_jpki_at_once` is the same for a JPKI
internet cast on PostgreSQL that no voter rule refuses, in ONE statement
(``voting._intake_db.jpki_pending_pg``): two round trips fewer, the same rows and refusals in the same
order. A value or binding another submission took first is refused with its rule's code, read again
(:meth:`IntakePending._refuse_taken`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .._errors import Conflict
from .._intake_db import EVIDENCE_PENDING, OidcSubjectBinding, jpki_pending_pg
from ._intake_auth import _Authenticated
from ._intake_checks import RESERVED, _Ballot
from ._intake_dapp import IntakeDapp
from ._intake_kiosk import IntakeKiosk, _KioskCast

__all__ = ["IntakePending"]


class IntakePending(IntakeDapp, IntakeKiosk):
    """Step 6's checks under the locks and its pending commit (the module's docstring)."""

    def _commit_pending(
        self,
        s: Session,
        b: _Ballot,
        auth: _Authenticated,
        kiosk: _KioskCast | None,
        voter: Any,
        pending: dict[str, Any],
        now: dt.datetime,
    ) -> None:
        """Step 6's checks and pending commit in ``s``: in one statement for a JPKI internet cast on
        PostgreSQL that no voter rule refuses (:meth:`_pend_jpki_at_once`), else statement by statement."""
        at_once = (
            self.election._shared
            and auth.challenge is not None
            and kiosk is None
            and auth.oidc_state is None
            and auth.dapp_transaction is None
            and auth.oidc_subject is None
            and voter.used is None
            and voter.kiosk_index is None
        )
        if at_once:
            self._pend_jpki_at_once(s, b, auth, pending, now)
        else:
            self._pend(s, b, auth, kiosk, voter, pending, now)

    def _pend(
        self,
        s: Session,
        b: _Ballot,
        auth: _Authenticated,
        kiosk: _KioskCast | None,
        voter: Any,
        pending: dict[str, Any],
        now: dt.datetime,
    ) -> None:
        """Step 6's checks and its pending commit, statement by statement, in ``s`` (the voter read under
        the locks is ``voter``; ``pending`` the evidence row): a refusal rolls back what it took."""
        c = s.connection()
        if auth.challenge is not None:  # checked and marked used (undone if refused after)
            self._take_challenge(s, auth.challenge, now)
        if auth.oidc_state is not None:
            self._check_oidc_unused(s, auth.oidc_state)
        if auth.dapp_transaction is not None:
            self._check_dapp_unused(s, auth.dapp_transaction)
        binding = self._check_binding(s, auth)
        if kiosk is not None:  # revoked or closed meanwhile: refused before anything is written
            self._check_kiosk_open(s, kiosk)
        # the uniqueness rules again, decided by the primary key of the values' rows: they are reserved here
        # (``ledger_index`` RESERVED) unless another ballot holds one, on the ledger or reserved (its
        # transaction committed: PostgreSQL waits for an uncommitted one); no read
        try:
            b.insert_rows(s, self.election_id, RESERVED)
        except IntegrityError:
            s.rollback()  # with the challenge taken above
            self._refuse_taken(b, auth)
        if voter.used is not None:
            raise Conflict("ballot.duplicate", "this authentication evidence was already used")
        if voter.kiosk_index is not None:
            raise Conflict(
                "voter.kiosk_voted",
                "this voter already voted at a polling-place kiosk; that ballot counts and "
                "cannot be replaced",
            )
        if auth.oidc_state is not None:
            self._consume_oidc(s, auth.oidc_state, now)
        if auth.dapp_transaction is not None:
            self._consume_dapp(s, auth.dapp_transaction, now)
        try:
            c.execute(EVIDENCE_PENDING, pending)
            if auth.oidc_subject is not None and binding is None:  # the account's first ballot
                assert auth.oidc_issuer is not None
                s.add(
                    OidcSubjectBinding(
                        election_id=self.election_id,
                        subject_key=auth.oidc_subject.hex(),
                        voter_alias=pending["voter_alias"],
                        issuer=auth.oidc_issuer,
                        evidence_hash=pending["evidence_hash"],
                        created_at=now,
                    )
                )
            s.commit()
        except IntegrityError:  # another voter's submission took the binding first: say which
            s.rollback()
            self._refuse_taken(b, auth)

    def _pend_jpki_at_once(
        self, s: Session, b: _Ballot, auth: _Authenticated, pending: dict[str, Any], now: dt.datetime
    ) -> None:
        """:meth:`_pend` for a JPKI internet cast on PostgreSQL that no voter rule refuses (its checks that
        apply, in the same order, with the same refusals): ONE statement (``jpki_pending_pg``) takes the
        challenge, then, if it was this election's and unexpired, reserves the values and inserts the
        evidence; then the commit. Two round trips fewer than statement by statement."""
        assert auth.challenge is not None
        params: dict[str, Any] = {
            "given": auth.challenge.hex(),
            "now": now,
            "eid": self.election_id,
            "bh": b.hex,
            "at": RESERVED,
            **pending,
        }
        for i, v in enumerate(b.unique):
            params[f"k{i}"], params[f"v{i}"] = v.kind, v.value
        try:
            row = s.connection().execute(jpki_pending_pg(len(b.unique)), params).first()
        except IntegrityError:  # a value another ballot holds: nothing of the statement stays
            s.rollback()
            self._refuse_taken(b, auth)
        self._challenge_taken(s, auth.challenge, row, now)  # refused: the session's rollback releases it
        s.commit()

    def _refuse_taken(self, b: _Ballot, auth: _Authenticated) -> NoReturn:
        """The pending commit hit a unique key: another submission committed one of this ballot's values (or
        the account's binding) since the checks. Raise the check's own refusal, read again."""
        with self._session() as s:
            self._check_unique(s, b)
            self._check_binding(s, auth)
        raise Conflict("ballot.duplicate", "another submission took a value of this ballot first")
