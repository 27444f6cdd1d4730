"""The payload splunkd writes to stdin: read with bounds, check against its schema, settle defaults."""
import json
import os
import re
from typing import BinaryIO, NamedTuple, Optional

from . import schemas
from .destinations import WEBHOOK_SETTING, DestinationError, check_url, check_webhook_host
from .log import register_secret

# A payload carries one row and the configuration; anything near this size is not from splunkd.
MAX_PAYLOAD_BYTES = 1024 * 1024

DEFAULT_INDEX = "main"
DEFAULT_TIMEOUT = 10
DEFAULT_RETRIES = 3
DEFAULT_SPOOL_MAX_EVENTS = 10000
# What an HTTP header can carry as a credential: printable ASCII (http.client sends latin-1, and a line
# break would end the header).
_HEADER_SAFE = re.compile(r"^[\x20-\x7e]*$")


class PayloadError(Exception):
    """The payload cannot be used; the message says why, for the one ERROR line."""


class Settings(NamedTuple):
    index: str
    webhook_url: str
    webhook_allow_http: bool
    webhook_allow_private: bool
    webhook_secret: str
    webhook_ca_bundle: Optional[str]
    splunkd_ca_bundle: Optional[str]
    splunkd_tls_server_name: str
    timeout: int
    retries: int
    spool_max_events: int


class Payload(NamedTuple):
    server_uri: str
    session_key: str
    results_file: str
    results_link: str
    sid: str
    search_name: str
    app: str
    owner: str
    settings: Settings


def read_payload(stream: BinaryIO) -> Payload:
    raw = stream.read(MAX_PAYLOAD_BYTES + 1)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError("payload on stdin is larger than {} bytes".format(MAX_PAYLOAD_BYTES))
    if not raw.strip():
        raise PayloadError("no payload on stdin (splunkd sends JSON with payload_format = json)")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise PayloadError("payload on stdin is not JSON: {}".format(_first_line(e)))
    _register_secrets(document)
    problem = schemas.first_problem(schemas.validator("payload"), document)
    if problem:
        raise PayloadError("payload does not match its schema: " + problem)
    _check_header_safe("session_key", document["session_key"])
    try:
        check_url("server_uri", document["server_uri"])
    except DestinationError as e:
        raise PayloadError(str(e))
    return Payload(
        server_uri=document["server_uri"],
        session_key=document["session_key"],
        results_file=document["results_file"],
        results_link=document.get("results_link", ""),
        sid=document["sid"],
        search_name=document["search_name"],
        app=document["app"],
        owner=document["owner"],
        settings=_settings(document["configuration"]),
    )


def _register_secrets(document: object) -> None:
    """Mask the secrets before anything can log them, even a message about another field."""
    if not isinstance(document, dict):
        return
    candidates = [document.get("session_key")]
    if isinstance(document.get("configuration"), dict):
        candidates.append(document["configuration"].get("webhook_secret"))
    for candidate in candidates:
        if isinstance(candidate, str):
            register_secret(candidate)


def _check_header_safe(setting: str, secret: str) -> None:
    """A secret is sent in an Authorization header; one that a header cannot carry is a setting to
    fix, said without quoting it."""
    if not _HEADER_SAFE.match(secret):
        raise PayloadError("{}: holds a line break, a control character or a non-ASCII character, "
                           "which an HTTP header cannot carry".format(setting))


def _settings(config: dict) -> Settings:
    webhook_url = config.get("webhook_url", "").strip()
    allow_http = _flag(config, "webhook_allow_http")
    allow_private = _flag(config, "webhook_allow_private")
    if webhook_url:
        _check_webhook(webhook_url, allow_http, allow_private)
    webhook_secret = config.get("webhook_secret", "")
    _check_header_safe("configuration.webhook_secret", webhook_secret)
    return Settings(
        index=config.get("index") or DEFAULT_INDEX,
        webhook_url=webhook_url,
        webhook_allow_http=allow_http,
        webhook_allow_private=allow_private,
        webhook_secret=webhook_secret,
        webhook_ca_bundle=_ca_bundle(config, "webhook_ca_bundle"),
        splunkd_ca_bundle=_ca_bundle(config, "splunkd_ca_bundle"),
        splunkd_tls_server_name=config.get("splunkd_tls_server_name", "").strip(),
        timeout=int(config.get("timeout") or DEFAULT_TIMEOUT),
        retries=int(config.get("retries") or DEFAULT_RETRIES),
        spool_max_events=int(config.get("spool_max_events") or DEFAULT_SPOOL_MAX_EVENTS),
    )


def _flag(config: dict, key: str) -> bool:
    return config.get(key, "0") in ("1", "true")


def _check_webhook(url: str, allow_http: bool, allow_private: bool) -> None:
    if url.startswith("http://") and not allow_http:
        raise PayloadError("configuration.webhook_url: plain http:// is refused; use https:// or set "
                           "param.webhook_allow_http = 1")
    try:
        check_url(WEBHOOK_SETTING, url)
        if not allow_private:
            check_webhook_host(WEBHOOK_SETTING, url)
    except DestinationError as e:
        raise PayloadError(str(e))


def _ca_bundle(config: dict, key: str) -> Optional[str]:
    path = config.get(key, "").strip()
    if not path:
        return None
    if not os.path.isfile(path):
        raise PayloadError("configuration.{}: no CA bundle file at {}".format(key, path))
    return path


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
