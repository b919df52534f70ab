"""The clients of the election server: they talk to its HTTP API and depend on the API's data shapes only.

* :mod:`voting.clients.voter`: the voter client (what the voter's browser does: prepare, challenge, cast,
  verify a receipt against the ledger);
* :mod:`voting.clients.trustee`: the trustee client (the key ceremony and the partial decryption, the
  trustee's passphrase-protected secret file).

Nothing here imports the server (its web framework, database layer, service, intake or authentication
verifiers): a voter's or a trustee's machine runs a client without the server's code
(``tests/system/test_layering.py`` holds it to that).
"""

from __future__ import annotations

__all__: list[str] = []
