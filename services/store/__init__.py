"""The dossier store shared by ingest (write side) and query (read side).

Every row is written and read through this package alone (later: encryption at rest).
"""
