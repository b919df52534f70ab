"""Test and demo scaffolding: NEVER for a real election.

Test certificate authorities (a JPKI stand-in issuing software My Number cards, a commission root with its
result-document signer), synthetic residents, the demo's manifest and roll file, an election started and
opened in one call, and the whole key ceremony run in one process: what the tests, ``tools/`` and ``bench/``
use and ``tvote demo`` is made of. Nothing of the server imports this module.

* CAs and cards: :class:`JpkiTestCa`, :class:`CommissionTestCa`, :class:`TestCard`, :class:`TestResident`,
  :class:`RsaKeyPool` (a pool of RSA keys, so that thousands of cards do not each cost a key generation);
* residents and the election: :class:`Resident`, :func:`make_residents`, :func:`roll_csv`,
  :func:`tsukuba_manifest`, :func:`start_election` (yields a :class:`DemoElection`);
* trustees: :func:`run_key_ceremony` (every trustee of the election, in this process, over HTTP).
"""

from __future__ import annotations

from ._cli_demo import DemoElection, Resident, make_residents, roll_csv, start_election, tsukuba_manifest
from ._testca import CommissionTestCa, JpkiTestCa, RsaKeyPool, TestCard, TestResident
from ._trustee_client import run_key_ceremony

__all__ = [
    "CommissionTestCa",
    "DemoElection",
    "JpkiTestCa",
    "Resident",
    "RsaKeyPool",
    "TestCard",
    "TestResident",
    "make_residents",
    "roll_csv",
    "run_key_ceremony",
    "start_election",
    "tsukuba_manifest",
]
