"""The alert action run: payload -> results -> ATT&CK-enriched events -> index and webhook, spool.

Exit codes (splunkd logs them): 0 every event delivered; 2 nothing done (bad payload or configuration,
results file, lookup, no spool location), found before anything is sent; 3 some events not delivered,
held in the spool for the next run (a destination failed, another run held the spool, or SIGTERM);
4 some events lost because the spool is full or its disk cannot be written (the ERROR line counts
them); 5 every event delivered, but some result rows could not be made into events and were skipped
(each named in an ERROR line).
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
from .spool import HeldEvent, Spool, SpoolError, SpoolWriteError, default_directory, lock_wait_seconds
from .stop import StopSignal, Stopped

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
    stop = StopSignal()
    stop.install()
    try:
        return run(stdin, stop)
    except (PayloadError, ResultsError, AttackError, SpoolError) as e:
        log.error("%s; nothing was delivered", e)
        return EXIT_NOTHING_DONE
    except Exception as e:  # a bug: one clear line rather than a traceback alone
        log.error("teredo_attack_context failed unexpectedly: %s: %s", type(e).__name__, e)
        return EXIT_NOTHING_DONE


def run(stdin: BinaryIO, stop: StopSignal) -> int:
    payload = read_payload(stdin)
    rows = read_results(payload.results_file)
    events = enriched_events(payload, rows)
    spool = Spool(default_directory(), payload.settings.spool_max_events)
    keeper = _Keeper(spool)
    try:
        with stop.interruptible():
            lock = spool.lock()
    except Stopped:
        lock = None
    except SpoolError as e:  # the events can still reach their destinations
        log.error("%s: delivering without it, so events not delivered cannot be kept", e)
        _deliver(payload, events, [], keeper, stop)
        return _outcome(keeper, stop, len(events) < len(rows))
    if lock is None:
        _keep_all(payload, events, keeper, stop)
    else:
        with lock:
            _deliver(payload, events, spool.held(), keeper, stop)
    return _outcome(keeper, stop, len(events) < len(rows))


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


class _Keeper:
    """Keeps undelivered events in the spool, and counts what it kept and what it could not keep:
    a spool that is full, or cannot be written (a full disk, a folder that cannot be made)."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.held = 0
        self.lost_to_full_spool = 0
        self.lost_to_write_error = 0
        self.write_error = ""

    def keep(self, held: Optional[HeldEvent], kind: str, target: dict, event: dict) -> None:
        if held is not None:
            self.held += 1  # already in the spool
            return
        try:
            if self.spool.keep(kind, target, event):
                self.held += 1
            else:
                self.lost_to_full_spool += 1
        except SpoolWriteError as e:
            self.lost_to_write_error += 1
            self.write_error = str(e)


def _index_target(payload: Payload) -> dict:
    return {"index": payload.settings.index, "source": "teredo_attack_context:" + payload.search_name}


def _keep_all(payload: Payload, events: List[dict], keeper: _Keeper, stop: StopSignal) -> None:
    """Without the lock (another run is delivering, or SIGTERM came first): keep every event for the
    next run, which delivers it."""
    if stop.requested:
        log.error("stopped by SIGTERM before delivering: this run's %d event(s) go to the spool",
                  len(events))
    else:
        log.error("spool %s stayed locked by another run for %g s: this run's %d event(s) go to the "
                  "spool, and the next run delivers them", keeper.spool.directory, lock_wait_seconds(),
                  len(events))
    for event in events:
        keeper.keep(None, "index", _index_target(payload), event)
        if payload.settings.webhook_url:
            keeper.keep(None, "webhook", {"webhook": webhook_fingerprint(payload.settings.webhook_url)},
                        event)


def _deliver(payload: Payload, events: List[dict], held: List[HeldEvent], keeper: _Keeper,
             stop: StopSignal) -> None:
    """Held events first, then this run's; at a destination's first failure, or SIGTERM, the rest
    for that destination go to the spool."""
    settings = payload.settings
    splunkd_http = delivery.session(settings.retries, payload.server_uri,
                                    settings.splunkd_tls_server_name)
    splunkd_ca = delivery.splunkd_ca_bundle(settings.splunkd_ca_bundle)

    index_tally = _Tally()
    index_queue = [(h, h.target, h.event) for h in held if h.kind == "index"]
    index_queue += [(None, _index_target(payload), e) for e in _not_yet_owed(events, index_queue)]

    def send_to_index(batch: List[Tuple[Optional[HeldEvent], dict, dict]]) -> None:
        _, target, event = batch[0]
        delivery.post_to_index(splunkd_http, payload.server_uri, payload.session_key, event,
                               target["index"], target["source"], splunkd_ca, settings.timeout)

    _drain(index_queue, 1, send_to_index, keeper, "index", index_tally, stop)
    log.info("index: %d event(s) delivered (%d from the spool)", index_tally.delivered,
             index_tally.from_spool)

    if settings.webhook_url:
        webhook_tally = _Tally()
        fingerprint = webhook_fingerprint(settings.webhook_url)
        webhook_queue = [(h, h.target, h.event) for h in held
                         if h.kind == "webhook" and h.target.get("webhook") == fingerprint]
        webhook_queue += [(None, {"webhook": fingerprint}, e)
                          for e in _not_yet_owed(events, webhook_queue)]

        webhook_http = delivery.webhook_session(settings.retries, settings.webhook_allow_private)

        def send_to_webhook(batch: List[Tuple[Optional[HeldEvent], dict, dict]]) -> None:
            delivery.post_to_webhook(webhook_http, settings.webhook_url, settings.webhook_secret,
                                     [event for _, _, event in batch], settings.webhook_ca_bundle,
                                     settings.timeout)

        _drain(webhook_queue, WEBHOOK_BATCH_SIZE, send_to_webhook, keeper, "webhook", webhook_tally,
               stop)
        log.info("webhook %s: %d event(s) delivered (%d from the spool)",
                 delivery.describe(settings.webhook_url), webhook_tally.delivered,
                 webhook_tally.from_spool)


def _outcome(keeper: _Keeper, stop: StopSignal, rows_skipped: bool) -> int:
    if stop.requested:
        log.error("stopped by SIGTERM: what was not delivered is in the spool")
    directory = keeper.spool.directory
    lost = keeper.lost_to_full_spool + keeper.lost_to_write_error
    if keeper.lost_to_write_error:
        log.error("%s: %d event deliveries could not be kept and are lost", keeper.write_error,
                  keeper.lost_to_write_error)
    if keeper.lost_to_full_spool:
        log.error("spool %s is full (spool_max_events = %d): %d event deliveries could not be kept and "
                  "are lost; fix the destination, or raise spool_max_events", directory,
                  keeper.spool.max_events, keeper.lost_to_full_spool)
    if lost:
        log.error("%d event deliveries lost in all; %d held in the spool %s", lost, keeper.held, directory)
        return EXIT_LOST
    if keeper.held:
        log.error("%d event deliveries held in the spool %s; the next run of this alert action "
                  "delivers them", keeper.held, directory)
        return EXIT_HELD
    return EXIT_ROWS_SKIPPED if rows_skipped else EXIT_OK


def webhook_fingerprint(url: str) -> str:
    """Spooled events name their webhook by this, never by its URL (which may hold a token)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _not_yet_owed(events: List[dict], held_queue: list) -> List[dict]:
    """Events of this run that the spool does not already hold for the destination (a rerun of the
    same alert rows): each is sent once, as the held copy."""
    held_ids = {event["event_id"] for _, _, event in held_queue}
    return [e for e in events if e["event_id"] not in held_ids]


def _drain(queue, batch_size, send, keeper: _Keeper, kind: str, tally: _Tally, stop: StopSignal) -> None:
    """Send the queue in order; at the first failure, or SIGTERM, stop and keep what was not sent."""
    for start in range(0, len(queue), batch_size):
        batch = queue[start:start + batch_size]
        try:
            with stop.interruptible():
                send(batch)
        except DeliveryError as e:
            log.error("%s", e)
            _keep_rest(queue[start:], keeper, kind)
            return
        except Stopped:
            _keep_rest(queue[start:], keeper, kind)
            return
        for held, _, _ in batch:
            if held is not None:
                keeper.spool.release(held)
                tally.from_spool += 1
        tally.delivered += len(batch)


def _keep_rest(remaining, keeper: _Keeper, kind: str) -> None:
    for held, target, event in remaining:
        keeper.keep(held, kind, target, event)
