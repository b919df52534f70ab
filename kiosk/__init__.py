"""tvote polling-place kiosk: the ballot flow with a card reader and a printed QR receipt."""

__all__: list[str] = []
