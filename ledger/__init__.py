"""tvote ledger: the append-only, hash-chained public bulletin board (built on crypto/ only)."""
