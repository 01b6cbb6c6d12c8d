from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from enum import Enum
from piccolo.columns.column_types import Varchar

ID = "2026-11-27T10:26:15:461763"
VERSION = "1.38.0"
DESCRIPTION = ""


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="programme", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="AuditEvent",
        tablename="audit_event",
        column_name="action",
        db_column_name="action",
        params={
            "choices": Enum(
                "AuditAction",
                {
                    "read": "read",
                    "create": "create",
                    "update": "update",
                    "delete": "delete",
                    "export": "export",
                    "login": "login",
                    "restore": "restore",
                },
            )
        },
        old_params={
            "choices": Enum(
                "AuditAction",
                {
                    "read": "read",
                    "create": "create",
                    "update": "update",
                    "delete": "delete",
                    "export": "export",
                    "login": "login",
                },
            )
        },
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
