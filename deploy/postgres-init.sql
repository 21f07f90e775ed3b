-- Two roles: `dosis` (POSTGRES_USER) owns the schema and runs `dosis migrate`; `dosis_app`
-- is what the services log in as. `dosis migrate --grant-to dosis_app` gives it read/write
-- on dossiers and products, and on the audit trail INSERT and SELECT only (and retention
-- through prune_audit_events): a service cannot change or delete an audit event.
CREATE ROLE dosis_app LOGIN PASSWORD 'dosis_app';

-- The catalog owns its own store: a second database next to the dossier store.
CREATE DATABASE dosis_catalog OWNER dosis;
