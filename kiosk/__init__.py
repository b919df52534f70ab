"""tvote polling-place kiosk: the ballot flow with a card reader and a printed QR receipt (``docs/kiosk.md``).

Public modules: :mod:`kiosk.card` (My Number card access through PKCS#11), :mod:`kiosk.cli` (``tvote-kiosk
init`` / ``serve``: the kiosk's key and its local service) and :mod:`kiosk.testing` (SoftHSM2 test tokens).
The service itself is private: ``_service`` (the state machine), ``_app`` (the local web API and its guard),
``_pollworker`` (the poll-worker PIN between opening and closing), ``_printing`` (receipt slip, zero and
closing reports), ``_state`` (the state directory), ``_errors`` (codes with Japanese and English messages).
None is imported here, so ``import kiosk`` needs no PKCS#11 library.
"""

__all__: list[str] = []
