"""Test harness for the teredo_attack_context alert: real HTTP(S) servers (on 127.0.0.1 unless told),
a test CA, results files as splunkd writes them, and the alert run as splunkd runs it (subprocess,
--execute, JSON payload on stdin)."""
import csv
import datetime
import gzip
import http.server
import ipaddress
import json
import os
import ssl
import subprocess
import threading
import urllib.parse
from typing import Dict, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALERT_SCRIPT = os.path.join(REPO, "bin", "teredo_attack_context.py")
SESSION_KEY = "sk-9f1c2b7e4a5d6e8f0a1b2c3d4e5f6a7b8c9d0e1f"
WEBHOOK_SECRET = "whsec-3e4f5a6b7c8d9e0f1a2b3c4d"
# ---------------------------------------------------------------- TLS material, made at test time

class TlsFiles:
    def __init__(self, directory: str) -> None:
        self.ca_pem = os.path.join(directory, "ca.pem")
        self.cert_pem = os.path.join(directory, "server.pem")
        self.key_pem = os.path.join(directory, "server.key")


def make_tls(directory: str, ca_name: str, server_name: Optional[str] = None) -> TlsFiles:
    """A CA and a server certificate signed by it: for 127.0.0.1, or for server_name only."""
    os.makedirs(directory, exist_ok=True)
    files = TlsFiles(directory)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_subject).issuer_name(ca_subject)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name or "127.0.0.1")]))
            .issuer_name(ca_subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(server_name)] if server_name else
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(files.ca_pem, "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(files.cert_pem, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(files.key_pem, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return files


# ---------------------------------------------------------------- receiver and webhook servers

class Recorder(http.server.ThreadingHTTPServer):
    """splunkd's receivers/simple and a webhook in one server, recording what arrives.

    mode: "ok"; "error" (HTTP 500 always); "fail_first" (500 for the first `failures` requests);
    "hang" (read the request, never answer until the server stops). `delay` seconds pass before
    each request is handled; with a `gate`, each waits for the gate to be set (a destination that
    answers when the test says so, whatever the machine's load).
    """
    daemon_threads = True

    def __init__(self, mode: str = "ok", tls: Optional[TlsFiles] = None, failures: int = 0,
                 webhook_mode: Optional[str] = None, delay: float = 0.0,
                 webhook_secret: str = WEBHOOK_SECRET, address: str = "127.0.0.1",
                 gate: Optional[threading.Event] = None) -> None:
        super().__init__((address, 0), _Handler)
        self.mode = mode
        self.delay = delay  # seconds before each answer: a slow destination
        self.gate = gate
        self.arrived = 0  # requests read, answered or not
        self.webhook_secret = webhook_secret
        self.webhook_mode = webhook_mode or mode
        self.failures = failures
        self.requests = 0
        self.index_events: List[dict] = []
        self.index_params: List[Dict[str, List[str]]] = []
        self.webhook_batches: List[dict] = []
        self.rejected = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.scheme = "https" if tls else "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert_pem, tls.key_pem)
            self.socket = context.wrap_socket(self.socket, server_side=True)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return "{}://{}:{}".format(self.scheme, *self.server_address[:2])

    def __enter__(self) -> "Recorder":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gives up on TLS or on a hanging answer is part of the tests


class _Handler(http.server.BaseHTTPRequestHandler):
    server = None  # type: Recorder

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with server.lock:
            server.arrived += 1
        if server.delay and server.stopping.wait(server.delay):
            return
        if server.gate is not None:
            server.gate.wait(30)
        url = urllib.parse.urlsplit(self.path)
        is_receiver = url.path == "/services/receivers/simple"
        mode = server.mode if is_receiver else server.webhook_mode
        with server.lock:
            server.requests += 1
            failing = mode == "error" or (mode == "fail_first" and server.requests <= server.failures)
        if mode == "hang":
            server.stopping.wait(30)
            return
        if failing:
            return self._answer(500, b'{"text":"internal error"}')
        expected = "Splunk " + SESSION_KEY if is_receiver else "Bearer " + server.webhook_secret
        if self.headers.get("Authorization") != expected:
            with server.lock:
                server.rejected += 1
            return self._answer(401, b'{"text":"unauthorized"}')
        document = json.loads(body.decode("utf-8"))
        with server.lock:
            if is_receiver:
                server.index_events.append(document)
                server.index_params.append(urllib.parse.parse_qs(url.query))
            elif url.path == "/hook":
                server.webhook_batches.append(document)
            else:
                return self._answer(404, b"{}")
        self._answer(200, b'{"text":"Success"}')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def closed_port_uri() -> str:
    """A URI on 127.0.0.1 where nothing listens (the receiver is down)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return "http://127.0.0.1:{}".format(port)


# ---------------------------------------------------------------- results and payload

def spike_rows(count: int, first_host: int = 1) -> List[dict]:
    """Rows with the fields `| teredospike` emits (SPEC), multivalues as lists."""
    rows = []
    for i in range(first_host, first_host + count):
        rows.append({
            "_time": str(1700000000 + 600 * i), "episode_end": str(1700000600 + 600 * i),
            "episode_buckets": "2", "src": "10.0.0.{}".format(i), "is_spike": "1",
            "score": "{:.1f}".format(10 + i), "severity": "high", "risk_score": str(60 + i),
            "packets": str(12000 + i), "bytes": str(900000 + i), "flows": "14", "dests": "3",
            "baseline_packets": "20", "baseline_bytes": "2400", "first_seen": "0",
            "evidence": ["port", "prefix", "client_port"], "client_ports": ["3797"],
            "teredo_servers": ["65.55.158.118"], "relays": ["192.0.2.{}".format(i), "198.51.100.7"],
            "mapped": ["203.0.113.{}:40{:03d}".format(i, i)], "mitre_technique_id": "T1572",
            "reason": "packets 12,400 in 10m vs baseline 20 (z 14.2); 2 relay destinations via "
                      "client port 3797",
        })
    return rows


def splunk_home(tmp_path) -> str:
    """The $SPLUNK_HOME of a test: run_alert sets it, results_path puts files in its dispatch folder."""
    return os.path.join(str(tmp_path), "splunk")


def results_path(tmp_path, name: str) -> str:
    """Where splunkd writes a search's results: $SPLUNK_HOME/var/run/splunk/dispatch/<sid>/."""
    directory = os.path.join(splunk_home(tmp_path), "var", "run", "splunk", "dispatch", name)
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, "results.csv.gz")


def write_results(path: str, rows: List[dict]) -> str:
    """A gzipped CSV as splunkd writes results_file: every field F with its __mv_F column."""
    fields: List[str] = []
    for row in rows:
        fields += [f for f in row if f not in fields]
    header = []
    for field in fields:
        header += [field, "__mv_" + field]
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            cells = []
            for field in fields:
                value = row.get(field, "")
                if isinstance(value, list):
                    cells += ["\n".join(value), ";".join("$" + v.replace("$", "$$") + "$" for v in value)]
                else:
                    cells += [value, ""]
            writer.writerow(cells)
    return path


def payload(server_uri: str, results_file: str, sid: str = "scheduler__admin__teredo_spike__RMD5_1",
            **configuration: str) -> dict:
    return {
        "server_host": "sh1", "server_uri": server_uri, "session_key": SESSION_KEY,
        "results_file": results_file, "results_link": "https://sh1:8000/app/teredo_spike/@go?sid=" + sid,
        "sid": sid, "search_name": "Teredo Spike - Outbound Spike", "app": "teredo_spike",
        "owner": "admin", "configuration": dict({"index": "main", "timeout": "2", "retries": "1"},
                                                **configuration),
        "result": {},
    }


class AlertRun:
    def __init__(self, process: subprocess.CompletedProcess) -> None:
        self.returncode = process.returncode
        self.stdout = process.stdout
        self.stderr = process.stderr
        self.lines = process.stderr.splitlines()

    def errors(self) -> List[str]:
        return [line for line in self.lines if line.startswith("ERROR ")]


def alert_env(spool_dir: str) -> Dict[str, str]:
    """splunkd's environment for the action: SPLUNK_HOME beside the spool folder (see splunk_home)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TEREDO_ALERT_SPOOL_DIR": spool_dir,
            "SPLUNK_HOME": splunk_home(os.path.dirname(spool_dir)), "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1"}


def start_alert(python: str, spool_dir: str, args: Optional[List[str]] = None,
                script: str = ALERT_SCRIPT, **env: str) -> subprocess.Popen:
    """The alert as splunkd starts it (stdin, stdout and stderr piped); env adds to alert_env.
    script: the alert's script, or one that runs it (tests/scripted_dns_alert.py)."""
    return subprocess.Popen([python, script] + (["--execute"] if args is None else args),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(alert_env(spool_dir), **env), cwd=REPO)


def finish_alert(process: subprocess.Popen, stdin: bytes, spool_dir: str, timeout: float = 60,
                 secrets: Tuple[str, ...] = ()) -> "AlertRun":
    """Feed the payload, wait for the end; every run is also checked for leaked secrets (the
    harness's own, and `secrets`)."""
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    run = AlertRun(subprocess.CompletedProcess(process.args, process.returncode,
                                               stdout.decode("utf-8", "replace"),
                                               stderr.decode("utf-8", "replace")))
    assert_no_secrets(run.stderr + run.stdout, spool_dir, secrets)
    return run


def run_alert(python: str, stdin: bytes, spool_dir: str, args: Optional[List[str]] = None,
              timeout: float = 60, secrets: Tuple[str, ...] = (), script: str = ALERT_SCRIPT,
              **env: str) -> AlertRun:
    """The alert as splunkd runs it, to its end."""
    return finish_alert(start_alert(python, spool_dir, args, script, **env), stdin, spool_dir, timeout,
                        secrets)


def assert_no_secrets(output: str, spool_dir: str, secrets: Tuple[str, ...] = ()) -> None:
    for secret in (SESSION_KEY, WEBHOOK_SECRET) + tuple(secrets):
        assert secret not in output, "a secret reached the alert's log output"
        if os.path.isdir(spool_dir):
            for name in os.listdir(spool_dir):
                path = os.path.join(spool_dir, name)
                if os.path.isfile(path):
                    with open(path, encoding="utf-8", errors="replace") as f:
                        assert secret not in f.read(), "a secret reached the spool file " + name


def spooled(spool_dir: str) -> List[str]:
    return sorted(n for n in os.listdir(spool_dir) if n.endswith(".json")) if os.path.isdir(spool_dir) else []


def as_json(document: dict) -> bytes:
    return json.dumps(document).encode("utf-8")


