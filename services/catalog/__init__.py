"""The catalog service: IPDC products, the supplier check and the status code list."""
