"""HTTP routers of the election service (thin: validation models in, service call, response model out).

* :mod:`voting.api.public`  — election info, manifest, joint key, key-ceremony state, result (no auth)
* :mod:`voting.api.admin`   — the commission's lifecycle operations (admin bearer token)
* :mod:`voting.api.trustee` — trustee registration, shares, complaints, answers, partial decryptions
* :mod:`voting.api.voter`   — ballot intake (ballot-intake engineer)
"""

__all__: list[str] = []
