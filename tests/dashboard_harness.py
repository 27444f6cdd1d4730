"""The browser harness for the app's Dashboard Studio view (tests only, never packaged).

- `prepare()` installs the renderer's npm packages (tests/dashboard/package-lock.json, `npm ci`) into
  build/dashboard-harness, skipping the install while the lock's hash matches a stamp, and bundles
  tests/dashboard/src/harness.jsx with esbuild.
- `DashboardServer` serves the bundle, the view's definition (read from the app's XML) and POST
  /search on 127.0.0.1: each search the dashboard runs is answered by the local runner over the
  bundled sample plus the view's post-processing (tests/spl_results.py), and logged.
- `python -m tests.dashboard_harness` serves it for a look in a browser.
"""

import hashlib
import json
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List

from tests.spl_results import Row, UnsupportedSpl, answer, columns, split_search
from tests.splunk_conf import APP_ROOT, parse
from tools.readers import read_records
from tools.runner import run_search

SOURCE = APP_ROOT / "tests" / "dashboard"
WORK = APP_ROOT / "build" / "dashboard-harness"
VIEW = APP_ROOT / "default" / "data" / "ui" / "views" / "teredo_spike_overview.xml"
SAMPLE = APP_ROOT / "samples" / "enterprise_week.csv.gz"
CHROMIUM = "/usr/bin/chromium"
HARNESS_FILES = ("package.json", "package-lock.json", "build.mjs", "drive.mjs", "index.html", "src")


def _digest(paths: List[Path]) -> str:
    sha = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            sha.update(str(f.relative_to(SOURCE)).encode() + b"\0" + f.read_bytes())
    return sha.hexdigest()


def prepare() -> Path:
    """build/dashboard-harness with node_modules (npm ci, cached by the lock's hash) and
    dist/harness.js (rebuilt when the harness sources change). Returns that folder."""
    WORK.mkdir(parents=True, exist_ok=True)
    for name in HARNESS_FILES:
        source, target = SOURCE / name, WORK / name
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    lock_hash = _digest([SOURCE / "package-lock.json"])
    stamp = WORK / "npm.stamp"
    if not (WORK / "node_modules").is_dir() or not stamp.exists() or stamp.read_text() != lock_hash:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WORK, check=True,
                       stdout=subprocess.DEVNULL)
        stamp.write_text(lock_hash)
    bundle_hash = _digest([SOURCE / n for n in HARNESS_FILES])
    bundle_stamp = WORK / "bundle.stamp"
    if not (WORK / "dist" / "harness.js").exists() or not bundle_stamp.exists() \
            or bundle_stamp.read_text() != bundle_hash:
        subprocess.run(["node", "build.mjs"], cwd=WORK, check=True)
        bundle_stamp.write_text(bundle_hash)
    return WORK


def view_definition() -> Dict:
    """The view's Dashboard Studio JSON and its theme, as the XML wrapper holds them."""
    root = ET.parse(VIEW).getroot()
    return {"theme": root.get("theme", "light"), "definition": json.loads(root.find("definition").text)}


class SampleSearches:
    """Answers the view's searches over the bundled sample; teredospike runs once per argument list."""

    def __init__(self) -> None:
        self.macros = parse(APP_ROOT / "default" / "macros.conf")
        self.records = list(read_records(str(SAMPLE)))
        self._runs: Dict[str, List[Row]] = {}
        self._locks: Dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.log: List[Dict] = []  # every search answered: query, rows, error

    def teredospike(self, arguments: List[str]) -> List[Row]:
        key = " ".join(arguments)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._runs:
                result = run_search(self.records, args=arguments, chunk_size=2500, partitions=1)
                errors = [m for m in result.messages if m[0] == "ERROR"]
                if errors:
                    raise RuntimeError("teredospike %s: %s" % (key, errors))
                self._runs[key] = result.rows
            return self._runs[key]

    def warm(self, queries: List[str]) -> None:
        """Run teredospike for every distinct argument list of `queries`, in parallel."""
        argument_lists = {tuple(split_search(q, self.macros)[0]) for q in queries}
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda args: self.teredospike(list(args)), argument_lists))

    def answer(self, query: str) -> Dict:
        try:
            rows = answer(query, self.macros, self.teredospike, time.time())
        except (UnsupportedSpl, RuntimeError) as e:
            self.log.append({"query": query, "rows": None, "error": str(e)})
            raise
        self.log.append({"query": query, "rows": len(rows), "error": None})
        fields, cols = columns(rows)
        return {"fields": fields, "columns": cols}


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, harness: Path, searches: SampleSearches) -> None:
        self.harness = harness
        self.searches = searches
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/" % self.server_address[1]


# The splunkd answers that the time range input asks splunkweb for (window.$C in index.html points
# it here): the user's capabilities and the time presets, as splunkd's JSON output shapes them.
SPLUNKD = {
    "/splunkd/__raw/services/authentication/current-context": {
        "entry": [{"content": {"username": "admin", "capabilities": ["search"]}}]},
    "/splunkd/__raw/services/data/ui/times": {"entry": [
        {"name": name, "content": {"label": label, "earliest_time": earliest, "latest_time": "now",
                                   "order": order, "disabled": False}}
        for order, (name, label, earliest) in enumerate([
            ("last_24h", "Last 24 hours", "-24h@h"), ("last_7d", "Last 7 days", "-7d@h"),
            ("last_14d", "Last 14 days", "-14d@h"), ("last_30d", "Last 30 days", "-30d@d")])]},
}


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    STATIC = {"/": ("index.html", "text/html"), "/harness.js": ("dist/harness.js", "text/javascript"),
              "/harness.css": ("dist/harness.css", "text/css")}

    def log_message(self, *args) -> None:  # quiet; the searches have their own log
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path in SPLUNKD:
            self._send(200, json.dumps(SPLUNKD[path]).encode(), "application/json")
        elif self.path == "/definition.json":
            self._send(200, json.dumps(view_definition()).encode(), "application/json")
        elif self.path in self.STATIC:
            name, content_type = self.STATIC[self.path]
            self._send(200, (self.server.harness / name).read_bytes(), content_type)
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        if self.path != "/search":
            self._send(404, b"not found", "text/plain")
            return
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            body, status = self.server.searches.answer(request["query"]), 200
        except (UnsupportedSpl, RuntimeError) as e:
            body, status = {"error": str(e)}, 500
        self._send(status, json.dumps(body).encode(), "application/json")


def data_source_queries() -> Dict[str, str]:
    return {name: ds["options"]["query"] for name, ds in view_definition()["definition"]["dataSources"].items()}


if __name__ == "__main__":
    searches = SampleSearches()
    server = DashboardServer(prepare(), searches)
    print("serving %s (Ctrl-C stops)" % server.url, flush=True)
    server.serve_forever()
