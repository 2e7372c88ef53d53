#!/usr/bin/python3
"""Runs peer.py's server against peer.py's client for every transport and protocol and every
case, and checks the answers: the Python peers agree with each other before Meridian is put
between them. Run: /usr/bin/python3 test/thrift/interop/selfcheck.py  (exits 1 on a mismatch)."""

import base64
import json
import os
import subprocess
import sys
import time

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer.py")
PY = "/usr/bin/python3"

FULL = {
    "flag": True,
    "tiny": -128,
    "small": 32767,
    "medium": -2147483648,
    "big": "9223372036854775807",
    "ratio": 6.02214076e23,
    "text": "h\u00e9llo, \u4e16\u754c \U0001F680",
    "blob": base64.b64encode(bytes(range(256))).decode("ascii"),
    "numbers": [0, -1, 2147483647],
    "tags": ["a", "b", "\u00fc"],
    "counts": {"": "0", "max": "9223372036854775807", "min": "-9223372036854775808"},
    "pointsById": [[-5, {"x": 1, "y": 2}], [7, {"x": -3, "y": 4}]],
    "origin": {"x": 0, "y": 0},
    "chain": {"label": "a", "next": {"label": "b", "next": {"label": "c"}}},
    "color": 10,
    "shape": {"radius": 2.5},
    "id": "everything-1",
    "note": "optional, present",
    "limit": 9,
    "greeting": "hi",
    "createdAt": "1700000000000",
    "path": [{"x": 1, "y": 1}, {"x": 2}],
    "palette": [1, 2, 10, 2],
    "groups": {"empty": [], "team": ["x", "y"]},
    "extra": "",
    "defaultColor": 1,
}
DEFAULTS = {"limit": 7, "greeting": "hello", "defaultColor": 2}

failures = 0


def check(label, got, want):
    global failures
    ok = got == want
    if not ok:
        failures += 1
        print("FAIL %s\n  got:  %s\n  want: %s" % (label, json.dumps(got), json.dumps(want)))
    return ok


def client(port, transport, protocol, case, arg=None, extra=()):
    cmd = [PY, PEER, "client", "--port", str(port), "--transport", transport,
           "--protocol", protocol, "--case", case]
    if arg is not None:
        cmd += ["--json", json.dumps(arg)]
    cmd += list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if p.returncode != 0 or len(p.stdout.splitlines()) != 1:
        raise SystemExit("client %s exited %d: %s %s" % (cmd, p.returncode, p.stdout, p.stderr))
    return json.loads(p.stdout), p.stdout


def run_cases(port, transport, protocol, tag):
    n = 0
    label = "%s %s/%s" % (tag, transport, protocol)
    n += check(label + " ping", client(port, transport, protocol, "ping")[0], {"result": "pong"})
    n += check(label + " add", client(port, transport, protocol, "add", {"a": 2147483647, "b": "-9223372036854775808"})[0],
               {"result": str(2147483647 - 9223372036854775808)})
    n += check(label + " echo full", client(port, transport, protocol, "echo", FULL)[0], {"result": FULL})
    got, raw = client(port, transport, protocol, "echo", {"id": "m", "ratio": -0.0, "big": 5, "shape": {"point": {"x": 1}}})
    n += check(label + " echo defaults", got, {"result": dict({"id": "m", "ratio": -0.0, "big": "5", "shape": {"point": {"x": 1}}}, **DEFAULTS)})
    n += check(label + " echo -0.0 text", '"ratio":-0.0' in raw, True)
    # null: not written by the client; the server decodes it as the IDL default again
    n += check(label + " echo null default", client(port, transport, protocol, "echo", {"id": "u", "limit": None, "greeting": None})[0],
               {"result": dict({"id": "u"}, **DEFAULTS)})
    n += check(label + " echo non-finite", client(port, transport, protocol, "echo", {"id": "n", "ratio": "NaN", "shape": {"radius": "-Infinity"}})[0],
               {"result": dict({"id": "n", "ratio": "NaN", "shape": {"radius": "-Infinity"}}, **DEFAULTS)})
    n += check(label + " fail 1", client(port, transport, protocol, "fail", {"why": "no such key", "code": 1})[0],
               {"error": {"type": "NotFound", "message": "no such key", "fields": {"message": "no such key"}}})
    n += check(label + " fail 2", client(port, transport, protocol, "fail", {"why": "bad input", "code": 2})[0],
               {"error": {"type": "Invalid", "message": "Invalid(reason='bad input', code=2)", "fields": {"reason": "bad input", "code": 2}}})
    n += check(label + " fail 3", client(port, transport, protocol, "fail", {"why": "boom", "code": 3})[0],
               {"error": {"type": "TApplicationException", "message": "Internal error", "fields": {"type": 6}}})
    event = "event-%s-%s-%s-%d" % (tag.replace(" ", "_"), transport, protocol, time.time_ns())
    n += check(label + " notify", client(port, transport, protocol, "notify", {"event": event})[0], {"result": event})
    n += check(label + " lastNotified", client(port, transport, protocol, "lastNotified")[0], {"result": event})
    got = client(port, transport, protocol, "sleep", {"ms": 50})[0]
    n += check(label + " sleep", (got.get("result", "missing"), got.get("elapsedMs", 0) >= 50), (None, True))
    got = client(port, transport, protocol, "sleep", {"ms": 1000}, ["--timeout-ms", "200"])[0]
    n += check(label + " sleep timeout", (got.get("error", {}).get("type"), got.get("error", {}).get("fields", {}).get("inner")),
               ("TTransportException", "TimeoutError: timed out"))
    if transport == "header":
        n += check(label + " headers", client(port, transport, protocol, "headers",
                                              {"x-region-id": "eu", "x-consistency-level": "linearizable"})[0],
                   {"result": {"x-region-id": "eu", "x-consistency-level": "linearizable"},
                    "responseHeaders": {"x-served-region": "py"}})
        n += check(label + " headers none", client(port, transport, protocol, "headers", {})[0],
                   {"result": {}, "responseHeaders": {"x-served-region": "py"}})
    else:
        n += check(label + " headers (no THeader)", client(port, transport, protocol, "headers")[0],
                   {"result": {}, "responseHeaders": None})
    return n


def main():
    total = 0
    servers = [("header", "binary"), ("header", "compact"), ("framed", "binary"), ("framed", "compact"),
               ("buffered", "binary"), ("buffered", "compact")]
    for s_transport, s_protocol in servers:
        proc = subprocess.Popen([PY, PEER, "server", "--transport", s_transport, "--protocol", s_protocol,
                                 "--port", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        assert line.startswith("listening "), line
        port = int(line.split()[1])
        if s_transport == "header":  # a THeader server also answers framed and unframed clients
            clients = [(t, p) for t in ("header", "framed", "buffered") for p in ("binary", "compact")]
        else:
            clients = [(s_transport, s_protocol)]
        for c_transport, c_protocol in clients:
            n = run_cases(port, c_transport, c_protocol, "server %s/%s, client" % (s_transport, s_protocol))
            total += n
            print("server %-8s %-7s  client %-8s %-7s  %2d checks passed" % (s_transport, s_protocol, c_transport, c_protocol, n))
        proc.stdin.close()  # the server must exit by itself at stdin EOF
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "still running 5 s after stdin closed"
        rest = proc.stdout.read()  # nothing after the "listening" line
        check("server %s/%s exit at stdin EOF" % (s_transport, s_protocol), (code, rest), (0, ""))
        print("server %-8s %-7s  exited %s after stdin EOF" % (s_transport, s_protocol, code))
    print("%d checks passed, %d failed" % (total, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
