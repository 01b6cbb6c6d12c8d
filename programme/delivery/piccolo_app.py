"""Piccolo app for programme delivery: groups, sessions, the register.

It lives in ``programme/`` but is its own app because its tables refer to
referrals, which themselves refer to the core's accounts and agencies: one
app would make the migration dependencies circular.
"""

import os

from piccolo.conf.apps import AppConfig, table_finder

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="delivery",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=table_finder(modules=["programme.delivery.tables"], exclude_imported=True),
    migration_dependencies=["programme.platform.piccolo_app", "referrals.piccolo_app"],
    commands=[],
)
