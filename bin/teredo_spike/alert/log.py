"""Logging to stderr in the form splunkd files under component=sendmodalert in splunkd.log.

splunkd takes the first word of each stderr line as the level (DEBUG, INFO, WARN, ERROR, FATAL).
Secrets (session key, webhook secret) are registered and masked in every line, whatever logs it.
"""
import logging
import sys
from typing import List

LOGGER_NAME = "teredo_attack_context"
_MASK = "********"


class _RedactingFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(message)s")
        self.secrets: List[str] = []

    def format(self, record: logging.LogRecord) -> str:
        # splunkd knows WARN, not WARNING; one event per line, so no raw newlines.
        record.levelname = "WARN" if record.levelno == logging.WARNING else record.levelname
        line = super().format(record).replace("\r", " ").replace("\n", " | ")
        for secret in self.secrets:
            line = line.replace(secret, _MASK)
        return line


_formatter = _RedactingFormatter()


def get_logger() -> logging.Logger:
    """The alert's logger, writing one line per message to stderr."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_formatter)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    # urllib3's own log lines (retries, with URL paths that may hold a webhook token) stay unseen:
    # urllib3 gives its logger a NullHandler, and nothing here attaches another.
    return logger


def register_secret(value: str) -> None:
    """Mask value in every line logged from now on."""
    if value and value not in _formatter.secrets:
        _formatter.secrets.append(value)
