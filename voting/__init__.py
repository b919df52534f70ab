"""tvote election service: manifests, voter authentication, ballot intake, trustees, result.

The package itself exports nothing; its public modules are :mod:`voting.app` (the FastAPI application),
:mod:`voting.cli` (``tvote``), :mod:`voting.clients` (the voter and trustee clients), :mod:`voting.api`
(the routers), :mod:`voting.auth` (voter authentication), :mod:`voting.result_pdf` (the result declaration)
and :mod:`voting.testing` (test and demo scaffolding, never for a real election).
"""

__all__: list[str] = []
