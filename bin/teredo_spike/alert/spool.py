"""A bounded on-disk spool for events a destination did not take, delivered by a later run.

One JSON file per (destination kind, event): a file exists exactly while its delivery is owed, so an
event is sent again only until one run succeeds. Files appear atomically (write, then rename), and a
run holds an exclusive lock on the spool while it reads, delivers and removes, so two alert runs
never send the same held event twice.
"""
import contextlib
import json
import os
import time
from typing import Iterator, List, NamedTuple

from .log import get_logger

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

SPOOL_DIR_ENV = "TEREDO_ALERT_SPOOL_DIR"
LOCK_WAIT_SECONDS = 60


class SpoolError(Exception):
    """The spool cannot be used; the message says why."""


class HeldEvent(NamedTuple):
    path: str
    kind: str  # "index" or "webhook"
    target: dict
    event: dict


def default_directory() -> str:
    """$TEREDO_ALERT_SPOOL_DIR, else $SPLUNK_HOME/var/spool/teredo_spike/teredo_attack_context."""
    configured = os.environ.get(SPOOL_DIR_ENV)
    if configured:
        return configured
    splunk_home = os.environ.get("SPLUNK_HOME")
    if not splunk_home:
        raise SpoolError("neither {} nor SPLUNK_HOME is set: no place for undelivered events".format(
            SPOOL_DIR_ENV))
    return os.path.join(splunk_home, "var", "spool", "teredo_spike", "teredo_attack_context")


class Spool:
    def __init__(self, directory: str, max_events: int) -> None:
        self.directory = directory
        self.max_events = max_events

    @contextlib.contextmanager
    def locked(self) -> Iterator["Spool"]:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            lock = open(os.path.join(self.directory, ".lock"), "a+")
        except OSError as e:
            raise SpoolError("spool {} cannot be opened: {}".format(self.directory, e.strerror or e))
        try:
            _lock(lock, self.directory)
            yield self
        finally:
            lock.close()  # closing releases the lock

    def held(self) -> List[HeldEvent]:
        """Events held by earlier runs, oldest first. A damaged file is set aside as .bad."""
        held = []
        for name in self._names():
            path = os.path.join(self.directory, name)
            try:
                with open(path, encoding="utf-8") as f:
                    item = json.load(f)
                held.append((item["spooled_at"], name,
                             HeldEvent(path, item["kind"], item["target"], item["event"])))
            except (OSError, ValueError, KeyError, TypeError):
                os.replace(path, path + ".bad")
                get_logger().error("spool file %s is damaged and was set aside as %s.bad", path, name)
        return [h for _, _, h in sorted(held, key=lambda h: (h[0], h[1]))]

    def keep(self, kind: str, target: dict, event: dict) -> bool:
        """Hold an event for a later run; False when the spool is full."""
        name = "{}-{}.json".format(kind, event["event_id"])
        path = os.path.join(self.directory, name)
        if os.path.exists(path):
            return True  # already owed to this destination
        if len(self._names()) >= self.max_events:
            return False
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"kind": kind, "target": target, "event": event, "spooled_at": time.time()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True

    def release(self, held: HeldEvent) -> None:
        """The held event was delivered: it is owed no more."""
        os.remove(held.path)

    def _names(self) -> List[str]:
        return [n for n in os.listdir(self.directory) if n.endswith(".json")]


def _lock(lock_file, directory: str) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            if fcntl is not None:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                msvcrt.locking(lock_file.fileno(), msvcrt.LK_NBLCK, 1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SpoolError("spool {} stayed locked by another run for {} s".format(
                    directory, LOCK_WAIT_SECONDS))
            time.sleep(0.2)
