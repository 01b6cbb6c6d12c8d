"""Piccolo configuration: the engine built from settings, and the four apps."""

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

from programme.platform.database import database_url
from programme.platform.settings import get_settings

DB = PostgresEngine(
    config={"dsn": database_url()},
    # The engine's constructor checks the server version; no extensions are needed
    # because UUIDs come from gen_random_uuid(), built into PostgreSQL 13+.
    extensions=(),
)

POOL_MAX_SIZE = get_settings().pool_max_size

APP_REGISTRY = AppRegistry(
    apps=[
        "programme.platform.piccolo_app",
        "referrals.piccolo_app",
        "programme.delivery.piccolo_app",
        "outcomes.piccolo_app",
        "analysis.piccolo_app",
    ]
)
