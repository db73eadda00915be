"""Pins that last, against the real pool: the real OpenSSH client and JupyterHub through poolgate.

- A pin survives SIGTERM and SIGKILL (once its change is on disk: /metrics says so), the journal
  replays, and a journal cut in the middle of its last record starts fine without that record.
- The SSH and HTTPS front doors share one pin table: a user's terminal and browser meet.
- Drain: a draining instance keeps serving users with a live session there, takes nobody new,
  turns `drained` in /status once the last session ends, and the user moves at her next login.
- Idle TTL: a pin without a live session expires; one with a live session does not.
- A state_dir that fills up, or that is read-only: logged, and logins keep working.
- A websocket is a live session.

Which instance served an SSH login is read from $SSH_CONNECTION on the instance (its address);
a browser's, from the hub's own log (a unique `probe` query string per request).
"""

import contextlib
import os
import re
import struct
import subprocess
import time
import uuid

import pytest

import pool as P
from conftest import SLACK
from test_ssh_front import landed_on, run_ssh, setup_env, ssh_args, untrust  # noqa: F401
from test_admin_api import ctl_ok, enable_admin

ALICE, BOB = "pgtest-alice", "pgtest-bob"


def ip_of(e, id):
    return next(i.ip for i in e.pool if i.id == id)


def id_of(e, ip):
    return next(i.id for i in e.pool if i.ip == ip)


def wait_all_up(g):
    h = g.health
    return g.wait_for(P.all_up([i["id"] for i in g.cfg["instances"]]),
                      P.first_round_budget(h, SLACK) + P.up_budget(h, SLACK))


def metric(g, name, labels=""):
    """The value of series `name{labels}` (labels as printed, e.g. 'instance="demo-1"')."""
    want = "%s{%s}" % (name, labels) if labels else name
    for line in g.get("/metrics").text().splitlines():
        if line.split(" ")[0] == want:
            return float(line.split()[1])
    raise AssertionError("%s not in /metrics" % want)


def wait_synced(g, timeout=10.0):
    """Until every pin change is on disk (what a kill -9 may then rely on)."""
    P.poll(lambda: metric(g, "poolgate_pin_journal_unsynced_changes") == 0
           and metric(g, "poolgate_pin_store_healthy", 'store="file"') == 1,
           timeout, 0.05, "pin changes synced to disk")


def pinned_lines(g, user, mark=0):
    return [l for l in g.log_since(mark).splitlines() if "user %s: pinned to" % user in l]


def restart(g, how):
    """Stops poolgate (SIGTERM, or SIGKILL) and starts it again with the same state_dir."""
    if how == "SIGKILL":
        g.kill()
    else:
        g.stop()
    mark = g.log_mark()
    g.start()
    return mark


def journal_records(path):
    """[(offset, length)] of the records in a pin store file (u32 length, u32 crc, body)."""
    with open(path, "rb") as f:
        data = f.read()
    out, off = [], 0
    while off + 8 <= len(data):
        n = struct.unpack(">I", data[off:off + 4])[0]
        out.append((off, 8 + n))
        off += 8 + n
    return out


def test_pin_survives_restart_and_kill(pool, make_poolgate, tmp_path, untrust):
    e = setup_env(pool, make_poolgate, tmp_path)
    g = e.g
    home = landed_on(e, ALICE)
    alice_id = id_of(e, home)
    assert g.user_instance(ALICE) == alice_id

    # SIGTERM: the pin is in the table before anyone logs in, and alice goes home.
    mark = restart(g, "SIGTERM")
    assert g.user_instance(ALICE) == alice_id, g.users()
    g.wait_log(lambda l: "pins: 1 pin replayed" in l, 5, mark, "replay line")
    wait_all_up(g)
    assert landed_on(e, ALICE) == home
    assert pinned_lines(g, ALICE, mark) == [], "alice was placed afresh after SIGTERM"

    # SIGKILL right after bob's pin is made: once /metrics says it is on disk, it survives.
    bob_home = landed_on(e, BOB)
    wait_synced(g)
    mark = restart(g, "SIGKILL")
    log = g.wait_log(lambda l: "pins replayed from" in l, 5, mark, "replay line")
    assert "2 pins replayed" in log and "journal: 1 record" in log, log
    assert g.user_instance(BOB) == id_of(e, bob_home), g.users()
    assert g.user_instance(ALICE) == alice_id, g.users()
    wait_all_up(g)
    assert landed_on(e, BOB) == bob_home
    assert landed_on(e, ALICE) == home
    assert pinned_lines(g, BOB, mark) == [] and pinned_lines(g, ALICE, mark) == []
    assert metric(g, "poolgate_pin_replay_records") == 2  # snapshot: alice, journal: bob


def test_torn_journal_tail(pool, make_poolgate, tmp_path, untrust):
    """kill -9, then the journal cut in the middle of its last record (bob's pin): poolgate starts,
    logs the torn tail, keeps alice and places bob afresh."""
    e = setup_env(pool, make_poolgate, tmp_path)
    g = e.g
    home = landed_on(e, ALICE)
    landed_on(e, BOB)
    wait_synced(g)
    g.kill()
    journal = os.path.join(g.state_dir, "pins.journal")
    recs = journal_records(journal)
    assert len(recs) == 3, recs  # header, alice, bob
    off, n = recs[-1]
    os.truncate(journal, off + n // 2)

    mark = g.log_mark()
    g.start()
    line = g.wait_log(lambda l: "torn last record" in l, 5, mark, "torn tail line")
    assert "pins.journal: torn last record at offset %d" % off in line, line
    assert "the 1 record before it replayed" in line, line
    assert g.user_instance(ALICE) == id_of(e, home)
    assert g.user_instance(BOB) is None, g.users()
    assert metric(g, "poolgate_pin_replay_torn_tails") == 1
    wait_all_up(g)
    assert landed_on(e, ALICE) == home
    landed_on(e, BOB)
    assert len(pinned_lines(g, BOB, mark)) == 1, g.log_since(mark)
    # The start wrote a fresh snapshot and journal: the next start finds nothing torn.
    wait_synced(g)
    mark = restart(g, "SIGTERM")
    g.wait_log(lambda l: "pins: 2 pins replayed" in l, 5, mark, "replay line")
    assert "torn last record" not in g.log_since(mark)


@pytest.fixture
def ssh_https_env(pool, make_https_poolgate, tmp_path, untrust):
    """setup_env with the https front door as well."""
    def make(instances, start=False, health=None):
        return make_https_poolgate(instances, start=start, health=health)
    return setup_env(pool, make, tmp_path)


def served_by(pool, probe, timeout=5.0):
    P.poll(lambda: any(i.hub.log_count(probe) for i in pool), timeout, 0.05,
           "a hub to log %s" % probe)
    return [i.id for i in pool if i.hub.log_count(probe)]


def test_ssh_and_browser_share_one_pin(ssh_https_env, certs):
    e = ssh_https_env
    g = e.g
    # alice: terminal first, then the browser.
    alice_id = id_of(e, landed_on(e, ALICE))
    b = P.HubBrowser(g.base_url, ca=certs.ca)
    probe = uuid.uuid4().hex
    b.login(ALICE, probe=probe)
    assert served_by(e.pool, probe) == [alice_id]
    assert b.affinity()["id"] == alice_id
    # bob: browser first, then the terminal.
    b2 = P.HubBrowser(g.base_url, ca=certs.ca)
    probe = uuid.uuid4().hex
    b2.login(BOB, probe=probe)
    bob_id = g.user_instance(BOB)
    assert served_by(e.pool, probe) == [bob_id]
    assert id_of(e, landed_on(e, BOB)) == bob_id
    # One pin each, made once: nobody was placed a second time by the other door.
    for user in (ALICE, BOB):
        assert len(pinned_lines(g, user)) == 1, (user, pinned_lines(g, user))
    assert g.user_instance(ALICE) == alice_id and g.user_instance(BOB) == bob_id
    assert g.status()["pins"]["total"] == 2


@contextlib.contextmanager
def held_session(e, user, seconds=120):
    """An open ssh session of `user` (sleeping on the instance) for the with-block."""
    mark = e.g.log_mark()
    p = subprocess.Popen(ssh_args(e, user) + ["sleep %d" % seconds], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        e.g.wait_log(lambda l: "user %s: session open on" % user in l, 20, mark,
                     "%s's session to open" % user)
        yield p
    finally:
        p.kill()
        p.wait(10)


def set_config_admin_state(e, id, state):
    g = e.g
    for inst in g.cfg["instances"]:
        if inst["id"] == id:
            inst["admin_state"] = state
    mark = g.log_mark()
    g.write_config()
    g.reload()
    g.wait_log(lambda l: "in force" in l, 10, mark, "reload")


@pytest.mark.parametrize("how", ["config", "poolgatectl"])
def test_drain(pool, make_poolgate, tmp_path, untrust, how):
    """Drain by the instance's admin_state in the config (SIGHUP) or by the operator's
    `poolgatectl drain` (the admin API); the same rules either way."""
    e = setup_env(pool, make_poolgate, tmp_path)
    g = e.g
    if how == "poolgatectl":
        enable_admin(g, tmp_path)

    def set_admin_state(e, id, state):
        if how == "config":
            set_config_admin_state(e, id, state)
        else:
            ctl_ok(g, {"draining": "drain", "active": "undrain"}[state], id)

    with held_session(e, ALICE):
        a = g.user_instance(ALICE)
        b = next(i.id for i in e.pool if i.id != a)
        assert g.instance(a)["live_sessions"] == 1
        set_admin_state(e, a, "draining")
        st = g.instance(a)
        assert st["state"] == "draining" and st["drained"] is False, st
        # Her live session keeps her there: a second connection goes to A too.
        assert landed_on(e, ALICE) == ip_of(e, a)
        # Nobody new lands on a draining instance.
        assert landed_on(e, BOB) == ip_of(e, b)
        assert g.instance(a)["drained"] is False
        assert metric(g, "poolgate_instance_drained", 'instance="%s"' % a) == 0
        assert metric(g, "poolgate_instance_live_sessions", 'instance="%s"' % a) == 1
    # Her last session ended: A is drained, and her next login moves her.
    g.wait_for(lambda s: g.instance(a, s)["drained"] is True, 10, what="%s drained" % a)
    assert g.instance(a)["live_sessions"] == 0
    assert metric(g, "poolgate_instance_drained", 'instance="%s"' % a) == 1
    mark = g.log_mark()
    assert landed_on(e, ALICE) == ip_of(e, b)
    assert "user %s: pinned to %s (was %s: draining, no live session)" % (ALICE, b, a) \
        in g.log_since(mark)
    assert g.user_instance(ALICE) == b
    assert g.users()[a] == []
    # undrain: A takes users again (nothing moves back on its own).
    set_admin_state(e, a, "active")
    assert g.instance(a)["drained"] is False
    assert landed_on(e, ALICE) == ip_of(e, b)


def test_maint_moves_pinned_users(pool, make_poolgate, tmp_path, untrust):
    e = setup_env(pool, make_poolgate, tmp_path)
    g = e.g
    a = id_of(e, landed_on(e, ALICE))
    b = next(i.id for i in e.pool if i.id != a)
    set_config_admin_state(e, a, "maint")
    mark = g.log_mark()
    assert landed_on(e, ALICE) == ip_of(e, b)
    assert "(was %s: maint)" % a in g.log_since(mark)
    assert landed_on(e, BOB) == ip_of(e, b)


def test_idle_ttl(pool, make_poolgate, tmp_path, untrust):
    """pins.idle_ttl_s 3 (the sweep then runs every second): alice's pin, idle, expires; bob's,
    with his session open all along, does not; his expires once his session has ended."""
    ttl = 3

    def make(instances, start=False, health=None):
        return make_poolgate(instances, start=start, health=health,
                             extra={"pins": {"idle_ttl_s": ttl}})
    e = setup_env(pool, make, tmp_path)
    g = e.g
    budget = ttl + 1 + SLACK
    with held_session(e, BOB, seconds=60):
        mark = g.log_mark()
        landed_on(e, ALICE)
        t0 = time.monotonic()
        line = g.wait_log(lambda l: "user %s: pin to" % ALICE in l and "expired" in l,
                          budget + 20, mark, "alice's pin to expire")
        assert re.search(r"expired: idle for \d+ s, no live session", line), line
        assert time.monotonic() - t0 >= ttl - 0.5
        assert g.user_instance(ALICE) is None
        # bob has been connected for longer than the TTL: still pinned.
        assert g.user_instance(BOB) is not None
        assert "user %s: pin to" % BOB not in g.log_since(mark)
        time.sleep(ttl + 1.5)
        assert g.user_instance(BOB) is not None, g.log_since(mark)
        mark = g.log_mark()
    g.wait_log(lambda l: "user %s: pin to" % BOB in l and "expired" in l, budget + 20, mark,
               "bob's pin to expire after his session")
    assert g.status()["pins"]["total"] == 0
    assert metric(g, "poolgate_pin_changes_total", 'change="expired"') == 2


@contextlib.contextmanager
def tmpfs(path, size):
    """A tmpfs of `size` mounted at path (skips the test when mounting is impossible)."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs at %s (needs root and CAP_SYS_ADMIN): %s"
                    % (path, r.stderr.strip()))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)


def on_tmpfs(factory, mnt):
    """A make_poolgate-like factory for setup_env whose poolgate keeps its state in mnt."""
    def make(instances, start=False, health=None):
        g = factory(instances, start=start, health=health)
        g.state_dir = g.cfg["state_dir"] = mnt
        return g
    return make


def fill(path):
    """Writes a file into path until the file system is full."""
    with open(os.path.join(path, "filler"), "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_state_dir_full(pool, make_https_poolgate, certs, tmp_path, untrust):
    """state_dir on a 2 MiB tmpfs that fills up while poolgate runs: the journal's next page
    cannot be had (new pins from browser requests fill the current one), the failure is logged
    once, logins keep working from memory; space comes back and every pin is written."""
    mnt = str(tmp_path / "statefs")
    with tmpfs(mnt, "2m"):
        # Room for the hundreds of pins that fill a page of the journal.
        e = setup_env(pool, on_tmpfs(make_https_poolgate, mnt), tmp_path,
                      instances=[inst.config(capacity=1000) for inst in pool])
        g = e.g
        try:
            alice = landed_on(e, ALICE)
            wait_synced(g)
            fill(mnt)
            mark = g.log_mark()
            # Each browser login of a new user pins that user: ~100 records fill a page.
            b = P.HubBrowser(g.base_url, ca=certs.ca)
            for n in range(400):
                b.login("fill-%d" % n)
                if "pins: cannot append to %s" % mnt in g.log_since(mark):
                    break
            line = g.wait_log(lambda l: "pins: cannot append to %s" % mnt in l, 10, mark,
                              "the disk error")
            assert "no space left on device" in line, line
            assert metric(g, "poolgate_pin_store_healthy", 'store="file"') == 0
            assert metric(g, "poolgate_pin_store_errors_total") >= 1
            assert 'op="write",error="no space left on device"' in g.get("/metrics").text()
            # Logins keep working, from memory; the error is not logged again.
            assert landed_on(e, ALICE) == alice
            bob = landed_on(e, BOB)
            assert g.user_instance(BOB) == id_of(e, bob)
            probe = uuid.uuid4().hex
            P.HubBrowser(g.base_url, ca=certs.ca).login(ALICE, probe=probe)
            assert served_by(e.pool, probe) == [id_of(e, alice)]
            time.sleep(6)  # past the 5 s retry: retries fail quietly
            assert g.log_since(mark).count("pins: cannot") == 1, g.log_since(mark)
            assert "no space left on device" in g.status()["pins"]["store_last_error"]
            # Space again: the next retry writes a snapshot of everything.
            os.unlink(os.path.join(mnt, "filler"))
            g.wait_log(lambda l: "is writable again" in l, 10, mark, "recovery")
            wait_synced(g)
            total = g.status()["pins"]["total"]
            assert total >= 3
            mark = restart(g, "SIGKILL")
            g.wait_log(lambda l: "pins: %d pins replayed" % total in l, 5, mark, "replay")
            assert g.user_instance(ALICE) == id_of(e, alice)
            assert g.user_instance(BOB) == id_of(e, bob)
        finally:
            g.stop(check=False)


def test_state_dir_read_only(pool, make_poolgate, tmp_path, untrust):
    """state_dir on a tmpfs remounted read-only between two runs: the second run reads its keys
    and pins, cannot write, says so once, and serves logins; its new pins live in memory."""
    mnt = str(tmp_path / "statefs")
    with tmpfs(mnt, "4m"):
        e = setup_env(pool, on_tmpfs(make_poolgate, mnt), tmp_path)
        g = e.g
        try:
            alice = landed_on(e, ALICE)
            wait_synced(g)
            g.stop()
            r = subprocess.run(["mount", "-o", "remount,ro", mnt], capture_output=True,
                               text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            mark = g.log_mark()
            g.start()
            line = g.wait_log(lambda l: "pins: cannot write the snapshot in %s" % mnt in l, 10,
                              mark, "the read-only error")
            assert "read-only file system" in line, line
            assert g.user_instance(ALICE) == id_of(e, alice)
            wait_all_up(g)
            assert landed_on(e, ALICE) == alice
            bob = landed_on(e, BOB)
            assert g.user_instance(BOB) == id_of(e, bob)
            assert metric(g, "poolgate_pin_store_healthy", 'store="file"') == 0
            assert g.status()["pins"]["store_healthy"] is False
        finally:
            g.stop(check=False)


def test_websocket_is_a_live_session(pool, make_https_poolgate, certs):
    """A terminal's websocket counts as the user's live session on her instance while it is
    open; plain requests do not."""
    g = make_https_poolgate([i.config() for i in pool])
    wait_all_up(g)
    b = P.HubBrowser(g.base_url, ca=certs.ca)
    user = "pgtest-ws"
    b.login(user)
    if b.user_model(user).get("servers"):
        b.stop_server(user)
    b.spawn(user)
    home = g.user_instance(user)
    b.open_ui(user)
    assert g.instance(home)["live_sessions"] == 0
    term = b.terminal(user, b.new_terminal(user))
    try:
        term.run("echo live-$((6*7))")
        term.wait_for("live-42")
        assert g.instance(home)["live_sessions"] == 1
        assert g.status()["pins"]["live_sessions"] == 1
    finally:
        term.close()
    g.wait_for(lambda s: g.instance(home, s)["live_sessions"] == 0, 10,
               what="the websocket's session to end")
    b.stop_server(user)
