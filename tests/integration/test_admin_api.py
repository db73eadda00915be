"""The admin API, poolgatectl and the dashboard, end to end: the real binary in front of the real
pool (sshd + JupyterHub), driven with the real curl, the built poolgatectl, the real OpenSSH client
(through the SSH front door, as test_ssh_front.py logs pgtest-alice and pgtest-bob in) and
Debian's headless Chromium for the dashboard."""

import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import time
import urllib.parse

import pytest

import pool as P
from conftest import SLACK, _unavailable
from test_ssh_front import landed_on, setup_env, untrust  # noqa: F401 (untrust is a fixture)

CURL = "/usr/bin/curl"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ALICE, BOB = "pgtest-alice", "pgtest-bob"


def ctl_bin():
    """poolgatectl built next to the poolgate under test (build/ctl/ beside build/proxy/)."""
    path = os.environ.get("POOLGATECTL_BIN") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(P.poolgate_bin()))), "ctl", "poolgatectl")
    if not os.access(path, os.X_OK):
        _unavailable("poolgatectl not found at %s: build it (ninja -C build) or point "
                     "POOLGATECTL_BIN at it" % path)
    return path


def write_token(path, mode=0o600):
    token = secrets.token_hex(32)
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, mode)
    return token


def admin_gate(make_poolgate, tmp_path, instances, start=True, **kw):
    """A poolgate whose config names a token file from the start."""
    g = make_poolgate(instances, start=False, **kw)
    g.token_file = str(tmp_path / "admin.token")
    g.token = write_token(g.token_file)
    g.cfg["admin"] = {"token_file": g.token_file}
    if start:
        g.start()
    return g


def enable_admin(g, tmp_path):
    """Turns admin actions on in a running poolgate: the token file is named in the config and
    read on SIGHUP."""
    g.token_file = str(tmp_path / "admin.token")
    g.token = write_token(g.token_file)
    g.cfg["admin"] = {"token_file": g.token_file}
    g.write_config()
    g.reload()
    g.wait_for(lambda s: s["admin"]["actions_enabled"], 5 + SLACK, what="admin actions enabled")


def ctl(g, *args, token=True, timeout=40):
    cmd = [ctl_bin(), "--admin", "%s:%d" % (g.admin_host, g.admin_port)]
    if token:
        cmd += ["--token-file", g.token_file]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def ctl_ok(g, *args, **kw):
    r = ctl(g, *args, **kw)
    assert r.returncode == 0, "poolgatectl %s -> %d\nstdout: %s\nstderr: %s\n--- log ---\n%s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr, g.log_tail(30))
    return r.stdout


def table(text):
    """Rows of a poolgatectl table as dicts, columns cut where the header's words start (cells
    are padded to the column width; a cell may hold single spaces)."""
    lines = [l for l in text.splitlines() if l.strip()]
    head = next(i for i, l in enumerate(lines) if l.startswith(("INSTANCE", "USER")))
    names = lines[head].split()
    starts = [lines[head].index(n) for n in names] + [None]
    return [dict((n, l[starts[i]:starts[i + 1]].strip()) for i, n in enumerate(names))
            for l in lines[head + 1:]]


def curl(g, method, path, token=None, data=None, extra=()):
    """The real curl against the admin listener: (status, {header: value}, body)."""
    cmd = [CURL, "-s", "-S", "-D", "-", "-X", method, "--max-time", "10"]
    if token is not None:
        cmd += ["-H", "Authorization: Bearer %s" % token]
    if data is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", data]
    cmd += list(extra) + ["http://%s:%d%s" % (g.admin_host, g.admin_port, path)]
    r = subprocess.run(cmd, capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    raw = r.stdout.decode("utf-8", "replace")
    # -D - puts every head first (a 100 Continue too); the last one is the answer's.
    heads = raw.split("\r\n\r\n")
    i = 0
    while heads[i].startswith("HTTP/1.1 100"):
        i += 1
    lines = heads[i].split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict((k.strip().lower(), v.strip()) for k, v in
                   (l.split(":", 1) for l in lines[1:] if ":" in l))
    return status, headers, "\r\n\r\n".join(heads[i + 1:])


def states(g):
    return dict((i["id"], (i["state"], i["admin_override"])) for i in g.status()["instances"])


def up_budget(g):
    return P.first_round_budget(g.health, SLACK) + P.up_budget(g.health, SLACK)


def wait_up(g, ids):
    for id in ids:
        g.wait_state(id, "up", up_budget(g))


def wait_reload(g, before):
    """Waits for a reload finished after `before` (admin.reload.done) and returns its record."""
    return g.wait_for(lambda s: s["admin"]["reload"]["done"] > before and
                      not s["admin"]["reload"]["in_progress"] and s["admin"]["reload"],
                      5 + SLACK, what="config reload done")


# --- tokens -----------------------------------------------------------------------------------

def test_401_without_or_with_a_wrong_token(pool, make_poolgate, tmp_path):
    g = admin_gate(make_poolgate, tmp_path, [inst.config() for inst in pool])
    wait_up(g, [pool[0].id])
    target = "/admin/instances/%s/drain" % pool[0].id
    wrong_same_length = ("0" if g.token[0] != "0" else "1") + g.token[1:]
    for token, error in ((None, None), ("nope-not-the-token", "invalid_token"),
                         (wrong_same_length, "invalid_token"), (g.token + "0", "invalid_token")):
        status, headers, body = curl(g, "POST", target, token=token)
        assert status == 401, (token, status, body)
        assert headers["www-authenticate"].startswith("Bearer realm="), headers
        assert (error is None) == ("error=" not in headers["www-authenticate"]), headers
        assert "error" in json.loads(body)
    # Another scheme, and the token in the wrong place.
    status, _, _ = curl(g, "POST", target, extra=["-H", "Authorization: Basic " + g.token])
    assert status == 401
    status, _, _ = curl(g, "POST", target + "?token=" + g.token)
    assert status == 401
    # Nothing changed, and nothing about the path was said before the token was right.
    assert states(g)[pool[0].id] == ("up", None)
    assert curl(g, "GET", "/admin/no-such-thing")[0] == 401
    assert curl(g, "GET", "/admin/no-such-thing", token=g.token)[0] == 404
    # poolgatectl without a token: the server said no -> 1, with a hint.
    r = ctl(g, "drain", pool[0].id, token=False)
    assert r.returncode == 1, r
    assert "401" in r.stderr and "--token-file" in r.stderr, r.stderr
    assert states(g)[pool[0].id] == ("up", None)
    # Read-only endpoints stay open; the token never reaches the log.
    for path in ("/healthz", "/readyz", "/status", "/metrics", "/"):
        assert curl(g, "GET", path)[0] == 200, path
    log = g.log()
    assert g.token not in log and wrong_same_length not in log
    assert re.search(r"notice admin 127\.0\.0\.1:\d+: admin drain %s: 401 " % pool[0].id, log), log
    text = g.get("/metrics").text()
    assert 'poolgate_admin_actions_total{action="drain",result="denied"} 7' in text, text


def test_403_without_a_token_file(pool, make_poolgate):
    g = make_poolgate([pool[0].config()])
    status, _, body = curl(g, "POST", "/admin/instances/%s/drain" % pool[0].id, token="x" * 32)
    assert status == 403, body
    msg = json.loads(body)["error"]
    assert "admin.token_file" in msg and "chmod 600" in msg, msg
    assert g.status()["admin"]["actions_enabled"] is False


def test_token_file_others_can_read_refused(pool, make_poolgate, tmp_path):
    g = admin_gate(make_poolgate, tmp_path, [pool[0].config()], start=False)
    os.chmod(g.token_file, 0o644)
    g.start(wait=False)
    assert g.wait_exit(10) == 2, g.log()
    assert "admin.token_file: mode 0644 gives group or others access" in g.log(), g.log()
    assert "chmod 600 " + g.token_file in g.log()
    # Fixed, it starts; spoiled and reloaded, actions stop (fail closed) until a reload finds it
    # good again.
    os.chmod(g.token_file, 0o600)
    g.start()
    assert g.status()["admin"]["actions_enabled"] is True
    os.chmod(g.token_file, 0o640)
    g.reload()
    g.wait_for(lambda s: not s["admin"]["actions_enabled"], 5 + SLACK, what="actions disabled")
    status, _, body = curl(g, "POST", "/admin/reload", token=g.token)
    assert status == 403 and "cannot be used" in body, (status, body)
    os.chmod(g.token_file, 0o600)
    g.reload()
    g.wait_for(lambda s: s["admin"]["actions_enabled"], 5 + SLACK, what="actions enabled")
    # A rotated token is read at SIGHUP: the old one stops working.
    old = g.token
    g.token = write_token(g.token_file)
    g.reload()
    g.wait_for(lambda s: s["admin"]["reload"]["done"] >= 3, 5 + SLACK, what="third reload")
    P.poll(lambda: curl(g, "GET", "/admin/pins", token=g.token)[0] == 200, 5 + SLACK,
           what="new token accepted")
    assert curl(g, "GET", "/admin/pins", token=old)[0] == 401


# --- drain, undrain, maint ---------------------------------------------------------------------

def test_drain_maint_undrain_via_ctl_with_ssh_users(pool, make_poolgate, tmp_path, untrust):
    e = setup_env(pool, make_poolgate, tmp_path)
    g = e.g
    enable_admin(g, tmp_path)
    ips = dict((inst.id, inst.ip) for inst in pool)
    one, two = pool[0].id, pool[1].id

    out = ctl_ok(g, "drain", one)
    assert out == "%s: draining\n" % one, out
    assert ctl_ok(g, "drain", one) == "%s: draining (already)\n" % one
    assert states(g)[one] == ("draining", "draining")
    rows = dict((r["INSTANCE"], r) for r in table(ctl_ok(g, "status")))
    assert rows[one]["STATE"] == "draining (operator)", rows
    # New users do not land on a draining instance.
    assert landed_on(e, ALICE) == ips[two]
    assert landed_on(e, BOB) == ips[two]
    assert g.user_instance(ALICE) == two and g.user_instance(BOB) == two

    ctl_ok(g, "undrain", one)
    g.wait_state(one, "up", 2 + SLACK)
    assert states(g)[one] == ("up", None)

    # maint: no traffic at all; alice's pin on it moves at her next login.
    assert ctl_ok(g, "maint", two) == "%s: maint\n" % two
    assert states(g)[two] == ("maint", "maint")
    assert landed_on(e, ALICE) == ips[one]
    ctl_ok(g, "undrain", two)
    g.wait_state(two, "up", 2 + SLACK)

    r = ctl(g, "drain", "no-such-instance")
    assert r.returncode == 1 and "no such instance (HTTP 404)" in r.stderr, r
    log = g.log()
    for action in ("drain", "maint", "undrain"):
        assert re.search(r"notice admin 127\.0\.0\.1:\d+: admin %s demo-\d: 200 " % action, log)


def test_drain_survives_sighup_and_restart(pool, make_poolgate, tmp_path):
    g = admin_gate(make_poolgate, tmp_path, [inst.config() for inst in pool])
    one, two = pool[0].id, pool[1].id
    wait_up(g, [one, two])
    status, _, body = curl(g, "POST", "/admin/instances/%s/drain" % one, token=g.token)
    assert status == 200, body
    assert json.loads(body)["instance"]["state"] == "draining"

    # SIGHUP with the same config, then with a change elsewhere in it: the drain stays.
    done = g.status()["admin"]["reload"]["done"]
    g.reload()
    assert wait_reload(g, done)["ok"] is True
    assert states(g)[one] == ("draining", "draining")
    g.cfg["instances"][0]["capacity"] = 5
    g.cfg["instances"][1]["labels"] = {"zone": "c"}
    g.write_config()
    g.reload()
    assert wait_reload(g, done + 1)["ok"] is True
    assert states(g)[one] == ("draining", "draining")
    assert g.instance(one)["capacity"] == 5

    # Restart (SIGTERM): the override comes back from state_dir/admin.json before any probe.
    with open(os.path.join(g.state_dir, "admin.json")) as f:
        saved = json.load(f)
    assert saved["overrides"] == [{"id": one, "admin_state": "draining", "base": "active"}]
    assert stat.S_IMODE(os.stat(os.path.join(g.state_dir, "admin.json")).st_mode) == 0o600
    g.stop()
    g.start()
    assert states(g)[one] == ("draining", "draining")
    assert "restored from %s" % os.path.join(g.state_dir, "admin.json") in g.log()
    # Same after kill -9 once the write is on disk.
    curl(g, "POST", "/admin/instances/%s/maint" % two, token=g.token)
    P.poll(lambda: 'poolgate_admin_state_writes_total{result="ok"} 1' in g.get("/metrics").text(),
           5 + SLACK, what="admin.json written")
    g.kill()
    g.start()
    assert states(g)[one] == ("draining", "draining")
    assert states(g)[two] == ("maint", "maint")

    # The config changing that instance's own admin_state is a newer decision: it wins.
    g.cfg["instances"][0]["admin_state"] = "maint"
    g.write_config()
    done = g.status()["admin"]["reload"]["done"]
    g.reload()
    wait_reload(g, done)
    assert states(g)[one] == ("maint", None)
    assert "operator's draining dropped: the config now says maint" in g.log()


# --- add and remove ----------------------------------------------------------------------------

def test_add_and_remove_instance_via_api(pool, make_poolgate, tmp_path):
    one, two = pool[0], pool[1]
    g = admin_gate(make_poolgate, tmp_path, [one.config()])
    wait_up(g, [one.id])
    # The config's own validator, errors naming the field.
    bad = dict(two.config(), ssh_port=70000)
    status, _, body = curl(g, "POST", "/admin/instances", token=g.token, data=json.dumps(bad))
    assert status == 400 and json.loads(body)["field"] == "ssh_port", body
    status, _, body = curl(g, "POST", "/admin/instances", token=g.token,
                           data=json.dumps(dict(two.config(), colour="red")))
    assert status == 400 and json.loads(body)["field"] == "colour", body
    status, _, body = curl(g, "POST", "/admin/instances", token=g.token, data="{not json")
    assert status == 400, body
    status, _, body = curl(g, "POST", "/admin/instances", token=g.token,
                           data=json.dumps(dict(two.config(), id=one.id)))
    assert status == 409, body

    # Added: probed and up; shown with source "api".
    status, _, body = curl(g, "POST", "/admin/instances", token=g.token,
                           data=json.dumps(two.config()))
    assert status == 201, body
    assert json.loads(body)["instance"]["source"] == "api"
    wait_up(g, [two.id])
    rows = dict((r["INSTANCE"], r) for r in table(ctl_ok(g, "status")))
    assert rows[two.id]["SOURCE"] == "api" and rows[two.id]["STATE"] == "up", rows

    # It stays across SIGHUP and restart.
    done = g.status()["admin"]["reload"]["done"]
    g.reload()
    wait_reload(g, done)
    assert g.instance(two.id)["source"] == "api"
    g.stop()
    g.start()
    assert g.instance(two.id)["source"] == "api"
    wait_up(g, [two.id])

    # Removing a config instance is the config's business.
    r = ctl(g, "remove", one.id)
    assert r.returncode == 1 and "config file" in r.stderr, r
    assert ctl_ok(g, "remove", two.id) == "%s: removed\n" % two.id
    assert g.instance(two.id) is None
    r = ctl(g, "remove", two.id)
    assert r.returncode == 1 and "HTTP 404" in r.stderr, r
    g.stop()
    g.start()
    assert g.instance(two.id) is None

    # poolgatectl add reads the instance from a file.
    path = tmp_path / "two.json"
    path.write_text(json.dumps(two.config()))
    assert ctl_ok(g, "add", str(path)).startswith("%s: added" % two.id)
    wait_up(g, [two.id])


# --- pins: unpin and move ----------------------------------------------------------------------

def test_unpin_and_move_alice(pool, make_poolgate, tmp_path, untrust):
    e = setup_env(pool, make_poolgate, tmp_path)
    g = e.g
    enable_admin(g, tmp_path)
    ips = dict((inst.id, inst.ip) for inst in pool)
    ids = dict((inst.ip, inst.id) for inst in pool)

    first = ids[landed_on(e, ALICE)]
    other = [i for i in ips if i != first][0]
    rows = table(ctl_ok(g, "pins"))
    assert [(r["USER"], r["INSTANCE"]) for r in rows] == [(ALICE, first)], rows
    pins = json.loads(ctl_ok(g, "--json", "pins"))
    assert pins["total"] == 1 and pins["pins"][0]["user"] == ALICE, pins

    # move: her next ssh login lands on the other instance.
    out = ctl_ok(g, "move", ALICE, other)
    assert out == "%s: pinned to %s (was %s)\n" % (ALICE, other, first), out
    assert landed_on(e, ALICE) == ips[other]
    assert landed_on(e, ALICE) == ips[other]

    # unpin: forgotten; her next login is placed afresh (and pinned again).
    assert ctl_ok(g, "unpin", ALICE) == "%s: unpinned (was %s)\n" % (ALICE, other)
    assert table(ctl_ok(g, "pins")) == []
    r = ctl(g, "unpin", ALICE)
    assert r.returncode == 1 and "no pin (HTTP 404)" in r.stderr, r
    assert landed_on(e, ALICE) in ips.values()
    assert g.user_instance(ALICE) is not None

    # Moves onto an instance that takes no new users are refused.
    ctl_ok(g, "drain", other)
    r = ctl(g, "move", BOB, other)
    assert r.returncode == 1 and "HTTP 409" in r.stderr, r
    r = ctl(g, "move", BOB, "no-such-instance")
    assert r.returncode == 1 and "HTTP 404" in r.stderr, r
    assert g.user_instance(BOB) is None


# --- poolgatectl output and usage ---------------------------------------------------------------

def test_ctl_tables_json_and_usage(pool, make_poolgate, tmp_path):
    g = admin_gate(make_poolgate, tmp_path, [inst.config() for inst in pool])
    wait_up(g, [inst.id for inst in pool])
    curl(g, "PUT", "/admin/pins/carol", token=g.token, data=json.dumps({"instance": pool[0].id}))

    out = ctl_ok(g, "status")
    assert re.match(r"poolgate \S+: 2 instances, 2 up, 1 user pinned\n", out), out
    rows = table(out)
    assert [r["INSTANCE"] for r in rows] == [pool[0].id, pool[1].id]
    for r in rows:
        assert r["STATE"] == "up" and r["SOURCE"] == "config", r
        assert r["LOAD"], r
    assert rows[0]["USERS"] == "1/%d" % pool[0].capacity
    # Columns line up: every row's cells start where the header's do.
    lines = out.splitlines()[1:]
    col = lines[0].index("STATE")
    assert all(l[col - 2:col] == "  " and l[col] != " " for l in lines), lines

    status = json.loads(ctl_ok(g, "--json", "status"))
    assert [i["id"] for i in status["instances"]] == [pool[0].id, pool[1].id]
    drained = json.loads(ctl_ok(g, "--json", "drain", pool[1].id))
    assert drained["instance"]["state"] == "draining" and drained["changed"] is True
    assert json.loads(ctl_ok(g, "--json", "undrain", pool[1].id))["instance"]["admin_override"] \
        is None
    # A user name that is all terminal escapes prints escaped.
    curl(g, "PUT", "/admin/pins/" + urllib.parse.quote("\x1b]0;owned\x07\x1b[2J", safe=""),
         token=g.token, data=json.dumps({"instance": pool[1].id}))
    out = ctl_ok(g, "pins")
    assert "\x1b" not in out and "\\x1b]0;owned\\x07\\x1b[2J" in out, repr(out)

    # Exit codes: 2 usage, 1 unreachable or refused.
    for args in ((), ("frobnicate",), ("drain",), ("move", "x"), ("--admin", "nonsense", "status"),
                 ("--timeout", "0", "status")):
        r = ctl(g, *args)
        assert r.returncode == 2, (args, r)
    r = ctl(g, "--token-file", str(tmp_path / "missing"), "status", token=False)
    assert r.returncode == 2, r
    r = subprocess.run([ctl_bin(), "--admin", "127.0.0.1:%d" % P.free_port(), "status"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot connect" in r.stderr, r
    # The environment names the listener and the token file too.
    env = dict(os.environ, POOLGATE_ADMIN="127.0.0.1:%d" % g.admin_port,
               POOLGATE_TOKEN_FILE=g.token_file)
    r = subprocess.run([ctl_bin(), "pins"], capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0 and "carol" in r.stdout, r


def test_reload_via_ctl(pool, make_poolgate, tmp_path):
    g = admin_gate(make_poolgate, tmp_path, [pool[0].config()])
    assert ctl_ok(g, "reload") == "config reloaded\n"
    assert g.status()["admin"]["reload"]["ok"] is True
    assert "reload: re-reading" in g.log()
    g.write_config(raw='{"instances": [{"id": "x"}]}')
    r = ctl(g, "reload")
    assert r.returncode == 1 and "reload refused: instances[0].address: required" in r.stdout, r
    assert g.instance(pool[0].id) is not None
    g.write_config()
    assert json.loads(ctl_ok(g, "--json", "reload"))["ok"] is True


# --- /status, /metrics --------------------------------------------------------------------------

def test_status_and_metrics_show_admin(pool, make_poolgate, tmp_path, promtool):
    g = admin_gate(make_poolgate, tmp_path, [inst.config() for inst in pool])
    one = pool[0].id
    curl(g, "POST", "/admin/instances/%s/drain" % one, token=g.token)
    curl(g, "POST", "/admin/instances/%s/drain" % one, token="wrong" * 8)
    curl(g, "DELETE", "/admin/pins/nobody", token=g.token)
    s = g.status()
    assert s["admin"]["overrides"] == [{"id": one, "admin_state": "draining", "base": "active"}]
    assert s["admin"]["actions"]["drain"] == {"ok": 1, "denied": 1, "rejected": 0, "error": 0}
    assert s["admin"]["actions"]["unpin"]["rejected"] == 1
    assert g.instance(one, s)["admin_override"] == "draining"
    text = g.get("/metrics").text()
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    for line in ('poolgate_admin_actions_total{action="drain",result="ok"} 1',
                 'poolgate_admin_actions_total{action="drain",result="denied"} 1',
                 'poolgate_admin_actions_total{action="unpin",result="rejected"} 1',
                 'poolgate_admin_override{instance="%s",admin_state="draining"} 1' % one,
                 "poolgate_admin_actions_enabled 1"):
        assert line in text, line


def test_expect_100_continue_is_answered(pool, make_poolgate, tmp_path):
    """curl waits a second for "100 Continue" before sending a body it announced with Expect;
    the admin listener answers it at once."""
    g = admin_gate(make_poolgate, tmp_path, [pool[0].config()])
    inst = dict(pool[1].config(), labels={"k%d" % i: "v" * 40 for i in range(30)})
    t0 = time.monotonic()
    status, _, body = curl(g, "POST", "/admin/instances", token=g.token, data=json.dumps(inst),
                           extra=["-H", "Expect: 100-continue", "--expect100-timeout", "30"])
    assert status == 201, body
    assert time.monotonic() - t0 < 10, "curl waited for its 100 Continue"
    # Over the body limit: refused from the head, without reading the body.
    status, _, _ = curl(g, "POST", "/admin/instances", token=g.token, data="x" * 20000,
                        extra=["-H", "Expect: 100-continue", "--expect100-timeout", "30"])
    assert status == 413


def test_long_header_names_and_expect_values(pool, make_poolgate, tmp_path):
    """Regression (found by fuzz/httpreq): a header name over 32 bytes, or an Expect value over
    16, was copied past its buffer once its length had been counted past the end."""
    g = admin_gate(make_poolgate, tmp_path, [pool[0].config()])
    long_name = "X-" + "Very-Long-Header-Name-" * 8
    for extra in (["-H", long_name + ": 1"], ["-H", "Expect: 100-continue" + "-x" * 40],
                  ["-H", long_name + ": 1", "-H", "Authorization: Bearer " + g.token]):
        status, _, _ = curl(g, "GET", "/admin/pins", token=None, extra=extra)
        assert status in (200, 401), (extra, status)
    assert curl(g, "GET", "/admin/pins", token=g.token)[0] == 200
    assert g.alive()


# --- the dashboard ------------------------------------------------------------------------------

def chromium_or_skip():
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable("chromium not installed (Debian package chromium; run scripts/deps): "
                     "needed to render the dashboard")
    return CHROMIUM


def test_dashboard_csp_no_external_urls_and_escaping(pool, make_poolgate, tmp_path):
    g = admin_gate(make_poolgate, tmp_path, [inst.config() for inst in pool])
    wait_up(g, [inst.id for inst in pool])
    evil = ["<img src=x onerror=\"document.title='pwned'\">", "<script>document.title='pwned2'"
            "</script>", "a&b \"quoted\""]
    for name in evil:
        status, _, body = curl(g, "PUT", "/admin/pins/" + urllib.parse.quote(name, safe=""),
                               token=g.token, data=json.dumps({"instance": pool[0].id}))
        assert status == 200, body
    curl(g, "POST", "/admin/instances/%s/drain" % pool[1].id, token=g.token)

    status, headers, html = curl(g, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html"), headers
    csp = headers["content-security-policy"]
    for directive in ("default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'",
                      "require-trusted-types-for 'script'"):
        assert directive in csp, csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/]+=*';", csp), csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-frame-options"] == "DENY"
    # Self-contained: no URL of anything anywhere, no src/href attributes at all.
    assert not re.search(r"(https?:)?//[A-Za-z0-9]", html), re.findall(r".{20}//.{20}", html)
    assert not re.search(r"\b(src|href)\s*=", html)
    # The page itself is constant: no value from /status is in it.
    assert "pgtest" not in html and "onerror" not in html and pool[0].id not in html

    chromium = chromium_or_skip()
    profile = str(tmp_path / "chromium")
    shot = str(tmp_path / "dashboard.png")
    url = "http://%s:%d/" % (g.admin_host, g.admin_port)
    base = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--user-data-dir=" + profile, "--virtual-time-budget=5000"]
    r = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    dom = r.stdout
    # The script ran under the CSP (its hash matched): the table has a row per instance.
    rows = re.findall(r'<td class="id">([^<]*)</td>', dom)
    assert rows == [pool[0].id, pool[1].id], dom[-3000:]
    assert 'class="state s-draining">draining</span>' in dom
    # The hostile names are text, not markup: escaped in the DOM, no element made from them.
    users = re.findall(r'<span class="user">([^<]*)</span>', dom)
    assert "&lt;img src=x onerror=\"document.title='pwned'\"&gt;" in users, users
    assert "&lt;script&gt;document.title='pwned2'&lt;/script&gt;" in users, users
    assert "a&amp;b \"quoted\"" in users, users
    assert "<img" not in dom and "pwned" not in re.search(r"<title>(.*)</title>", dom).group(1)
    assert dom.count("<script>") == 1
    r = subprocess.run(base + ["--window-size=1280,500", "--screenshot=" + shot, url],
                       capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0 and os.path.getsize(shot) > 10000, r.stderr[-2000:]
