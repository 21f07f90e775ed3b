"""The query service (DOSIS-UIT): what a logged-in person may see of an enterprise's dossiers."""
