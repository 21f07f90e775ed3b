"""Generated from protos/dosis/v1 by scripts/generate_protos.py. Do not edit."""
