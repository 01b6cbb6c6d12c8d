"""The audit trail is append-only: the database itself refuses to rewrite it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T13:46:17:929771"
VERSION = "1.38.0"
DESCRIPTION = "append_only_audit"

APPEND_ONLY = [
    """
    CREATE OR REPLACE FUNCTION audit_event_is_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$
    """,
    """
    CREATE TRIGGER audit_event_no_update_or_delete
        BEFORE UPDATE OR DELETE ON audit_event
        FOR EACH ROW EXECUTE FUNCTION audit_event_is_append_only()
    """,
    """
    CREATE TRIGGER audit_event_no_truncate
        BEFORE TRUNCATE ON audit_event
        FOR EACH STATEMENT EXECUTE FUNCTION audit_event_is_append_only()
    """,
    "CREATE INDEX audit_event_account_id ON audit_event (account_id)",
    "CREATE INDEX audit_event_occurred_at ON audit_event (occurred_at)",
]

REMOVE_APPEND_ONLY = [
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
    "DROP TRIGGER IF EXISTS audit_event_no_update_or_delete ON audit_event",
    "DROP FUNCTION IF EXISTS audit_event_is_append_only()",
    "DROP INDEX IF EXISTS audit_event_account_id",
    "DROP INDEX IF EXISTS audit_event_occurred_at",
]


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="programme", description=DESCRIPTION)

    async def append_only():
        for statement in APPEND_ONLY:
            await RawTable.raw(statement)

    async def remove_append_only():
        for statement in REMOVE_APPEND_ONLY:
            await RawTable.raw(statement)

    manager.add_raw(append_only)
    manager.add_raw_backwards(remove_append_only)
    return manager
