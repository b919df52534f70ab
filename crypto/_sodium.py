"""The ristretto255 calls of the system libsodium, through the maintained ``pysodium`` binding (private).

``pysodium`` binds the system's libsodium (``ctypes``; nothing is written to disk at import). Ristretto255
needs libsodium 1.0.18 or later. When the library is missing or too old, importing :mod:`crypto` fails
with :class:`ImportError` naming how to install it, not with a traceback from deep inside ``ctypes``.

Only the calls the group layer uses are re-exported, under short names:

* ``is_valid_point(p)``: RFC 9496 decoding succeeds (canonical, non-negative, square, ...); the identity
  ``00…00`` is valid;
* ``add(p, q)``, ``sub(p, q)``: group law on encodings;
* ``mul(n, p)``, ``mul_base(n)``: scalar multiplication; libsodium refuses (``ValueError`` here) when the
  result is the identity, so callers special-case a zero scalar and the identity point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

LIBSODIUM_HINT: Final[str] = (
    "tvote needs the system libsodium >= 1.0.18 (ristretto255), used through the pysodium binding. "
    "Install it with your package manager: Debian/Ubuntu `apt-get install libsodium23`, Fedora/RHEL "
    "`dnf install libsodium`, Alpine `apk add libsodium`, macOS `brew install libsodium`; then "
    "`pip install pysodium` (tvote's install does this)."
)

try:
    import pysodium as _ps

    _lib = _ps.sodium
    _lib.crypto_core_ristretto255_add  # noqa: B018 - present since libsodium 1.0.18
except (ImportError, OSError, AttributeError, TypeError) as _e:  # pragma: no cover - depends on the system
    raise ImportError(LIBSODIUM_HINT) from _e

__all__ = ["LIBSODIUM_HINT", "add", "is_valid_point", "mul", "mul_base", "sub"]

is_valid_point: Final[Callable[[bytes], bool]] = _ps.crypto_core_ristretto255_is_valid_point
add: Final[Callable[[bytes, bytes], bytes]] = _ps.crypto_core_ristretto255_add
sub: Final[Callable[[bytes, bytes], bytes]] = _ps.crypto_core_ristretto255_sub
mul: Final[Callable[[bytes, bytes], bytes]] = _ps.crypto_scalarmult_ristretto255
mul_base: Final[Callable[[bytes], bytes]] = _ps.crypto_scalarmult_ristretto255_base
