"""DOSIS client package: the dosis.v1 contract and small helpers (dosis.client)."""
