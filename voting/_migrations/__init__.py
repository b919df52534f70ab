"""Alembic migrations of the service's database (package data; see docs/operator-guide.md)."""
