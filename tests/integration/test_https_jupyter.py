"""JupyterHub through poolgate's https front door, as a browser uses it: login, spawn with its
progress stream (server-sent events), a kernel over its websocket, a terminal over its websocket,
a 50 MB upload and download, and a certificate reload (SIGHUP) under an open websocket.

Real JupyterHub 3 instances (dummy authenticator, simple spawner, notebook 6 single-user
servers with ipykernel and terminado) behind a real poolgate; certificates from the openssl CLI.
"""

import base64
import hashlib
import json
import os
import uuid

import pool as P
from conftest import SLACK


def wait_up(g, pool):
    h = g.health
    return g.wait_for(P.all_up([i.id for i in pool]),
                      P.first_round_budget(h, SLACK) + P.up_budget(h, SLACK))


def by_id(pool, id):
    return next(i for i in pool if i.id == id)


def ready_server(b, user, probe=None):
    """Logs `user` in and makes sure their server runs with a fresh start (stopped first if a
    previous test left it running), so the progress stream has something to report. Returns
    the progress events."""
    b.login(user, probe=probe)
    if b.user_model(user).get("servers"):
        b.stop_server(user)
    return b.spawn(user)


def test_login_spawn_progress_kernel_terminal(pool, make_https_poolgate, certs):
    g = make_https_poolgate([i.config() for i in pool])
    wait_up(g, pool)
    b = P.HubBrowser(g.base_url, ca=certs.ca)

    # The login form reaches JupyterHub (its page, over TLS verified against the test CA).
    r = b.get("/hub/login")
    assert r.status_code == 200 and "username" in r.text, r.text[:300]

    probe = uuid.uuid4().hex
    events = ready_server(b, "alice", probe)

    # Spawn progress is text/event-stream: poolgate must pass each event on as it comes, not
    # when the response ends. "Server requested" comes at once, "ready" seconds later.
    t0 = events[0][0]
    timeline = [(round(t - t0, 3), e.get("progress"), e.get("message")) for t, e in events]
    assert len(events) >= 2, timeline
    assert events[-1][1].get("ready") is True, timeline
    assert events[-1][0] - events[0][0] >= 0.25, \
        "all progress events arrived together (buffered?): %r" % timeline
    assert events.end - events[0][0] >= 0.25, \
        "the first event arrived only as the stream ended: %r, end %.3f" % (
            timeline, events.end - t0)

    # A kernel: created over REST, executed over its websocket (wss through poolgate).
    b.open_ui("alice")
    kid = b.new_kernel("alice")
    k = b.kernel("alice", kid)
    try:
        assert k.execute("1+1") == "2"
    finally:
        k.close()

    # A terminal (terminado) over its websocket.
    term = b.terminal("alice", b.new_terminal("alice"))
    try:
        term.run("echo hello-$((6*7))")
        term.wait_for("hello-42")
    finally:
        term.close()

    # All of it happened on alice's instance, where poolgate pinned her.
    home = g.user_instance("alice")
    assert home in [i.id for i in pool], g.users()
    assert b.affinity() and b.affinity()["id"] == home, (b.cookie(b.cookie_name), home)
    assert [i.hub.log_count(probe) for i in pool] == [int(i.id == home) for i in pool]


def test_upload_50mb_roundtrip(pool, make_https_poolgate, certs):
    g = make_https_poolgate([i.config() for i in pool])
    wait_up(g, pool)
    b = P.HubBrowser(g.base_url, ca=certs.ca, timeout=120)
    b.login("alice")
    if not b.server_running("alice"):
        b.spawn("alice")
    b.open_ui("alice")
    data = os.urandom(50 * 1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    model = {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}

    # One PUT with a Content-Length body (what the notebook UI sends for a file this size with
    # its default settings: the whole file, base64, in one JSON document).
    r = b.put("/user/alice/api/contents/big.bin", json=model)
    assert r.status_code in (200, 201), (r.status_code, r.text[:300])
    r = b.get("/user/alice/api/contents/big.bin", params={"format": "base64", "type": "file"})
    assert r.status_code == 200, (r.status_code, r.text[:300])
    got = base64.b64decode(r.json()["content"])
    assert len(got) == len(data) and hashlib.sha256(got).hexdigest() == digest

    # The same document as a chunked request body (Transfer-Encoding: chunked from a
    # generator, 1 MiB pieces): poolgate must relay the chunks, not need a length.
    body = json.dumps(model).encode()
    del model
    r = b.put("/user/alice/api/contents/big-chunked.bin",
              data=(body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20)),
              headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 201), (r.status_code, r.text[:300])
    r = b.get("/user/alice/api/contents/big-chunked.bin",
              params={"format": "base64", "type": "file"})
    assert r.status_code == 200
    assert hashlib.sha256(base64.b64decode(r.json()["content"])).hexdigest() == digest
    for name in ("big.bin", "big-chunked.bin"):
        b.delete("/user/alice/api/contents/" + name)


def test_sighup_new_certificate_keeps_websocket(pool, make_https_poolgate, certs):
    cert, key = certs.authority.issue("reload", dns=["pool.test"], ips=["127.0.0.1"])
    old_fp = P.cert_fingerprint(cert)
    g = make_https_poolgate([i.config() for i in pool], certificates=[(cert, key)])
    wait_up(g, pool)
    sc = P.s_client(g.https_port, servername="pool.test", ca=certs.ca)
    assert sc.handshake_ok and sc.fingerprint == old_fp, sc

    b = P.HubBrowser(g.base_url, ca=certs.ca)
    b.login("alice")
    if not b.server_running("alice"):
        b.spawn("alice")
    b.open_ui("alice")
    k = b.kernel("alice", b.new_kernel("alice"))
    try:
        assert k.execute("x = 20\nx + 1") == "21"

        # New content in the same files, then SIGHUP.
        cert, key = certs.authority.issue("reload", dns=["pool.test"], ips=["127.0.0.1"])
        new_fp = P.cert_fingerprint(cert)
        assert new_fp != old_fp
        mark = g.log_mark()
        g.reload()
        P.poll(lambda: P.s_client(g.https_port, servername="pool.test",
                                  ca=certs.ca).fingerprint == new_fp,
               5 + SLACK, 0.2, "new handshakes to present the reloaded certificate")
        assert g.alive(), g.log_since(mark)

        # The websocket opened before the reload still works, with its kernel state.
        assert k.execute("x * 2") == "40"
    finally:
        k.close()
    # So do new requests on a new connection with the old cookies, and a new browser.
    assert b.user_model("alice")["name"] == "alice"
    b2 = P.HubBrowser(g.base_url, ca=certs.ca)
    assert b2.get("/hub/login").status_code == 200
