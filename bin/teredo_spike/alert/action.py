"""The alert action run: payload -> results -> ATT&CK-enriched events -> index and webhook, spool.

Exit codes (splunkd logs them): 0 every event delivered; 2 nothing done (bad payload, results file,
lookup or spool location); 3 some events not delivered, held in the spool for the next run;
4 some events lost because the spool is full; 5 every event delivered, but some result rows could
not be made into events and were skipped (each named in an ERROR line).
"""
import hashlib
from typing import BinaryIO, List, Optional, Tuple

from . import delivery, schemas
from .attack import AttackError, load_techniques, technique
from .delivery import DeliveryError
from .enrich import AlertInfo, enrich, technique_id_of
from .log import get_logger
from .payload import Payload, PayloadError, read_payload
from .results import ResultsError, read_results
from .spool import HeldEvent, Spool, SpoolError, default_directory

EXIT_OK = 0
EXIT_NOTHING_DONE = 2
EXIT_HELD = 3
EXIT_LOST = 4
EXIT_ROWS_SKIPPED = 5
WEBHOOK_BATCH_SIZE = 500

log = get_logger()


def main(argv: List[str], stdin: BinaryIO) -> int:
    if argv != ["--execute"]:
        log.error("teredo_attack_context is a Splunk alert action: splunkd runs it with --execute "
                  "and a JSON payload on stdin")
        return EXIT_NOTHING_DONE
    try:
        return run(stdin)
    except (PayloadError, ResultsError, AttackError, SpoolError) as e:
        log.error("%s; nothing was delivered", e)
        return EXIT_NOTHING_DONE
    except Exception as e:  # a bug: one clear line rather than a traceback alone
        log.error("teredo_attack_context failed unexpectedly: %s: %s", type(e).__name__, e)
        return EXIT_NOTHING_DONE


def run(stdin: BinaryIO) -> int:
    payload = read_payload(stdin)
    rows = read_results(payload.results_file)
    events = enriched_events(payload, rows)
    spool = Spool(default_directory(), payload.settings.spool_max_events)
    with spool.locked():
        outcome = _deliver(payload, events, spool)
    if outcome == EXIT_OK and len(events) < len(rows):
        return EXIT_ROWS_SKIPPED
    return outcome


def enriched_events(payload: Payload, rows: List[dict]) -> List[dict]:
    techniques = load_techniques()
    alert = AlertInfo(payload.search_name, payload.sid, payload.app, payload.owner, payload.results_link)
    event_schema = schemas.validator("event")
    events = []
    for number, row in enumerate(rows, 1):
        try:
            event = enrich(row, number, alert, technique(techniques, technique_id_of(row)))
        except AttackError as e:
            log.error("result row %d skipped: %s", number, e)
            continue
        problem = schemas.first_problem(event_schema, event)
        if problem:
            log.error("result row %d skipped: its event does not match the event schema: %s", number,
                      problem)
            continue
        events.append(event)
    skipped = len(rows) - len(events)
    if skipped:
        log.error("%d of %d result rows skipped (see the lines above)", skipped, len(rows))
    return events


class _Tally:
    def __init__(self) -> None:
        self.delivered = 0
        self.from_spool = 0
        self.held = 0
        self.lost = 0


def _deliver(payload: Payload, events: List[dict], spool: Spool) -> int:
    settings = payload.settings
    http = delivery.session(settings.retries, payload.server_uri, settings.splunkd_tls_server_name)
    held = spool.held()
    splunkd_ca = delivery.splunkd_ca_bundle(settings.splunkd_ca_bundle)
    source = "teredo_attack_context:" + payload.search_name

    index_tally = _Tally()
    index_queue = [(h, h.target, h.event) for h in held if h.kind == "index"]
    index_queue += [(None, {"index": settings.index, "source": source}, e)
                    for e in _not_yet_owed(events, index_queue)]

    def send_to_index(batch: List[Tuple[Optional[HeldEvent], dict, dict]]) -> None:
        _, target, event = batch[0]
        delivery.post_to_index(http, payload.server_uri, payload.session_key, event, target["index"],
                               target["source"], splunkd_ca, settings.timeout)

    _drain(index_queue, 1, send_to_index, spool, "index", index_tally)
    log.info("index: %d event(s) delivered (%d from the spool)", index_tally.delivered,
             index_tally.from_spool)

    webhook_tally = _Tally()
    if settings.webhook_url:
        fingerprint = webhook_fingerprint(settings.webhook_url)
        webhook_queue = [(h, h.target, h.event) for h in held
                         if h.kind == "webhook" and h.target.get("webhook") == fingerprint]
        webhook_queue += [(None, {"webhook": fingerprint}, e)
                          for e in _not_yet_owed(events, webhook_queue)]

        def send_to_webhook(batch: List[Tuple[Optional[HeldEvent], dict, dict]]) -> None:
            delivery.post_to_webhook(http, settings.webhook_url, settings.webhook_secret,
                                     [event for _, _, event in batch], settings.webhook_ca_bundle,
                                     settings.timeout)

        _drain(webhook_queue, WEBHOOK_BATCH_SIZE, send_to_webhook, spool, "webhook", webhook_tally)
        log.info("webhook %s: %d event(s) delivered (%d from the spool)",
                 delivery.describe(settings.webhook_url), webhook_tally.delivered,
                 webhook_tally.from_spool)

    held_total = index_tally.held + webhook_tally.held
    lost_total = index_tally.lost + webhook_tally.lost
    if lost_total:
        log.error("spool %s is full (spool_max_events = %d): %d event deliveries could not be kept and "
                  "are lost; fix the destination, or raise spool_max_events", spool.directory,
                  spool.max_events, lost_total)
        return EXIT_LOST
    if held_total:
        log.error("%d event deliveries held in the spool %s; the next run of this alert action "
                  "delivers them", held_total, spool.directory)
        return EXIT_HELD
    return EXIT_OK


def webhook_fingerprint(url: str) -> str:
    """Spooled events name their webhook by this, never by its URL (which may hold a token)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _not_yet_owed(events: List[dict], held_queue: list) -> List[dict]:
    """Events of this run that the spool does not already hold for the destination (a rerun of the
    same alert rows): each is sent once, as the held copy."""
    held_ids = {event["event_id"] for _, _, event in held_queue}
    return [e for e in events if e["event_id"] not in held_ids]


def _drain(queue, batch_size, send, spool: Spool, kind: str, tally: _Tally) -> None:
    """Send the queue in order; at the first failure stop, and hold what was not sent."""
    for start in range(0, len(queue), batch_size):
        batch = queue[start:start + batch_size]
        try:
            send(batch)
        except DeliveryError as e:
            log.error("%s", e)
            _hold(queue[start:], spool, kind, tally)
            return
        for held, _, _ in batch:
            if held is not None:
                spool.release(held)
                tally.from_spool += 1
        tally.delivered += len(batch)


def _hold(remaining, spool: Spool, kind: str, tally: _Tally) -> None:
    for held, target, event in remaining:
        if held is not None:
            tally.held += 1  # already in the spool
        elif spool.keep(kind, target, event):
            tally.held += 1
        else:
            tally.lost += 1
