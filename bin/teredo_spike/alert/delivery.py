"""Delivery of enriched events: splunkd's receivers/simple endpoint and an optional webhook.

Both use requests with verified TLS, a timeout and retries with back-off. A POST that reached the
server but got no answer (read timeout) is not retried: the server may have stored it. Each has a
session of its own: the webhook's checks every address it connects to (destinations), splunkd's
(https://127.0.0.1:8089 as a rule) must not be.
"""
import json
import os
import re
import socket
from typing import List, Optional
from urllib.parse import urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter
from urllib3 import connection, connectionpool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection
from urllib3.util.retry import Retry

from .destinations import WEBHOOK_SETTING, DestinationError, public_addresses

SOURCETYPE = "teredo_spike:alert"
BACKOFF_FACTOR = 0.5
RETRY_STATUSES = (429, 500, 502, 503, 504)
USER_AGENT = "teredo_spike-teredo_attack_context"


class DeliveryError(Exception):
    """A destination did not take the events; the message names it without secrets."""


class _NamedServerAdapter(HTTPAdapter):
    """Checks the server certificate against a given name instead of the URL's host.

    Like sslCommonNameToCheck in Splunk's server.conf: splunkd's URI is https://127.0.0.1:8089, while
    its certificate names the host (or, by default, SplunkServerDefaultCert). The chain is verified
    as always.
    """

    def __init__(self, server_name: str, **kwargs) -> None:
        self.server_name = server_name  # set first: HTTPAdapter.__init__ builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["assert_hostname"] = self.server_name
        super().init_poolmanager(*args, **kwargs)


class _PublicOnlyConnectionMixin:
    """Resolves the host itself and connects only if destinations.public_addresses allows every
    address it resolves to.

    urllib3 resolves the name again when it connects, and the answer can differ from the one checked
    before sending (DNS rebinding), so the check is on the addresses actually connected to. Only the
    socket is made here: for HTTPS, urllib3's connect() then does TLS with self.host, the URL's name,
    as SNI and as the name the certificate must match, not the address.
    """

    def _new_conn(self) -> socket.socket:
        # _dns_host: the name as urllib3 itself resolves it (with a trailing dot, if the URL had one).
        try:
            addresses = public_addresses(WEBHOOK_SETTING, self._dns_host, self.port,
                                         allowed_gai_family())
        except (OSError, UnicodeError) as e:
            raise NewConnectionError(self, "Failed to establish a new connection: {}".format(e))
        options = {"source_address": self.source_address, "socket_options": self.socket_options}
        error: Optional[OSError] = None
        for _, _, _, _, sockaddr in addresses:
            try:
                # An address literal: create_connection's getaddrinfo does not ask DNS again.
                return create_connection((sockaddr[0], self.port), self.timeout, **options)
            except OSError as e:  # as create_connection does: the next address may answer
                error = e
        if isinstance(error, socket.timeout):
            raise ConnectTimeoutError(self, "Connection to {} timed out. (connect timeout={})".format(
                self.host, self.timeout))
        raise NewConnectionError(self, "Failed to establish a new connection: {}".format(
            error or "the resolver gave no address"))


class _PublicOnlyHTTPConnection(_PublicOnlyConnectionMixin, connection.HTTPConnection):
    pass


class _PublicOnlyHTTPSConnection(_PublicOnlyConnectionMixin, connection.HTTPSConnection):
    pass


class _PublicOnlyHTTPConnectionPool(connectionpool.HTTPConnectionPool):
    ConnectionCls = _PublicOnlyHTTPConnection


class _PublicOnlyHTTPSConnectionPool(connectionpool.HTTPSConnectionPool):
    ConnectionCls = _PublicOnlyHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    """Connects through the connection classes above (urllib3's pool_classes_by_scheme)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicOnlyHTTPConnectionPool,
                                                   "https": _PublicOnlyHTTPSConnectionPool}


def session(retries: int, splunkd_uri: str, splunkd_server_name: str) -> requests.Session:
    """splunkd's session for this run: retries with back-off, and its certificate name if given."""
    http = _session(HTTPAdapter(max_retries=_retry(retries)))
    if splunkd_server_name:
        http.mount(splunkd_uri.rstrip("/") + "/",
                   _NamedServerAdapter(splunkd_server_name, max_retries=_retry(retries)))
    return http


def webhook_session(retries: int, allow_private: bool) -> requests.Session:
    """The webhook's session: every connection checked by destinations.public_addresses, unless
    param.webhook_allow_private = 1. Used for the webhook alone, whatever its URL."""
    adapter = HTTPAdapter if allow_private else _PublicOnlyAdapter
    return _session(adapter(max_retries=_retry(retries)))


def _retry(retries: int) -> Retry:
    return Retry(total=retries, connect=retries, read=False, status=retries, other=0,
                 allowed_methods=frozenset(["POST"]), status_forcelist=RETRY_STATUSES,
                 backoff_factor=BACKOFF_FACTOR, raise_on_status=False)


def _session(adapter: HTTPAdapter) -> requests.Session:
    http = requests.Session()
    # No proxy, .netrc or CA bundle from the environment: what is verified is what is configured.
    http.trust_env = False
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    http.headers["User-Agent"] = USER_AGENT
    return http


def splunkd_ca_bundle(configured: Optional[str]) -> str:
    """The CA bundle that splunkd's certificate is checked against.

    By default Splunk's own CA ($SPLUNK_HOME/etc/auth/cacert.pem), which signs splunkd's default
    certificate, else the vendored certifi bundle.
    """
    if configured:
        return configured
    splunk_ca = os.path.join(os.environ.get("SPLUNK_HOME", ""), "etc", "auth", "cacert.pem")
    if os.environ.get("SPLUNK_HOME") and os.path.isfile(splunk_ca):
        return splunk_ca
    return certifi.where()


def describe(url: str) -> str:
    """scheme://host:port of a URL: what a log line may show (paths and queries can hold tokens)."""
    parts = urlsplit(url)
    return "{}://{}".format(parts.scheme, parts.hostname if parts.port is None
                            else "{}:{}".format(parts.hostname, parts.port))


def post_to_index(http: requests.Session, server_uri: str, session_key: str, event: dict,
                  index: str, source: str, ca_bundle: str, timeout: int) -> None:
    """One event to POST {server_uri}/services/receivers/simple."""
    url = server_uri.rstrip("/") + "/services/receivers/simple"
    params = {"index": index, "sourcetype": SOURCETYPE, "source": source}
    body = json.dumps(event, sort_keys=False, separators=(",", ":")).encode("utf-8")
    _post(http, url, "splunkd " + describe(server_uri), data=body, params=params,
          headers={"Authorization": "Splunk " + session_key, "Content-Type": "application/json"},
          verify=ca_bundle, timeout=timeout)


def post_to_webhook(http: requests.Session, url: str, secret: str, events: List[dict],
                    ca_bundle: Optional[str], timeout: int) -> None:
    """A batch of events as one JSON document: {"sender": ..., "count": n, "events": [...]}."""
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["Authorization"] = "Bearer " + secret
    body = json.dumps({"sender": USER_AGENT, "count": len(events), "events": events},
                      separators=(",", ":")).encode("utf-8")
    _post(http, url, "webhook " + describe(url), data=body, headers=headers,
          verify=ca_bundle or certifi.where(), timeout=timeout)


def _post(http: requests.Session, url: str, name: str, **kwargs) -> None:
    try:
        response = http.post(url, allow_redirects=False, **kwargs)
    except DestinationError as e:  # the webhook's name resolved to a refused address when connecting
        raise DeliveryError("{}: not connected: {}".format(name, e))
    except requests.exceptions.SSLError as e:
        raise DeliveryError("{}: TLS certificate not verified ({})".format(name, _reason(e)))
    except requests.exceptions.ConnectTimeout:
        raise DeliveryError("{}: connection timed out after {} s".format(name, kwargs["timeout"]))
    except requests.exceptions.ReadTimeout:
        raise DeliveryError("{}: no answer within {} s".format(name, kwargs["timeout"]))
    except requests.exceptions.RetryError as e:
        raise DeliveryError("{}: gave up after retries ({})".format(name, _reason(e)))
    except requests.exceptions.ConnectionError as e:
        raise DeliveryError("{}: cannot connect ({})".format(name, _reason(e)))
    except requests.exceptions.RequestException as e:
        raise DeliveryError("{}: request failed ({})".format(name, _reason(e)))
    if not 200 <= response.status_code < 300:
        raise DeliveryError("{}: HTTP {} {}{}".format(
            name, response.status_code, response.reason or "",
            " (the session key was refused)" if response.status_code == 401 and "splunkd" in name
            else ""))


def _reason(error: Exception) -> str:
    """The innermost cause, without the URL (its path or query may hold a token)."""
    cause: BaseException = error
    while True:
        inner = getattr(cause, "reason", None)
        if not isinstance(inner, BaseException) and cause.args and isinstance(cause.args[0], BaseException):
            inner = cause.args[0]
        if not isinstance(inner, BaseException) or inner is cause:
            break
        cause = inner
    # urllib3 prefixes its connection object's repr: "<...HTTPConnection object at 0x...>: ..."
    return re.sub(r"^<[^>]*>: ", "", str(cause))
