"""The SQL of backing up and restoring: asked of the whole schema, not of one domain's tables.

A restore must not lose a record, whichever domain added the table it is in,
so these ask PostgreSQL's catalogue for every table rather than list them.
"""

from __future__ import annotations

APPLIED_MIGRATIONS = """
SELECT app_name || ':' || name AS migration FROM migration ORDER BY id
"""

SERVER_VERSION = "SHOW server_version"

PUBLIC_TABLES = """
SELECT tablename AS table_name FROM pg_tables
WHERE schemaname = 'public' AND tablename <> 'migration'
ORDER BY tablename
"""
"""Every table that can hold a record (the migrations' own bookkeeping aside)."""


def has_records(table: str) -> str:
    """Whether ``table`` (a name from ``PUBLIC_TABLES``) holds a row.

    A table's name cannot be a ``$1`` parameter; it comes from the catalogue,
    quoted as PostgreSQL's ``quote_ident`` would.
    """
    quoted = '"' + table.replace('"', '""') + '"'
    return f"SELECT EXISTS (SELECT 1 FROM public.{quoted}) AS found"  # noqa: S608 - quoted above


OTHER_CONNECTIONS = """
SELECT count(*) AS n
FROM pg_stat_activity
WHERE datname = current_database()
  AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
"""
"""Sessions a restore would pull the tables from under (a running ``inspire serve``)."""

# What psql runs, in the restore's one transaction, before the dump's own SQL.

LOCK_EVERY_TABLE = """
DO $$
DECLARE
    t text;
BEGIN
    SET LOCAL lock_timeout = '60s';
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
        EXECUTE format('LOCK TABLE public.%I IN ACCESS EXCLUSIVE MODE', t);
    END LOOP;
END
$$
"""
"""Held to the end of the restore, so no record can arrive between the check and the drop."""

RECORDS_FOUND = "inspire-restore: the database holds records"

REFUSE_IF_RECORDS = """
DO $$
DECLARE
    t text;
    found boolean;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables
             WHERE schemaname = 'public' AND tablename <> 'migration' LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM public.%I)', t) INTO found;
        IF found THEN
            RAISE EXCEPTION 'inspire-restore: the database holds records';
        END IF;
    END LOOP;
END
$$
"""
assert RECORDS_FOUND in REFUSE_IF_RECORDS  # the restore recognises its own refusal by it

DROP_SCHEMA = "DROP SCHEMA IF EXISTS public CASCADE"
"""Everything goes, not only what the backup holds: the dump recreates the schema whole,
and the migrations then add whatever a backup from an older version lacks."""

RESTORE_COMPLETE = "\nCREATE TEMPORARY TABLE inspire_restore_complete ();\n"
"""Written after pg_restore's SQL once pg_restore has finished without error."""

COMMIT_ONLY_IF_COMPLETE = "SELECT 'pg_temp.inspire_restore_complete'::regclass"
"""psql's last command: fails, so nothing is committed, unless ``RESTORE_COMPLETE`` arrived."""
