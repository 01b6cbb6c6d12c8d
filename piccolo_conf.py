"""Piccolo configuration: the engine and the apps.

Importing this starts nothing: the engine finds its database (a real server
from ``DATABASE_URL``, or the embedded one) on its first connection.
"""

from piccolo.conf.apps import AppRegistry

from programme.platform.database import DB

__all__ = ["APP_REGISTRY", "DB"]

APP_REGISTRY = AppRegistry(
    apps=[
        "programme.platform.piccolo_app",
        "referrals.piccolo_app",
        "programme.delivery.piccolo_app",
        "outcomes.piccolo_app",
        "analysis.piccolo_app",
    ]
)
