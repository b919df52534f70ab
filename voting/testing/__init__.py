"""Test and demo scaffolding: NEVER for a real election.

Test certificate authorities (a JPKI stand-in issuing software My Number cards, a commission root with its
result-document signer), synthetic residents, the demo's manifest and roll file, a development OpenID
provider, a uvicorn server on loopback, an election started and opened in one call, and the whole key
ceremony and decryption run in one process: what the tests, ``tools/``, ``bench/`` and ``tvote demo`` /
``tvote rehearsal`` are made of.

Nothing of the server imports this package: only the tests, ``tools/``, ``bench/`` and, inside the command
function, the development commands of ``tvote`` (``demo``, ``rehearsal``) do
(``tests/system/test_layering.py`` holds the server to it, on the source and at run time).

* CAs and cards: :class:`JpkiTestCa`, :class:`CommissionTestCa`, :class:`TestCard`, :class:`TestResident`,
  :class:`RsaKeyPool` (a pool of RSA keys, so that thousands of cards do not each cost a key generation),
  :func:`new_rsa_key`, :func:`encode_jpki_birth_date`;
* residents and the election: :class:`Resident`, :func:`make_residents`, :func:`roll_csv`,
  :func:`tsukuba_manifest`, :func:`demo_settings`, :func:`start_election` (yields a :class:`DemoElection`,
  with :class:`DemoWitnesses` when asked for :data:`DEMO_WITNESSES`);
* digital ID: :class:`DevOidcProvider` (a real authlib provider on loopback) with :class:`DevClient`,
  :class:`DevSubject`, :data:`DEV_ACR`, :data:`DEV_TRUST_FRAMEWORK`; the demo's accounts and face captures
  (:func:`login_as`, :func:`demo_claims`, :func:`demo_live_capture`, :func:`demo_face_image`: a drawn
  stand-in picture per resident) and the TEST face engine that compares them, :class:`PerceptualTestMatcher`
  (:data:`TEST_FACE_ENGINE_ID`; liveness evidence in the booth's format: :func:`booth_liveness_evidence`);
* My Number card on the phone: :class:`DappEmulator` (the Digital Authentication App service on loopback,
  with test cards and their signing PINs, :data:`DAPP_TEST_PIN`);
* servers: :class:`LoopbackServer` (any ASGI app under uvicorn on ``127.0.0.1``);
* Chromium's fake camera: :func:`write_fake_camera_video` (a still picture as the camera's video);
* trustees: :func:`run_key_ceremony`, :func:`run_decryption` (every trustee of the election, in this
  process, over HTTP);
* the demo itself: :func:`run_demo` (``tvote demo``; :class:`ServeOptions` for ``tvote demo --serve``);
  the rehearsal kit is :mod:`voting.testing._rehearsal` (``tvote rehearsal``).
"""

from __future__ import annotations

from voting._commission_key import CommissionTestCa

from ._camera import FAKE_CAMERA_SIZE, write_fake_camera_video
from ._ceremony import run_decryption, run_key_ceremony
from ._dapp_emulator import DAPP_TEST_PIN, DappEmulator
from ._demo import DemoOutcome, ServeOptions, run_demo
from ._demo_election import (
    DEMO_WITNESS_QUORUM,
    DEMO_WITNESSES,
    DemoElection,
    DemoWitnesses,
    demo_settings,
    start_election,
)
from ._dev_oidc import (
    DEV_ACR,
    DEV_TRUST_FRAMEWORK,
    DEV_VERIFIED_SCOPE,
    DevClient,
    DevOidcProvider,
    DevSubject,
)
from ._faces import TEST_FACE_ENGINE_ID, PerceptualTestMatcher, booth_liveness_evidence
from ._loopback import LoopbackServer
from ._residents import (
    Resident,
    demo_claims,
    demo_face_image,
    demo_live_capture,
    login_as,
    make_residents,
    roll_csv,
    tsukuba_manifest,
)
from ._testca import (
    CRL_DISTRIBUTION_POINTS_UNIT,
    JpkiTestCa,
    RsaKeyPool,
    TestCard,
    TestResident,
    encode_jpki_birth_date,
    new_rsa_key,
)

__all__ = [
    "CRL_DISTRIBUTION_POINTS_UNIT",
    "DAPP_TEST_PIN",
    "DEMO_WITNESSES",
    "DEMO_WITNESS_QUORUM",
    "DEV_ACR",
    "DEV_TRUST_FRAMEWORK",
    "DEV_VERIFIED_SCOPE",
    "FAKE_CAMERA_SIZE",
    "TEST_FACE_ENGINE_ID",
    "CommissionTestCa",
    "DappEmulator",
    "DemoElection",
    "DemoOutcome",
    "DemoWitnesses",
    "DevClient",
    "DevOidcProvider",
    "DevSubject",
    "JpkiTestCa",
    "LoopbackServer",
    "PerceptualTestMatcher",
    "Resident",
    "RsaKeyPool",
    "ServeOptions",
    "TestCard",
    "TestResident",
    "booth_liveness_evidence",
    "demo_claims",
    "demo_face_image",
    "demo_live_capture",
    "demo_settings",
    "encode_jpki_birth_date",
    "login_as",
    "make_residents",
    "new_rsa_key",
    "roll_csv",
    "run_decryption",
    "run_demo",
    "run_key_ceremony",
    "start_election",
    "tsukuba_manifest",
    "write_fake_camera_video",
]
