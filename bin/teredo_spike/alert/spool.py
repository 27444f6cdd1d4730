"""A bounded on-disk spool for events a destination did not take, delivered by a later run.

One JSON file per (destination kind, event): a file exists exactly while its delivery is owed, so an
event is sent again only until one run succeeds. Files appear atomically (written under a name of
their own, then renamed), so writers need no lock: a run that cannot get the lock still keeps its
events. A run holds an exclusive lock on the spool while it reads, delivers and removes held events,
so two alert runs never send the same held event twice.
"""
import errno
import json
import os
import tempfile
import time
from typing import List, NamedTuple, Optional

from .log import get_logger

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

SPOOL_DIR_ENV = "TEREDO_ALERT_SPOOL_DIR"
LOCK_WAIT_ENV = "TEREDO_ALERT_SPOOL_LOCK_WAIT"
DEFAULT_LOCK_WAIT_SECONDS = 60
TMP_SUFFIX = ".tmp"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class SpoolError(Exception):
    """The spool cannot be used; the message says why."""


class SpoolWriteError(Exception):
    """An event could not be written to the spool (a full disk); the message says why."""


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


class SpoolLock:
    """This run's exclusive hold on the spool's held events; closing the file releases it."""

    def __init__(self, lock_file) -> None:
        self._file = lock_file

    def __enter__(self) -> "SpoolLock":
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()


class Spool:
    def __init__(self, directory: str, max_events: int) -> None:
        self.directory = directory
        self.max_events = max_events

    def lock(self) -> Optional[SpoolLock]:
        """The spool's lock, waiting up to lock_wait_seconds() for another run to finish; None when
        it did not."""
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            lock_file = open(os.path.join(self.directory, ".lock"), "a+")
        except OSError as e:
            raise SpoolError("spool {} cannot be opened: {}".format(self.directory, e.strerror or e))
        try:
            if _lock(lock_file, lock_wait_seconds()):
                return SpoolLock(lock_file)
        except BaseException:
            lock_file.close()
            raise
        lock_file.close()
        return None

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
        """Hold an event for a later run; False when the spool is full. Safe beside other writers
        and without the lock. SpoolWriteError when the file cannot be written; nothing is left."""
        name = "{}-{}.json".format(kind, event["event_id"])
        path = os.path.join(self.directory, name)
        document = json.dumps({"kind": kind, "target": target, "event": event, "spooled_at": time.time()})
        tmp = None
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            if os.path.exists(path):
                return True  # already owed to this destination
            if len(self._names()) >= self.max_events:
                return False
            handle, tmp = tempfile.mkstemp(prefix=name + ".", suffix=TMP_SUFFIX, dir=self.directory)
            with os.fdopen(handle, "w", encoding="utf-8") as f:
                f.write(document)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            tmp = None
        except OSError as e:
            remedy = "free space on its disk" if e.errno in _DISK_FULL else "make the folder writable"
            raise SpoolWriteError("spool {} cannot be written ({}; {})".format(
                self.directory, e.strerror or e, remedy))
        finally:
            if tmp is not None:
                _remove_quietly(tmp)
        return True

    def release(self, held: HeldEvent) -> None:
        """The held event was delivered: it is owed no more."""
        os.remove(held.path)

    def _names(self) -> List[str]:
        return [n for n in os.listdir(self.directory) if n.endswith(".json")]


def lock_wait_seconds() -> float:
    """How long a run waits for another to finish with the spool: $TEREDO_ALERT_SPOOL_LOCK_WAIT
    seconds, else 60."""
    try:
        return max(0.0, float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_SECONDS)))
    except ValueError:
        return DEFAULT_LOCK_WAIT_SECONDS


def _lock(lock_file, wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if fcntl is not None:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                msvcrt.locking(lock_file.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
