-- The catalog owns its own store: a second database next to the dossier store.
CREATE DATABASE dosis_catalog OWNER dosis;
