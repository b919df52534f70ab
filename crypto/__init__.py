"""tvote cryptographic core (pure: no I/O)."""
