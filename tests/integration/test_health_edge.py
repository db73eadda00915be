"""Health checks against peers that hang, fragment, talk before their ident, redirect, or are
simply many."""

import re
import subprocess
import threading
import time

import pool as P
from conftest import SLACK

TIMEOUT_RE = re.compile(r"time[ds]?[ _-]?out", re.I)


def http_200(body=b"ok"):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(body)) + body


def test_stopped_sshd_times_out(pool, poolgate):
    """SIGSTOP'd sshd: the kernel still completes the handshake, nothing answers."""
    h = poolgate.health
    poolgate.wait_for(P.all_up(["demo-1", "demo-2"]), P.up_budget(h, SLACK))
    pool[0].sshd.pause()
    try:
        poolgate.wait_state("demo-1", "down", P.down_budget(h, SLACK))
        c = poolgate.instance("demo-1")["checks"]
        assert c["tcp"]["ok"] is True, c
        assert c["ssh"]["ok"] is False and TIMEOUT_RE.search(c["ssh"]["error"] or ""), c
        assert poolgate.instance("demo-2")["state"] == "up"
    finally:
        pool[0].sshd.resume()
    poolgate.wait_state("demo-1", "up", P.up_budget(h, SLACK))


def test_stopped_jupyterhub_times_out(pool, poolgate):
    h = poolgate.health
    poolgate.wait_for(P.all_up(["demo-1", "demo-2"]), P.up_budget(h, SLACK))
    pool[1].hub.pause()
    try:
        poolgate.wait_state("demo-2", "down", P.down_budget(h, SLACK))
        c = poolgate.instance("demo-2")["checks"]
        assert c["ssh"]["ok"] is True, c
        assert c["http"]["ok"] is False and TIMEOUT_RE.search(c["http"]["error"] or ""), c
    finally:
        pool[1].hub.resume()
    poolgate.wait_state("demo-2", "up", P.up_budget(h, SLACK))


def test_ssh_ident_fragmented(pool, make_poolgate):
    """The ident line arrives one byte per TCP segment (well within timeout_ms)."""
    frag = P.BlackholeServer("127.0.0.13", [0], greeting=b"SSH-2.0-Slow_1.0\r\n",
                             byte_delay=0.01)
    web = P.BlackholeServer("127.0.0.13", [0], greeting=http_200())
    try:
        g = make_poolgate([dict(pool[0].config(), id="frag", address="127.0.0.13",
                                ssh_port=frag.ports[0], http_port=web.ports[0])])
        i = g.wait_state("frag", "up", P.up_budget(g.health, SLACK))
        assert i["checks"]["ssh"]["ident"] == "SSH-2.0-Slow_1.0", i["checks"]
    finally:
        frag.close()
        web.close()


def test_ssh_ident_after_banner_lines(pool, make_poolgate):
    """RFC 4253 section 4.2: the server MAY send other lines before its version string."""
    chatty = P.BlackholeServer("127.0.0.13", [0],
                               greeting=b"Welcome to a pool VM\r\nSSH-2.0-Chatty_1.0\r\n")
    web = P.BlackholeServer("127.0.0.13", [0], greeting=http_200())
    try:
        g = make_poolgate([dict(pool[0].config(), id="chatty", address="127.0.0.13",
                                ssh_port=chatty.ports[0], http_port=web.ports[0])])
        i = g.wait_state("chatty", "up", P.up_budget(g.health, SLACK))
        assert i["checks"]["ssh"]["ident"] == "SSH-2.0-Chatty_1.0", i["checks"]
    finally:
        chatty.close()
        web.close()


def test_http_redirect_is_not_healthy_and_big_body_is(pool, make_poolgate):
    """Only 2xx is healthy: a 302 (a hub that wants a login) is a failure. A 200 with a 1 MiB
    body is healthy and does not stall the check."""
    redirect = P.BlackholeServer("127.0.0.14", [0], greeting=(
        b"HTTP/1.1 302 Found\r\nLocation: /hub/login\r\nContent-Length: 0\r\n\r\n"))
    big = P.BlackholeServer("127.0.0.14", [0], greeting=http_200(b"x" * (1 << 20)))
    try:
        g = make_poolgate([
            dict(pool[0].config(), id="redirect", address="127.0.0.14", ssh_port=redirect.ports[0],
                 http_port=redirect.ports[0]),
            dict(pool[0].config(), id="big", address="127.0.0.14", ssh_port=big.ports[0],
                 http_port=big.ports[0]),
        ], health={"checks": ["http"]})
        g.wait_for(lambda s: g.instance("redirect", s)["state"] == "down"
                   and g.instance("big", s)["state"] == "up", P.up_budget(g.health, SLACK),
                   what="redirect down, big up")
        c = g.instance("redirect")["checks"]["http"]
        assert c["ok"] is False and c["status"] == 302, c
        c = g.instance("big")["checks"]["http"]
        assert c["ok"] is True and c["status"] == 200, c
    finally:
        redirect.close()
        big.close()


def test_https_scheme_against_plain_http_fails(pool, make_poolgate):
    """http_tls: true makes the scheme https; TLS to a plain-HTTP hub cannot succeed."""
    g = make_poolgate([pool[0].config(http_tls=True), pool[1].config()])
    s = g.wait_for(lambda s: g.instance("demo-1", s)["state"] == "down"
                   and g.instance("demo-2", s)["state"] == "up",
                   P.up_budget(g.health, SLACK), what="demo-1 (https) down, demo-2 up")
    i = g.instance("demo-1", s)
    assert i["http_scheme"] == "https"
    assert i["checks"]["http"]["ok"] is False and i["checks"]["http"]["error"], i["checks"]
    assert i["checks"]["ssh"]["ok"] is True
    assert g.instance("demo-2", s)["http_scheme"] == "http"


def test_since_and_reason_follow_transitions(pool, poolgate):
    h = poolgate.health
    s = poolgate.wait_for(P.all_up(["demo-1", "demo-2"]), P.up_budget(h, SLACK))
    since_up = P.parse_rfc3339(poolgate.instance("demo-1", s)["since"])
    pool[0].sshd.kill()
    i = poolgate.wait_state("demo-1", "down", P.down_budget(h, SLACK))
    since_down = P.parse_rfc3339(i["since"])
    now = P.parse_rfc3339(poolgate.status()["now"])
    assert since_up < since_down <= now, (since_up, since_down, now)
    assert i["reason"] and i["reason"] != poolgate.instance("demo-2")["reason"], i["reason"]
    # demo-2 did not change: its since is untouched.
    assert poolgate.instance("demo-2")["since"] == poolgate.instance("demo-2", s)["since"]


def test_many_instances(pool, make_poolgate, promtool):
    """150 dead instances (refused, on 127.0.1.x) next to a real one: all probed, /status and
    /metrics stay correct and quick under concurrent readers."""
    dead = [dict(pool[0].config(), id="dead-%03d" % n, address="127.0.1.%d" % n)
            for n in range(1, 151)]
    g = make_poolgate([pool[0].config()] + dead)
    h = g.health
    s = g.wait_for(lambda s: g.instance("demo-1", s)["state"] == "up" and
                   all(i["state"] == "down" for i in s["instances"] if i["id"] != "demo-1"),
                   P.up_budget(h, SLACK) + 5, what="demo-1 up and 150 dead down")
    assert len(s["instances"]) == 151
    errors, times = [], []

    def reader():
        for _ in range(10):
            t0 = time.monotonic()
            try:
                r = g.get("/status", timeout=5)
                if r.status != 200 or len(r.json()["instances"]) != 151:
                    errors.append(r)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
            times.append(time.monotonic() - t0)
    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert max(times) < 3, "slowest /status %.2fs" % max(times)
    r = g.get("/metrics")
    assert r.status == 200
    rc = subprocess.run([promtool, "check", "metrics"], input=r.text(), capture_output=True,
                        text=True, timeout=30)
    assert rc.returncode == 0, rc.stdout + rc.stderr
    assert g.get("/readyz").status == 200
