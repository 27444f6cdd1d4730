"""Logging to stderr in the form splunkd files under component=sendmodalert in splunkd.log.

splunkd takes the first word of each stderr line as the level (DEBUG, INFO, WARN, ERROR, FATAL).
Secrets (session key, webhook secret) are registered and masked in every line, whatever logs it:
first, on the whole message with its exception text, before anything else touches it (a line break
replaced first would split a secret that holds one, and it would no longer match).
"""
import json
import logging
import sys
from typing import List

LOGGER_NAME = "teredo_attack_context"
_MASK = "********"
# A secret's pieces between line breaks and quotes are masked too when at least this long: a message
# may hold a secret cut at such a character (a header split at its line break).
_MIN_PIECE = 4


class _RedactingFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: List[str] = []  # longest first, so a piece never masks part of a whole

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        for secret in self.secrets:
            message = message.replace(secret, _MASK)
        # splunkd knows WARN, not WARNING; one event per line, so no raw line breaks.
        level = "WARN" if record.levelno == logging.WARNING else record.levelname
        return level + " " + message.replace("\r\n", " | ").replace("\r", " | ").replace("\n", " | ")


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
    """Mask value in every line logged from now on: as it is, as repr() and JSON quote it, and
    its pieces between line breaks and quotes."""
    if not value:
        return
    forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             value.encode("unicode_escape").decode("ascii")}
    pieces = value
    for separator in ("\r", "\n", "'", '"'):
        pieces = pieces.replace(separator, "\0")
    forms.update(p for p in pieces.split("\0") if len(p) >= _MIN_PIECE)
    _formatter.secrets = sorted(set(_formatter.secrets) | forms, key=len, reverse=True)
