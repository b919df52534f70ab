"""tvote election service: manifests, voter authentication, ballot intake, trustees, result."""
