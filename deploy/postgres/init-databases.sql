-- Runs once, when the PostgreSQL data volume is first initialised
-- (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
-- One database per service: they share code, never tables.
CREATE DATABASE catalog;
CREATE DATABASE attribution;
