"""What poolgate's https front door refuses: request smuggling shapes (llhttp's lenient flags
off), oversized heads, too many headers, long request lines, slowloris, too many connections.
After each, an ordinary request through the same poolgate still reaches JupyterHub, and no
smuggled request ever reached a hub."""

import socket
import ssl
import time
import uuid

import pytest

import pool as P
from conftest import SLACK

HTTP = {"header_timeout_ms": 1000, "max_header_bytes": 16384, "max_headers": 100}


@pytest.fixture
def gate(pool, make_https_poolgate):
    g = make_https_poolgate([i.config() for i in pool], http=HTTP)
    g.wait_for(P.all_up([i.id for i in pool]),
               P.first_round_budget(g.health, SLACK) + P.up_budget(g.health, SLACK))
    return g


def still_works(g, certs):
    b = P.HubBrowser(g.base_url, ca=certs.ca, timeout=10)
    r = b.get("/hub/login")
    assert r.status_code == 200 and "username" in r.text, (r.status_code, r.text[:200])
    assert g.alive()


def smuggled(pool, marker):
    return [i.id for i in pool if i.hub.log_count(marker)]


def head(lines, body=b""):
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


SMUGGLING = {
    # RFC 9112 6.1: both is an attack shape; a proxy must not pick one.
    "cl-and-te": lambda m: head(["POST /hub/login HTTP/1.1", "Host: pool.test",
                                 "Content-Length: 47", "Transfer-Encoding: chunked"],
                                b"0\r\n\r\nGET /hub/api/%s HTTP/1.1\r\nHost: x\r\n\r\n" % m),
    "te-and-cl": lambda m: head(["POST /hub/login HTTP/1.1", "Host: pool.test",
                                 "Transfer-Encoding: chunked", "Content-Length: 4"],
                                b"0\r\n\r\nGET /hub/api/%s HTTP/1.1\r\nHost: x\r\n\r\n" % m),
    "two-content-lengths": lambda m: head(["POST /hub/login HTTP/1.1", "Host: pool.test",
                                           "Content-Length: 0", "Content-Length: 45"],
                                          b"GET /hub/api/%s HTTP/1.1\r\nHost: x\r\n\r\n" % m),
    "obs-fold": lambda m: head(["GET /hub/login HTTP/1.1", "Host: pool.test",
                                "X-Folded: a", " b", "X-Probe: %s" % m.decode()]),
    "te-obs-fold": lambda m: head(["POST /hub/login HTTP/1.1", "Host: pool.test",
                                   "Content-Length: 45", "Transfer-Encoding:", " chunked"],
                                  b"0\r\n\r\nGET /hub/api/%s HTTP/1.1\r\nHost: x\r\n\r\n" % m),
}


@pytest.mark.parametrize("shape", sorted(SMUGGLING))
def test_smuggling_shapes_get_400_and_close(pool, gate, certs, shape):
    marker = ("smuggled-" + uuid.uuid4().hex).encode()
    status, headers, body, closed = P.raw_exchange(gate.https_port, certs.ca,
                                                   SMUGGLING[shape](marker))
    assert status == 400, (status, headers, body[:200])
    assert closed, "connection left open after 400"
    assert b"smuggled" not in body
    time.sleep(0.3)
    assert smuggled(pool, marker.decode()) == [], "a hub saw the smuggled request"
    still_works(gate, certs)


@pytest.mark.parametrize("what,request_bytes,want", [
    ("one huge header", lambda: head(["GET /hub/login HTTP/1.1", "Host: pool.test",
                                      "X-Big: " + "a" * 17000]), 431),
    ("many small headers", lambda: head(["GET /hub/login HTTP/1.1", "Host: pool.test"] +
                                        ["X-H%d: v" % i for i in range(101)]), 431),
    ("long request line", lambda: head(["GET /hub/login?q=" + "a" * 12000 + " HTTP/1.1",
                                        "Host: pool.test"]), 414),
])
def test_oversized_requests(gate, certs, what, request_bytes, want):
    status, headers, body, closed = P.raw_exchange(gate.https_port, certs.ca, request_bytes())
    assert status == want, (what, status, headers, body[:200])
    still_works(gate, certs)


def test_limits_are_not_off_by_far(gate, certs):
    # Just under the limits is an ordinary request (JupyterHub answers it).
    req = head(["GET /hub/login HTTP/1.1", "Host: 127.0.0.1:%d" % gate.https_port,
                "Connection: close"] + ["X-H%d: v" % i for i in range(90)])
    status, _, _, _ = P.raw_exchange(gate.https_port, certs.ca, req, timeout=10)
    assert status == 200, status
    req = head(["GET /hub/login HTTP/1.1", "Host: 127.0.0.1:%d" % gate.https_port,
                "Connection: close", "X-Big: " + "a" * 8000])
    status, _, _, _ = P.raw_exchange(gate.https_port, certs.ca, req, timeout=10)
    assert status == 200, status


def test_slowloris_is_closed(gate, certs):
    s = P.tls_connect(gate.https_port, certs.ca)
    t0 = time.monotonic()
    closed_after = None
    got = b""
    try:
        s.sendall(b"GET /hub/login HTTP/1.1\r\nHost: pool.test\r\n")
        # One header line every 0.2 s: the head never completes. header_timeout_ms is 1000;
        # give up (and fail) after 5 s.
        n = 0
        while time.monotonic() - t0 < 5:
            try:
                s.sendall(b"X-Slow-%d: x\r\n" % n)
            except (OSError, ssl.SSLError):
                closed_after = time.monotonic() - t0
                break
            n += 1
            s.settimeout(0.2)
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                closed_after = time.monotonic() - t0
                break
            got += chunk
            if not chunk:
                closed_after = time.monotonic() - t0
                break
            rest, closed = P.read_until_close(s, 2)
            got += rest
            closed_after = time.monotonic() - t0 if closed else None
            break
    finally:
        s.close()
    assert closed_after is not None, "a slowloris head was still open after 5 s"
    assert closed_after >= 0.5, "closed after %.2fs, long before header_timeout_ms" % closed_after
    assert closed_after <= 1.0 + 2.5, "closed only after %.2fs" % closed_after
    if got:
        assert P.parse_head(got)[0] == 408, got[:200]
    still_works(gate, certs)


def test_max_connections(pool, make_https_poolgate, certs):
    g = make_https_poolgate([i.config() for i in pool], http=dict(HTTP, max_connections=4,
                                                                   header_timeout_ms=10000))
    g.wait_for(P.all_up([i.id for i in pool]),
               P.first_round_budget(g.health, SLACK) + P.up_budget(g.health, SLACK))
    held = [P.tls_connect(g.https_port, certs.ca) for _ in range(4)]
    try:
        # The fifth is not served: refused, closed, or left waiting; never answered.
        served = False
        try:
            status, _, _, _ = P.raw_exchange(g.https_port, certs.ca, head([
                "GET /hub/login HTTP/1.1", "Host: pool.test", "Connection: close"]), timeout=2)
            served = status == 200
        except (OSError, ssl.SSLError):
            pass
        assert not served, "a fifth connection was served with max_connections 4"
    finally:
        for s in held:
            s.close()
    # Once they are gone, new connections are served again.
    P.poll(lambda: P.raw_exchange(g.https_port, certs.ca, head([
        "GET /hub/login HTTP/1.1", "Host: pool.test", "Connection: close"]), timeout=3)[0] == 200,
        5, 0.2, "a request to be served after the held connections closed")
    still_works(g, certs)


def _metric(g, name):
    for line in g.get("/metrics").text().splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_tls_handshakes_per_source_and_in_total(pool, make_https_poolgate, certs):
    """http.limits: connections still in their TLS handshake are bounded per source and in
    total; past the bound a new one closes at once; a finished handshake frees its slot, so
    a browser's requests and other addresses go on."""
    g = make_https_poolgate([i.config() for i in pool], http=dict(HTTP, header_timeout_ms=20000,
                            limits={"per_source_startups": 2, "max_startups": "3"}))
    g.wait_for(P.all_up([i.id for i in pool]),
               P.first_round_budget(g.health, SLACK) + P.up_budget(g.health, SLACK))
    socks = []

    def idle(src):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(3)
        s.connect(("127.0.0.1", g.https_port))
        s.settimeout(1)
        socks.append(s)
        return s

    def closed_at_once(s):
        try:
            return s.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    try:
        a1, a2, a3 = idle("127.0.0.77"), idle("127.0.0.77"), idle("127.0.0.77")
        assert closed_at_once(a3) and not closed_at_once(a1)
        b1 = idle("127.0.0.78")
        c1 = idle("127.0.0.79")	# 3 in handshake: the total is reached
        assert closed_at_once(c1) and not closed_at_once(b1)
        assert _metric(g, "poolgate_http_handshakes_in_progress") == 3
        a1.close()
        P.poll(lambda: _metric(g, "poolgate_http_handshakes_in_progress") == 2, 10, 0.1,
               "a slot freed")
        still_works(g, certs)	# handshakes done: they no longer count
        assert _metric(g, "poolgate_http_handshakes_in_progress") == 2
    finally:
        for s in socks:
            s.close()
    log = g.log()
    assert "(http.limits.per_source_startups); closing" in log
    assert "(http.limits.max_startups 3:100:3); closing" in log
    assert _metric(g, 'poolgate_http_limit_refused_total{limit="per_source"}') == 1
    assert _metric(g, 'poolgate_http_limit_refused_total{limit="max_startups"}') == 1
