"""Every table of DOSIS, and the only code that touches one.

The dossier store (written by ingest, read by query: DossierStore in dossiers.py) and the
catalog's own store (CatalogStore in products.py). No module outside this package names a
table or runs SQL (tests/test_architecture.py), so how rows are kept (later: encrypted at
rest) changes here alone.
"""
