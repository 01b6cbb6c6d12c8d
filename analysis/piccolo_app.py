"""Piccolo app for analysis."""

import os

from piccolo.conf.apps import AppConfig, table_finder

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="analysis",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=table_finder(modules=["analysis.tables"], exclude_imported=True),
    migration_dependencies=[
        "programme.platform.piccolo_app",
        "referrals.piccolo_app",
        "outcomes.piccolo_app",
        # The results cache's triggers watch the programme's length (the landmark).
        "programme.delivery.piccolo_app",
    ],
    commands=[],
)
