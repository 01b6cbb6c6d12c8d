"""Logging that never carries personal data.

Our own log calls only ever pass ids, counts and type names. As a second line,
every record passes through ``PersonalDataFilter``, which masks anything shaped
like a date or a phone number before any handler writes it.
"""

from __future__ import annotations

import logging
import re

from litestar.logging.config import LoggingConfig

_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b")
_PHONE = re.compile(r"(?<![\w-])(?:\+?44\s?|0)(?:\d[\s-]?){9,10}(?![\w-])")


def mask(text: str) -> str:
    return _PHONE.sub("[phone]", _DATE.sub("[date]", text))


class PersonalDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def logging_config() -> LoggingConfig:
    return LoggingConfig(
        root={"level": "INFO", "handlers": ["queue_listener"]},
        filters={"personal_data": {"()": PersonalDataFilter}},
        handlers={
            "queue_listener": {
                "class": "litestar.logging.standard.QueueListenerHandler",
                "level": "DEBUG",
                "formatter": "standard",
                "filters": ["personal_data"],
            }
        },
        formatters={"standard": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        loggers={
            "programme": {"level": "INFO", "propagate": True},
            "referrals": {"level": "INFO", "propagate": True},
            "outcomes": {"level": "INFO", "propagate": True},
            "analysis": {"level": "INFO", "propagate": True},
            # pgserver logs whole pg_ctl command lines at INFO.
            "pgserver": {"level": "WARNING", "propagate": True},
        },
        log_exceptions="never",
    )
