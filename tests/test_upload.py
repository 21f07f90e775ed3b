"""No tests here any more: the UploadBatch tests are in tests/test_upload_*.py.

tests/test_telemetry.py still imports the CSV builders from here; once it imports them from
tests/upload_helpers.py, this module can go.
"""

from tests.upload_helpers import csv_bytes, requests, row

__all__ = ["csv_bytes", "requests", "row"]
