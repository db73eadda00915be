"""The PROXY protocol (v1 and v2) on the ssh and https listeners, as behind an L4 balancer:
the real OpenSSH client through a relay that prepends the header (ssh -o ProxyCommand), real
curl (--haproxy-protocol for v1, through the relay for v2), the real sshd and JupyterHub behind.
The balancer is 127.0.0.77 (trusted); 127.0.0.78 is any other source."""

import os
import re
import socket
import subprocess
import sys
import time
import uuid

import pytest

import pool as P
import pprelay
from conftest import SLACK
from test_ssh_front import run_ssh, setup_env, untrust  # noqa: F401 (fixture)
from test_ssh_limits import all_audits, audits, metric, read_to_eof

LB, OTHER = "127.0.0.77", "127.0.0.78"
RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pprelay.py")
PP = {"ssh": True, "https": True, "http": True, "trusted": ["127.0.0.77/32", "10.0.0.0/8"],
      "timeout_ms": 1500}


def via_relay(e, kind, client="203.0.113.9:4242", bind=LB):
    cmd = "%s %s --connect 127.0.0.1:%d --bind %s --header %s --client %s" % (
        sys.executable, RELAY, e.port, bind, kind, client)
    return ["-o", "ProxyCommand=%s" % cmd]


def audit_for(g, pred, what, n=1):
    """The audit lines pred selects, once there are n (each is written when its connection's
    memory goes, a moment after the client has left)."""
    return P.poll(lambda: (lambda a: a if len(a) >= n else None)(
        [a for a in audits(g) if pred(a)]), 10, 0.1, what)


@pytest.fixture
def pp_env(pool, make_poolgate, tmp_path, untrust):
    return setup_env(pool, make_poolgate, tmp_path, top={"proxy_protocol": PP})


def test_ssh_v1_and_v2_name_the_client(pp_env):
    """The header's client is the session's source everywhere: poolgate's log prefix and
    audit line, and the certificate poolgate signs (its key id reaches the instance's log)."""
    e = pp_env
    for kind, client in (("v1", "203.0.113.9:4242"), ("v2", "[2001:db8::7]:5555")):
        r = run_ssh(e, "pgtest-alice", "echo ok", extra=via_relay(e, kind, client))
        assert (r.returncode, r.stdout) == (0, "ok\n"), (kind, r.stderr, e.g.log_tail(30))
        (a,) = audit_for(e.g, lambda a: a["src"] == client, "audit of %s" % client)
        assert a["user"] == "pgtest-alice" and a["auth"] == "publickey", a
        assert a["via"].startswith(LB + ":"), a
        assert a["_prefix"].split()[1] == client, a	# "ssh#N CLIENT user": every log line
    inst = [i for i in e.pool if i.id == e.g.user_instance("pgtest-alice")][0]
    with open(inst.sshd.log_path, errors="replace") as f:
        sshd_log = f.read()
    assert "pgtest-alice from 203.0.113.9:4242" in sshd_log
    assert "pgtest-alice from [2001:db8::7]:5555" in sshd_log
    assert metric(e.g, 'poolgate_ssh_proxy_headers_total{result="v1"}') == 1
    assert metric(e.g, 'poolgate_ssh_proxy_headers_total{result="v2"}') == 1


def test_ssh_local_and_unknown_keep_the_peer(pp_env):
    """v2 LOCAL (a balancer's own health check) and v1 UNKNOWN: the connection's own address."""
    e = pp_env
    for kind in ("v2-local", "v1-unknown"):
        r = run_ssh(e, "pgtest-alice", "echo ok", extra=via_relay(e, kind))
        assert (r.returncode, r.stdout) == (0, "ok\n"), (kind, r.stderr)
    lines = audit_for(e.g, lambda a: a["user"] == "pgtest-alice", "audits", 2)
    assert len(lines) == 2 and all(a["src"].startswith(LB + ":") for a in lines), lines
    assert all("via" not in a for a in lines), lines
    assert metric(e.g, 'poolgate_ssh_proxy_headers_total{result="local"}') == 2


def test_ssh_refusals_and_others_served(pp_env):
    """A header from an untrusted source, no header from the trusted one, malformed headers,
    a balancer that says nothing: each closed with a log line; the others are served."""
    e = pp_env
    g = e.g
    cases = [
        (via_relay(e, "v1", bind=OTHER), "PROXY protocol header from a source not in "
         "proxy_protocol.trusted"),
        (["-b", LB], "trusted source 127.0.0.77:"),
        (via_relay(e, "bad-v1"), "sent no valid header: v1: invalid IPv4 address"),
        (via_relay(e, "bad-v2"), "sent no valid header: v2: CRC32C mismatch"),
    ]
    for extra, needle in cases:
        mark = g.log_mark()
        r = run_ssh(e, "pgtest-alice", "echo should-not-run", extra=extra)
        assert r.returncode == 255 and "should-not-run" not in r.stdout, (extra, r.stderr)
        g.wait_log(lambda l, n=needle: n in l, 10, mark, needle)
        # Meanwhile everyone else is served: the balancer with a header, a direct client.
        r = run_ssh(e, "pgtest-bob", "echo ok", extra=via_relay(e, "v1", "198.51.100.7:7"))
        assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    r = run_ssh(e, "pgtest-bob", "echo ok", extra=["-b", OTHER])
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    # Raw: a silent balancer gets nothing (no ident before the header) and is cut at the
    # timeout; an oversized v2 and a v1 line without CRLF are cut at once.
    s = socket.socket()
    s.bind((LB, 0))
    s.connect(("127.0.0.1", e.port))
    t0 = time.monotonic()
    assert read_to_eof(s, 1.5 + SLACK) == b""
    assert time.monotonic() - t0 >= 1.3
    s.close()
    for raw in (pprelay.SIG + b"\x21\x11\xff\xff", b"PROXY TCP4 " + b"1" * 150):
        s = socket.socket()
        s.bind((LB, 0))
        s.connect(("127.0.0.1", e.port))
        s.sendall(raw)
        t0 = time.monotonic()
        assert read_to_eof(s, 1.0) == b""
        assert time.monotonic() - t0 < 1.0
        s.close()
    log = g.log()
    assert "PROXY protocol: no whole header within 1500 ms (proxy_protocol.timeout_ms)" in log
    assert "v2: header longer than poolgate accepts" in log
    assert "v1: no CRLF within 107 bytes" in log
    assert metric(g, 'poolgate_ssh_proxy_headers_total{result="untrusted"}') == 1
    assert metric(g, 'poolgate_ssh_proxy_headers_total{result="invalid"}') == 5
    assert metric(g, 'poolgate_ssh_proxy_headers_total{result="timeout"}') == 1
    # The refused connections have audit lines too, with the reason.
    reasons = [a["reason"] for a in all_audits(g)]
    assert reasons.count("invalid PROXY protocol header") == 5, reasons
    assert reasons.count("PROXY header from an untrusted source") == 1, reasons
    assert reasons.count("no PROXY protocol header in time") == 1, reasons


def test_ssh_limits_count_the_header_address(pool, make_poolgate, tmp_path, untrust):
    """Per-source limits apply to the client the header names, not to the balancer."""
    e = setup_env(pool, make_poolgate, tmp_path, top={"proxy_protocol": PP},
                  ssh={"limits": {"per_source_startups": 1}})
    socks = []
    try:
        for client in ("192.0.2.1:1", "192.0.2.2:2", "192.0.2.1:3"):
            s = socket.socket()
            s.bind((LB, 0))
            s.connect(("127.0.0.1", e.port))
            s.sendall(pprelay.v1(client, "127.0.0.1:%d" % e.port))
            socks.append(s)
        got = []
        for s in socks:
            s.settimeout(5)
            got.append(s.recv(64).startswith(b"SSH-2.0-poolgate"))
        assert got == [True, True, False], got
    finally:
        for s in socks:
            s.close()
    assert metric(e.g, 'poolgate_ssh_limit_refused_total{limit="per_source"}') == 1
    P.poll(lambda: [a for a in audits(e.g) if a["src"] == "192.0.2.1:3"
                    and a["reason"] == "per_source_startups"], 10, 0.1, "the refusal's audit")


# ---- HTTPS ----

def curl(url, ca, extra=(), timeout=20):
    return subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", ca, "-o", "/dev/null",
                           "-w", "%{http_code}"] + list(extra) + [url],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def pp_recorder(make_https_poolgate):
    """An https poolgate with the PROXY protocol on, before a recording HTTP server."""
    rec = P.RecordingHTTPServer("127.0.0.1")
    ssh = P.BlackholeServer("127.0.0.1", [P.free_port()])
    try:
        g = make_https_poolgate([{"id": "rec", "address": "127.0.0.1",
                                  "ssh_port": ssh.ports[0], "http_port": rec.port}],
                                health={"interval_ms": 400, "timeout_ms": 300, "rise": 1,
                                        "fall": 1, "jitter_pct": 0, "checks": ["tcp"]},
                                extra={"proxy_protocol": PP})
        g.wait_state("rec", "up", P.first_round_budget(g.health, SLACK)
                     + P.up_budget(g.health, SLACK))
        yield g, rec
    finally:
        ssh.close()
        rec.close()


def xff_of(rec, probe):
    for _, path, headers, _ in rec.requests:
        if probe in path:
            return dict((k.lower(), v) for k, v in headers.items()).get("x-forwarded-for")
    raise AssertionError("no request %s recorded" % probe)


def test_https_header_client_in_x_forwarded_for(pp_recorder, certs, promtool):
    g, rec = pp_recorder
    base = "https://127.0.0.1:%d" % g.https_port
    # curl's own v1 header (its real addresses) from the balancer.
    r = curl(base + "/hub/a?p=curl-v1", certs.ca, ["--haproxy-protocol", "--interface", LB])
    assert r.stdout == "200", r.stderr
    assert xff_of(rec, "p=curl-v1") == LB
    # Through the balancer relay: v1 and v2 (with TLVs and CRC32C) naming other clients.
    for kind, client, expect in (("v1", "198.51.100.23:1111", "198.51.100.23"),
                                 ("v2", "[2001:db8::23]:2222", "2001:db8::23")):
        relay = pprelay.Relay("127.0.0.1:%d" % g.https_port, LB, kind, client)
        try:
            r = curl("https://127.0.0.1:%d/hub/b?p=%s" % (relay.port, kind), certs.ca)
        finally:
            relay.close()
        assert r.stdout == "200", (kind, r.stderr, g.log_tail(20))
        assert xff_of(rec, "p=%s" % kind) == expect
    # Direct clients from elsewhere are served as themselves.
    r = curl(base + "/hub/c?p=direct", certs.ca, ["--interface", OTHER])
    assert r.stdout == "200", r.stderr
    assert xff_of(rec, "p=direct") == OTHER
    # The redirect listener takes the header too.
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w",
                        "%{http_code}", "--haproxy-protocol", "--interface", LB,
                        "http://127.0.0.1:%d/x" % g.http_port],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout == "301", r.stderr
    assert metric(g, 'poolgate_http_proxy_headers_total{listener="https",result="v1"}') == 2
    assert metric(g, 'poolgate_http_proxy_headers_total{listener="https",result="v2"}') == 1
    assert metric(g, 'poolgate_http_proxy_headers_total{listener="http",result="v1"}') == 1
    r = subprocess.run([promtool, "check", "metrics"], input=g.get("/metrics").text(),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_https_refusals_and_others_served(pp_recorder, certs):
    g, rec = pp_recorder
    base = "https://127.0.0.1:%d" % g.https_port
    for extra, needle in (
            (["--haproxy-protocol", "--interface", OTHER], "header from a source not in"),
            (["--interface", LB], "trusted source 127.0.0.77:")):
        mark = g.log_mark()
        r = curl(base + "/hub/x", certs.ca, extra)
        assert r.returncode != 0 and r.stdout in ("", "000"), (extra, r.stdout, r.stderr)
        g.wait_log(lambda l, n=needle: n in l, 10, mark, needle)
        r = curl(base + "/hub/ok", certs.ca)
        assert r.stdout == "200", r.stderr
    relay = pprelay.Relay("127.0.0.1:%d" % g.https_port, LB, "bad-v2", "192.0.2.9:9")
    try:
        r = curl("https://127.0.0.1:%d/hub/x" % relay.port, certs.ca)
    finally:
        relay.close()
    assert r.returncode != 0, r.stdout
    assert "v2: CRC32C mismatch" in g.log()
    assert metric(g, 'poolgate_http_proxy_headers_total{listener="https",result="untrusted"}') == 1
    assert metric(g, 'poolgate_http_proxy_headers_total{listener="https",result="invalid"}') == 2


def test_https_to_jupyterhub_sees_the_header_client(pool, make_https_poolgate, certs):
    """JupyterHub behind poolgate logs the client the balancer's header named (it reads
    X-Forwarded-For), for v1 and v2."""
    g = make_https_poolgate([i.config() for i in pool], extra={"proxy_protocol": PP})
    g.wait_for(P.all_up([i.id for i in pool]),
               P.first_round_budget(g.health, SLACK) + P.up_budget(g.health, SLACK))
    for kind, client, ip in (("v1", "198.51.100.42:4000", "198.51.100.42"),
                             ("v2", "[2001:db8::42]:4001", "2001:db8::42")):
        probe = "pp-%s-%s" % (kind, uuid.uuid4().hex)
        relay = pprelay.Relay("127.0.0.1:%d" % g.https_port, LB, kind, client)
        try:
            r = curl("https://127.0.0.1:%d/hub/login?probe=%s" % (relay.port, probe), certs.ca)
        finally:
            relay.close()
        assert r.stdout == "200", (r.stderr, g.log_tail(20))

        def hub_line():
            for inst in pool:
                with open(inst.hub.log_path, errors="replace") as f:
                    for line in f:
                        if probe in line:
                            return line
            return None
        line = P.poll(hub_line, 10, 0.1, "JupyterHub's log line for %s" % probe)
        assert re.search(r"\(@%s\)" % re.escape(ip), line), line
