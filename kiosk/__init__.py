"""tvote polling-place kiosk: the ballot flow with a card reader and a printed QR receipt.

Built so far: :mod:`kiosk.card` (My Number card access through PKCS#11) and :mod:`kiosk.testing` (SoftHSM2
test tokens); see ``docs/kiosk.md``. Neither is imported here, so ``import kiosk`` needs no PKCS#11 library.
"""

__all__: list[str] = []
