"""What poolgate's probes put on the wire and leave behind: the HTTP request itself, IPv6
instances, file descriptors over many rounds, escaping of odd labels."""

import json
import os
import socket
import subprocess
import time

import pytest

import pool as P
from conftest import SLACK


def test_http_probe_request_is_well_formed(pool, make_poolgate):
    web = P.RecordingHTTPServer("127.0.0.15")
    try:
        g = make_poolgate([dict(pool[0].config(), id="rec", address="127.0.0.15",
                                http_port=web.port)], health={"checks": ["http"]})
        g.wait_state("rec", "up", P.up_budget(g.health, SLACK))
        method, path, headers, version = web.requests[0]
        assert (method, path, version) == ("GET", "/hub/health", "HTTP/1.1"), web.requests[0]
        host = dict((k.lower(), v) for k, v in headers.items()).get("host")
        assert host in ("127.0.0.15:%d" % web.port, "127.0.0.15"), headers
    finally:
        web.close()


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as e:
        pytest.skip("no IPv6 loopback here: %s" % e)


def test_ipv6_instance(make_poolgate, tmp_path, peers):
    """An instance on ::1: real sshd on [::1], an HTTP server on [::1]; the probe's Host header
    must bracket the address (RFC 9110 section 7.2 / RFC 3986 IP-literal)."""
    _ipv6_loopback()
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        ssh_port = s.getsockname()[1]
    sshd = P.Sshd("::1", ssh_port, str(tmp_path / "sshd6"))
    web = P.RecordingHTTPServer("::1")
    try:
        sshd.start()
        g = make_poolgate([{"id": "v6", "address": "::1", "ssh_port": ssh_port,
                            "http_port": web.port}])
        i = g.wait_state("v6", "up", P.up_budget(g.health, SLACK))
        assert i["address"] == "::1"
        assert i["checks"]["ssh"]["ident"].startswith("SSH-2.0-OpenSSH_")
        host = dict((k.lower(), v) for k, v in web.requests[0][2].items()).get("host")
        assert host in ("[::1]:%d" % web.port, "[::1]"), host
    finally:
        web.close()
        sshd.kill()


def test_no_fd_leak_over_many_rounds(pool, make_poolgate):
    """Fast rounds against up, refused, hung and wrong-protocol peers: poolgate's open file
    descriptors stay flat (every probe socket is closed, timed out ones included)."""
    hung = P.BlackholeServer("127.0.0.16", [0, 0])
    liar = P.BlackholeServer("127.0.0.16", [0], greeting=b"220 nope\r\n")
    try:
        h = {"interval_ms": 150, "timeout_ms": 100, "rise": 2, "fall": 2, "jitter_pct": 10}
        g = make_poolgate([inst.config() for inst in pool] + [
            dict(pool[0].config(), id="refused", address="127.0.0.9"),
            dict(pool[0].config(), id="hung", address="127.0.0.16", ssh_port=hung.ports[0],
                 http_port=hung.ports[1]),
            dict(pool[0].config(), id="liar", address="127.0.0.16", ssh_port=liar.ports[0],
                 http_port=liar.ports[0])], health=h)
        time.sleep(2)
        base = P.fd_count(g.proc.pid)
        time.sleep(6)  # ~40 rounds per instance
        now = P.fd_count(g.proc.pid)
        print("fds %d -> %d" % (base, now))
        assert now <= base + 8, "fds grew from %d to %d over ~40 rounds" % (base, now)
        s = g.status()
        assert g.instance("demo-1", s)["state"] == "up"
        assert g.instance("hung", s)["state"] == "down"
        # The hung server saw its connections closed by poolgate: few of them still open there.
        open_conns = 0
        for c in hung.conns:
            c.setblocking(False)
            try:
                if c.recv(1) == b"":
                    continue
            except BlockingIOError:
                open_conns += 1
            except OSError:
                continue
        print("hung open %d of %d" % (open_conns, len(hung.conns)))
        assert open_conns <= 4, "%d of %d hung connections still open" % (
            open_conns, len(hung.conns))
    finally:
        hung.close()
        liar.close()


def test_sshd_preauth_children_do_not_pile_up(pool, make_poolgate):
    """Each ssh probe must close its connection; otherwise sshd keeps a preauth child per probe
    until LoginGraceTime."""
    h = {"interval_ms": 150, "timeout_ms": 100, "rise": 2, "fall": 2, "jitter_pct": 10}
    g = make_poolgate([pool[0].config()], health=h)
    time.sleep(4)
    kids = P.descendants(pool[0].sshd.proc.pid)
    assert len(kids) <= 4, "%d sshd children after ~25 probe rounds" % len(kids)
    assert g.instance("demo-1")["state"] == "up"


def test_odd_labels_escaped_in_status_and_metrics(pool, make_poolgate, promtool):
    labels = {"quote": 'say "hi"', "backslash": "a\\b", "newline": "one\ntwo",
              "unicode": "zürich ✓", "empty": "", "tab": "a\tb"}
    g = make_poolgate([pool[0].config(labels=labels)])
    r = g.get("/status")
    s = json.loads(r.body)  # must be valid JSON
    assert g.instance("demo-1", s)["labels"] == labels
    m = g.get("/metrics").text()
    rc = subprocess.run([promtool, "check", "metrics"], input=m, capture_output=True, text=True,
                        timeout=30)
    assert rc.returncode == 0, rc.stdout + rc.stderr + m[-2000:]


def test_discovery_symlink_swap(pool, make_poolgate, tmp_path):
    """A discovery path that is a symlink swapped atomically to a new target (how Kubernetes
    and config-management tools publish files) is seen as a change."""
    g = make_poolgate([pool[0].config()], discovery=True, start=False)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"instances": [pool[1].config(id="disc-a")]}))
    b.write_text(json.dumps({"instances": [pool[1].config(id="disc-b")]}))
    os.unlink(g.discovery_path)
    os.symlink(str(a), g.discovery_path)
    g.start()
    g.wait_for(lambda s: g.instance("disc-a", s) is not None, 5, what="disc-a from symlink")
    tmp_link = g.discovery_path + ".new"
    os.symlink(str(b), tmp_link)
    os.replace(tmp_link, g.discovery_path)
    g.wait_for(lambda s: g.instance("disc-b", s) is not None and
               g.instance("disc-a", s) is None, 5, what="disc-b after the symlink swap")


def test_huge_discovery_file_does_not_block(pool, make_poolgate):
    """A 30 MB discovery file (valid or not) is read without stalling the admin endpoint."""
    g = make_poolgate([pool[0].config()], discovery=True)
    text = json.dumps({"instances": [pool[1].config(id="disc-2")]})
    g.write_discovery(raw=text[:-1] + " " * (30 << 20) + "}")
    worst = 0.0
    t_end = time.monotonic() + 3
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        assert g.get("/healthz", timeout=5).status == 200
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.05)
    assert worst < 0.5, "/healthz took %.2fs while the discovery file was read" % worst
    assert g.alive()
