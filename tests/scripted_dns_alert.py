"""The alert action as splunkd runs it, with a scripted resolver in place of DNS.

DNS is the boundary a rebinding attack works across, so it is the one thing replaced: this script
patches socket.getaddrinfo in the alert's own process, then runs bin/teredo_attack_context.py as
__main__ (its vendored libraries, its action, its delivery code: nothing else is replaced).

$TEREDO_TEST_DNS is JSON: {"name": [answer, answer, ...]}. The n-th lookup of a name gets the n-th
answer (the last one again after that): a list of address literals, or null for a name that does not
resolve. Other names go to the real resolver. Each scripted lookup appends the name to
$TEREDO_TEST_DNS_LOG, if set, so that a test sees when the action asked.
"""
import json
import os
import runpy
import socket
import sys

ALERT_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin",
                            "teredo_attack_context.py")


def install(answers: dict, log_path: str) -> None:
    real = socket.getaddrinfo
    asked = {}

    def scripted(host, port, family=0, type=0, proto=0, flags=0):
        name = host.rstrip(".").lower() if isinstance(host, str) else host
        if name not in answers:
            return real(host, port, family, type, proto, flags)
        count = asked.get(name, 0)
        asked[name] = count + 1
        if log_path:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(name + "\n")
        answer = answers[name][min(count, len(answers[name]) - 1)]
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        found = []
        for address in answer:
            try:  # a literal: the real getaddrinfo makes the tuples without asking DNS
                found += real(address, port, family, type, proto, flags | socket.AI_NUMERICHOST)
            except socket.gaierror:
                pass  # not of the family asked for
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found

    socket.getaddrinfo = scripted


if __name__ == "__main__":
    install(json.loads(os.environ["TEREDO_TEST_DNS"]), os.environ.get("TEREDO_TEST_DNS_LOG", ""))
    sys.argv[0] = ALERT_SCRIPT
    runpy.run_path(ALERT_SCRIPT, run_name="__main__")
