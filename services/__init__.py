"""DOSIS server side: the ingest, query and catalog services, their shared code and the CLI."""

__version__ = "0.1.0"
