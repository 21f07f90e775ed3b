"""The ingest service (DOSIS-IN): agencies push dossier statuses."""
