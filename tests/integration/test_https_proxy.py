"""poolgate as an HTTP/1.1 reverse proxy: the headers an instance receives, pipelining and
keep-alive, Expect: 100-continue, and the pages browsers get when no instance can answer
(503 none up, 502 refused, 504 silent), none of which may name an internal address."""

import hashlib
import os
import re
import socket
import time
import uuid

import pytest

import pool as P
from conftest import SLACK

HEALTH_TCP = {"interval_ms": 400, "timeout_ms": 300, "rise": 1, "fall": 1, "jitter_pct": 0,
              "checks": ["tcp"]}


def wait_state(g, id, state):
    return g.wait_state(id, state, P.first_round_budget(g.health, SLACK)
                        + P.up_budget(g.health, SLACK))


def no_internal_address(resp_text, addresses, ports):
    """Asserts that a page (head and body as text) names none of `addresses` (nor any
    127.0.0.x) and none of the instance `ports`."""
    assert not re.search(r"127\.0\.0\.\d+", resp_text), resp_text[:1500]
    for a in addresses:
        assert a not in resp_text, (a, resp_text[:1500])
    for p in ports:
        assert not re.search(r"(?<![0-9])%d(?![0-9])" % p, resp_text), (p, resp_text[:1500])


def whole(r):
    """A requests.Response as text: status line, headers and body."""
    return "%d\n%s\n\n%s" % (r.status_code, "\n".join("%s: %s" % kv for kv in r.headers.items()),
                             r.text)


@pytest.fixture
def recorder_instance(make_https_poolgate):
    """A poolgate whose one instance is a recording HTTP server on 127.0.0.1 (its `ssh_port` a
    silent TCP listener for the tcp check)."""
    rec = P.RecordingHTTPServer("127.0.0.1")
    ssh = P.BlackholeServer("127.0.0.1", [P.free_port()])
    try:
        g = make_https_poolgate([{"id": "rec", "address": "127.0.0.1",
                                  "ssh_port": ssh.ports[0], "http_port": rec.port}],
                                health=HEALTH_TCP)
        wait_state(g, "rec", "up")
        yield g, rec
    finally:
        ssh.close()
        rec.close()


def test_forwarded_headers_and_hop_by_hop(recorder_instance, certs):
    g, rec = recorder_instance
    b = P.HubBrowser(g.base_url, ca=certs.ca, timeout=10)
    r = b.get("/hub/headers?x=1", headers={
        "Connection": "keep-alive, X-Secret",
        "X-Secret": "hop",
        "Keep-Alive": "timeout=5",
        "Proxy-Connection": "keep-alive",
        "TE": "trailers",
        "X-End-To-End": "kept",
    })
    assert r.status_code == 200 and r.text == "ok\n", whole(r)
    method, path, headers, version = rec.requests[-1]
    h = dict((k.lower(), v) for k, v in headers.items())
    assert (method, path, version) == ("GET", "/hub/headers?x=1", "HTTP/1.1")
    assert h.get("host") == "127.0.0.1:%d" % g.https_port, h
    assert h.get("x-forwarded-for", "").split(",")[-1].strip() == "127.0.0.1", h
    assert h.get("x-forwarded-proto") == "https", h
    assert h.get("x-scheme") == "https", h
    assert h.get("x-forwarded-host") in ("127.0.0.1:%d" % g.https_port, "127.0.0.1"), h
    assert h.get("x-forwarded-port") == str(g.https_port), h
    assert h.get("x-end-to-end") == "kept", h
    for hop in ("x-secret", "keep-alive", "proxy-connection", "te"):
        assert hop not in h, (hop, h)
    assert "x-secret" not in h.get("connection", "").lower(), h


def test_large_body_before_the_instance_connection_opens(recorder_instance, certs):
    """8 MiB bodies on one keep-alive browser connection, each to a new connection to the
    instance (it closes after every answer). Once the first uploads have grown the socket
    buffers, most of a body arrives while poolgate still connects: it is held and reading from
    the browser pauses. The held bytes may then leave in one write, with no write callback to
    say so; reading must resume even then."""
    g, rec = recorder_instance
    data = os.urandom(8 << 20)
    want = "%d %s\n" % (len(data), hashlib.sha256(data).hexdigest())
    b = P.HubBrowser(g.base_url, ca=certs.ca, timeout=20)
    for i in range(6):
        r = b.put("/hub/upload-close-%d" % i, data=data,
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200 and r.text == want, (i, whole(r)[:500])


def test_pipelined_requests_answered_in_order(pool, make_https_poolgate, certs):
    g = make_https_poolgate([i.config() for i in pool])
    g.wait_for(P.all_up([i.id for i in pool]),
               P.first_round_budget(g.health, SLACK) + P.up_budget(g.health, SLACK))
    tag = uuid.uuid4().hex
    # JupyterHub's login page echoes its `next` argument in the form's action: each answer
    # names the request it answers.
    reqs = b"".join(("GET /hub/login?next=/hub/p%s-%d&probe=%s HTTP/1.1\r\n"
                     "Host: 127.0.0.1:%d\r\n%s\r\n"
                     % (tag, n, tag, g.https_port, "Connection: close\r\n" if n == 4 else "")
                     ).encode() for n in range(5))
    s = P.tls_connect(g.https_port, certs.ca, timeout=10)
    try:
        s.sendall(reqs)
        data, closed = P.read_until_close(s, 15)
    finally:
        s.close()
    assert closed, "no close after the Connection: close request"
    assert data.count(b"HTTP/1.1 200") == 5, data[:500]
    where = [data.find(("%%2Fhub%%2Fp%s-%d\"" % (tag, n)).encode()) for n in range(5)]
    assert -1 not in where and where == sorted(where), "answers out of order: %r" % where
    P.poll(lambda: sum(i.hub.log_count(tag) for i in pool) == 5, 5, 0.1, "5 requests logged")


@pytest.mark.parametrize("path,ctype,body,want", [
    # The login form: poolgate reads it (the user it names picks the instance) before any
    # instance is involved, so the 100 Continue must come from poolgate itself.
    ("/hub/login", "application/x-www-form-urlencoded", b"username=carol&password=x", 302),
    # Any other body: relayed, the instance's own 100 Continue comes back.
    ("/hub/api/no-such-thing", "application/json", b'{"x": 1}', 404),
], ids=["login-form", "other-post"])
def test_expect_100_continue(pool, make_https_poolgate, certs, path, ctype, body, want):
    g = make_https_poolgate([i.config() for i in pool])
    g.wait_for(P.all_up([i.id for i in pool]),
               P.first_round_budget(g.health, SLACK) + P.up_budget(g.health, SLACK))
    s = P.tls_connect(g.https_port, certs.ca, timeout=10)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Content-Type: %s\r\nContent-Length: %d\r\n"
                   "Expect: 100-continue\r\nConnection: close\r\n\r\n"
                   % (path, g.https_port, ctype, len(body))).encode())
        # A client waits (curl: 1 s) for the interim answer before it sends the body.
        s.settimeout(3)
        try:
            first = s.recv(4096)
        except TimeoutError:
            first = b"(nothing within 3 s)"
        assert first.startswith(b"HTTP/1.1 100"), first[:200]
        s.sendall(body)
        rest, closed = P.read_until_close(s, 10)
    finally:
        s.close()
    after = first.split(b"\r\n\r\n", 1)[1] + rest
    assert not after.startswith(b"HTTP/1.1 100"), "a second 100 Continue: %r" % after[:200]
    status, headers, _ = P.parse_head(after)
    assert status == want, after[:300]
    if path == "/hub/login":
        assert g.user_instance("carol") is not None, g.users()


def test_no_instance_up_is_503(make_https_poolgate, certs):
    g = make_https_poolgate([{"id": "gone", "address": "127.0.0.9", "ssh_port": 2022,
                              "http_port": 8000}], health=HEALTH_TCP)
    wait_state(g, "gone", "down")
    b = P.HubBrowser(g.base_url, ca=certs.ca, timeout=10)
    for path in ("/", "/hub/login", "/user/alice/tree"):
        r = b.get(path)
        assert r.status_code == 503, whole(r)
        assert r.headers.get("Retry-After", "").strip().isdigit(), whole(r)
        assert r.headers.get("Content-Type", "").startswith("text/html"), whole(r)
        assert "<html" in r.text.lower() and len(r.text) < 8192, r.text[:500]
        no_internal_address(whole(r), ["127.0.0.9"], [8000, 2022])
    assert g.alive()


def test_refused_is_502(pool, make_https_poolgate, certs):
    dead_port = P.free_port(pool[0].ip)
    # Up by its (real) sshd; nothing listens on its http port.
    g = make_https_poolgate([pool[0].config(http_port=dead_port)],
                            health=dict(HEALTH_TCP, checks=["tcp", "ssh"]))
    wait_state(g, pool[0].id, "up")
    b = P.HubBrowser(g.base_url, ca=certs.ca, timeout=10)
    r = b.get("/hub/login")
    assert r.status_code == 502, whole(r)
    assert r.headers.get("Content-Type", "").startswith("text/html"), whole(r)
    no_internal_address(whole(r), [pool[0].ip], [dead_port, pool[0].ssh_port])
    assert g.alive()


def test_silent_instance_is_504(make_https_poolgate, certs):
    hung = P.BlackholeServer("127.0.0.1", [P.free_port(), P.free_port()])
    try:
        ssh_port, http_port = hung.ports
        g = make_https_poolgate([{"id": "hung", "address": "127.0.0.1", "ssh_port": ssh_port,
                                  "http_port": http_port}], health=HEALTH_TCP,
                                http={"response_timeout_ms": 1000, "connect_timeout_ms": 1000})
        wait_state(g, "hung", "up")
        b = P.HubBrowser(g.base_url, ca=certs.ca, timeout=10)
        t0 = time.monotonic()
        r = b.get("/hub/login")
        took = time.monotonic() - t0
        assert r.status_code == 504, whole(r)
        assert 0.8 <= took <= 1.0 + SLACK, "504 after %.2fs (response_timeout_ms 1000)" % took
        assert r.headers.get("Content-Type", "").startswith("text/html"), whole(r)
        no_internal_address(whole(r), ["127.0.0.1:%d" % http_port], [ssh_port, http_port])
        assert g.alive()
    finally:
        hung.close()



def test_half_closed_client_still_gets_its_response(pool, make_https_poolgate, certs):
    """A client that stops sending right after its request (a TCP FIN under the TLS session)
    still gets the whole response, and then the connection ends. Regression: poolgate used to
    drop the exchange as soon as the client's side closed."""
    g = make_https_poolgate([i.config() for i in pool])
    g.wait_for(P.all_up([i.id for i in pool]),
               P.first_round_budget(g.health, SLACK) + P.up_budget(g.health, SLACK))
    s = P.tls_connect(g.https_port, certs.ca, timeout=10)
    try:
        s.sendall(b"GET /hub/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % g.https_port)
        socket.socket.shutdown(s, socket.SHUT_WR)  # the TCP socket under the TLS layer
        data, closed = P.read_until_close(s, 10)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"</html>" in data, "response cut short: %r" % data[-200:]
    assert closed, "the connection should end after the response"
