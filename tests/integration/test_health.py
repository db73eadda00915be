"""Health checks against real sshd and JupyterHub: states on /status, /readyz, timing of the
rise/fall hysteresis, and the log line of each state change."""

import re
import time

import pool as P
from conftest import SLACK

IDS = ["demo-1", "demo-2"]


def check_fields(c, name):
    assert set(("ok", "latency_ms", "at", "error")) <= set(c), "%s check fields: %r" % (name, c)


def test_both_instances_up_with_all_checks(pool, poolgate):
    h = poolgate.health
    s = poolgate.wait_for(P.all_up(IDS), P.up_budget(h, SLACK))
    assert s["version"] == "0.1.0"
    assert s["ready"] is True
    now, started = P.parse_rfc3339(s["now"]), P.parse_rfc3339(s["started"])
    assert started <= now
    assert [i["id"] for i in s["instances"]] == IDS or sorted(i["id"] for i in s["instances"]) == IDS
    for inst in pool:
        i = poolgate.instance(inst.id, s)
        assert i["address"] == inst.ip
        assert i["ssh_port"] == inst.ssh_port and i["http_port"] == inst.http_port
        assert i["http_scheme"] == "http"
        assert i["source"] == "config"
        assert (i["state"], i["health"], i["admin_state"]) == ("up", "up", "active")
        assert i["capacity"] == inst.capacity
        assert i["labels"] == inst.labels
        assert i["users"] == []
        P.parse_rfc3339(i["since"])
        assert isinstance(i["reason"], str)
        for name in ("tcp", "ssh", "http"):
            c = i["checks"][name]
            check_fields(c, name)
            assert c["ok"] is True, "%s: %s check %r" % (inst.id, name, c)
            assert c["error"] is None
            assert isinstance(c["latency_ms"], (int, float)) and 0 <= c["latency_ms"] < 5000
            P.parse_rfc3339(c["at"])
        # The ident poolgate saw is the one the real sshd sends.
        assert i["checks"]["ssh"]["ident"] == inst.sshd.ident
        assert i["checks"]["ssh"]["ident"].startswith("SSH-2.0-OpenSSH_")
        assert i["checks"]["http"]["status"] == 200
    assert poolgate.get("/readyz").status == 200
    assert poolgate.get("/healthz").status == 200


def test_first_round_decides_from_unknown(pool, make_poolgate):
    """From unknown, the first round decides: with rise = fall = 3 and a 4 s interval, a healthy
    instance must be up (and a dead one down) after one round, not three. A hung instance whose
    first round cannot have finished yet is still unknown, and its unfinished check is null."""
    bh = P.BlackholeServer("127.0.0.11", [0, 0])
    try:
        h = {"interval_ms": 4000, "timeout_ms": 2500, "rise": 3, "fall": 3, "jitter_pct": 0}
        g = make_poolgate([pool[0].config(),
                           dict(pool[0].config(), id="dead", address="127.0.0.9"),
                           dict(pool[0].config(), id="hung", address="127.0.0.11",
                                ssh_port=bh.ports[0], http_port=bh.ports[1])], health=h)
        i = g.instance("hung")
        assert i["state"] == "unknown", i
        assert i["checks"]["ssh"]["ok"] is None, i
        assert g.get("/readyz").status in (200, 503)
        # One round (at most one interval away) plus its checks; three rounds would take >= 8 s.
        budget = P.round_max(h) + h["timeout_ms"] / 1000.0 + 1.0
        t0 = time.monotonic()
        g.wait_for(lambda s: g.instance("demo-1", s)["state"] == "up"
                   and g.instance("dead", s)["state"] == "down", budget,
                   what="demo-1 up and dead down after the first round")
        assert time.monotonic() - t0 < 2 * P.round_min(h)
    finally:
        bh.close()


def _state_change_line(g, id, old, new, mark, timeout):
    needle = "instance %s: %s -> %s" % (id, old, new)
    line = g.wait_log(lambda l: needle in l, timeout, mark, what="log line %r" % needle)
    reason = line.split(needle, 1)[1].strip(" \t:;,-()[]")
    assert reason, "state change logged without a reason: %r" % line
    return line


def test_sshd_killed_goes_down_then_up(pool, poolgate):
    h = poolgate.health
    poolgate.wait_for(P.all_up(IDS), P.up_budget(h, SLACK))
    mark = poolgate.log_mark()

    t0 = time.monotonic()
    pool[0].sshd.kill()
    seen = []

    def down(s):
        seen.append(dict((i["id"], i["state"]) for i in s["instances"]))
        return poolgate.instance("demo-1", s)["state"] == "down"
    budget = P.down_budget(h, SLACK)
    poolgate.wait_for(down, budget, interval=0.05, what="demo-1 down after its sshd was killed")
    took = time.monotonic() - t0
    # Hysteresis: `fall` failed rounds, the first of which may start right after the kill.
    assert took >= (h["fall"] - 1) * P.round_min(h) - 0.1, \
        "down after %.2fs: fewer than fall=%d rounds?" % (took, h["fall"])
    assert all(st["demo-2"] == "up" for st in seen), "demo-2 left up: %r" % seen
    i = poolgate.instance("demo-1")
    assert i["health"] == "down"
    assert i["checks"]["tcp"]["ok"] is False
    assert re.search(r"refused", i["checks"]["tcp"]["error"] or "", re.I), i["checks"]["tcp"]
    assert i["checks"]["ssh"]["ok"] is False
    assert i["reason"], "down without a reason on /status"
    assert poolgate.get("/readyz").status == 200  # demo-2 is still up
    assert poolgate.status()["ready"] is True
    _state_change_line(poolgate, "demo-1", "up", "down", mark, 2)

    mark = poolgate.log_mark()
    t0 = time.monotonic()  # before start(): a probe may succeed while start() is returning
    pool[0].sshd.start()
    poolgate.wait_state("demo-1", "up", P.up_budget(h, SLACK))
    took = time.monotonic() - t0
    assert took >= (h["rise"] - 1) * P.round_min(h) - 0.1, \
        "up after %.2fs: fewer than rise=%d rounds?" % (took, h["rise"])
    i = poolgate.instance("demo-1")
    assert all(i["checks"][c]["ok"] is True for c in ("tcp", "ssh", "http")), i["checks"]
    _state_change_line(poolgate, "demo-1", "down", "up", mark, 2)


def test_jupyterhub_killed_goes_down_then_up(pool, poolgate):
    h = poolgate.health
    poolgate.wait_for(P.all_up(IDS), P.up_budget(h, SLACK))
    mark = poolgate.log_mark()
    pool[1].hub.kill()
    poolgate.wait_state("demo-2", "down", P.down_budget(h, SLACK))
    i = poolgate.instance("demo-2")
    assert i["checks"]["http"]["ok"] is False, i["checks"]
    assert i["checks"]["http"]["error"], i["checks"]["http"]
    # sshd is alive: only the http check fails.
    assert i["checks"]["tcp"]["ok"] is True and i["checks"]["ssh"]["ok"] is True, i["checks"]
    assert poolgate.instance("demo-1")["state"] == "up"
    assert poolgate.get("/readyz").status == 200
    _state_change_line(poolgate, "demo-2", "up", "down", mark, 2)

    pool[1].hub.start()
    poolgate.wait_state("demo-2", "up", P.up_budget(h, SLACK))
    assert poolgate.instance("demo-2")["checks"]["http"]["status"] == 200


def test_all_down_not_ready(pool, poolgate):
    h = poolgate.health
    poolgate.wait_for(P.all_up(IDS), P.up_budget(h, SLACK))
    assert poolgate.get("/readyz").status == 200
    for inst in pool:
        inst.sshd.kill()
    poolgate.wait_for(lambda s: all(i["state"] == "down" for i in s["instances"]),
                      P.down_budget(h, SLACK), what="all instances down")
    r = poolgate.get("/readyz")
    assert r.status == 503, r
    assert poolgate.status()["ready"] is False
    assert poolgate.get("/healthz").status == 200  # the process itself is fine
    for inst in pool:
        inst.sshd.start()
    poolgate.wait_for(P.all_up(IDS), P.up_budget(h, SLACK))
    assert poolgate.get("/readyz").status == 200


def test_nothing_listening_refused_and_hung_peer_times_out(pool, make_poolgate):
    """127.0.0.9 has nothing listening (refused); 127.0.0.10 accepts TCP and never says a word
    (timeouts). Both go down; the real instances stay up throughout."""
    bh = P.BlackholeServer("127.0.0.10", [0, 0])
    try:
        g = make_poolgate([inst.config() for inst in pool] + [
            dict(pool[0].config(), id="refused", address="127.0.0.9"),
            dict(pool[0].config(), id="hung", address="127.0.0.10", ssh_port=bh.ports[0],
                 http_port=bh.ports[1])])
        h = g.health
        seen = []

        def settled(s):
            st = dict((i["id"], i["state"]) for i in s["instances"])
            seen.append(st)
            return st == {"demo-1": "up", "demo-2": "up", "refused": "down", "hung": "down"}
        g.wait_for(settled, P.up_budget(h, SLACK) + P.down_budget(h, SLACK),
                   what="real instances up, refused and hung down")
        i = g.instance("refused")
        assert i["checks"]["tcp"]["ok"] is False
        assert re.search(r"refused", i["checks"]["tcp"]["error"] or "", re.I), i["checks"]["tcp"]
        i = g.instance("hung")
        assert i["checks"]["tcp"]["ok"] is True, i["checks"]  # the connect itself succeeds
        for name in ("ssh", "http"):
            c = i["checks"][name]
            assert c["ok"] is False, (name, c)
            assert re.search(r"time[ds]?[ _-]?out", c["error"] or "", re.I), (name, c)
            # A timeout is reported at about timeout_ms, not much later.
            assert c["latency_ms"] is None or c["latency_ms"] < h["timeout_ms"] + 1000, (name, c)
        # Watch a few more rounds: the hung peer must not stall the others' probes.
        t_end = time.monotonic() + 3 * P.round_max(h)
        while time.monotonic() < t_end:
            s = g.status()
            assert g.instance("demo-1", s)["state"] == "up", s
            assert g.instance("demo-2", s)["state"] == "up", s
            time.sleep(0.1)
        ups = [st for st in seen if st.get("demo-1") == "up"]
        assert ups and all(st.get("demo-1") == "up" for st in seen[seen.index(ups[0]):]), seen
        assert g.get("/readyz").status == 200
    finally:
        bh.close()


def test_wrong_protocol_peers_go_down(pool, make_poolgate):
    """A peer that answers, but not as sshd (an SMTP-like banner) and not with a 2xx
    (a canned 503): both checks fail with the peer's words, not with a timeout."""
    ssh_liar = P.BlackholeServer("127.0.0.12", [0], greeting=b"220 mail.example ESMTP\r\n")
    http_503 = P.BlackholeServer("127.0.0.12", [0], greeting=(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
    try:
        g = make_poolgate([pool[0].config(),
                           dict(pool[0].config(), id="liar", address="127.0.0.12",
                                ssh_port=ssh_liar.ports[0], http_port=http_503.ports[0])])
        g.wait_for(lambda s: g.instance("liar", s)["state"] == "down"
                   and g.instance("demo-1", s)["state"] == "up",
                   P.up_budget(g.health, SLACK), what="liar down, demo-1 up")
        c = g.instance("liar")["checks"]
        assert c["tcp"]["ok"] is True, c
        assert c["ssh"]["ok"] is False and c["ssh"]["error"], c
        assert c["http"]["ok"] is False and c["http"]["status"] == 503, c
    finally:
        ssh_liar.close()
        http_503.close()


def test_draining_and_maint_are_not_ready(pool, make_poolgate):
    """admin_state wins over health on `state`; /readyz needs an up *and active* instance."""
    g = make_poolgate([pool[0].config(admin_state="draining"), pool[1].config(admin_state="maint")])
    h = g.health

    def healthy(s):
        return all(i["health"] == "up" for i in s["instances"])
    s = g.wait_for(healthy, P.up_budget(h, SLACK), what="both healthy")
    assert g.instance("demo-1", s)["state"] == "draining"
    assert g.instance("demo-1", s)["admin_state"] == "draining"
    assert g.instance("demo-2", s)["state"] == "maint"
    assert g.instance("demo-2", s)["admin_state"] == "maint"
    r = g.get("/readyz")
    assert r.status == 503, r
    assert s["ready"] is False


def test_hysteresis_counts_rounds(pool, make_poolgate):
    """With rise = fall = 4, a state change needs four consecutive rounds after the first one:
    neither a single failed round nor a single good one flips the state."""
    h = {"interval_ms": 300, "timeout_ms": 200, "rise": 4, "fall": 4, "jitter_pct": 10}
    g = make_poolgate([inst.config() for inst in pool], health=h)
    g.wait_for(P.all_up(IDS), P.first_round_budget(g.health, SLACK))

    t0 = time.monotonic()
    pool[0].sshd.kill()
    g.wait_for(lambda s: g.instance("demo-1", s)["state"] == "down",
               P.down_budget(g.health, SLACK), interval=0.02, what="demo-1 down")
    took = time.monotonic() - t0
    assert took >= (h["fall"] - 1) * P.round_min(g.health) - 0.05, \
        "down %.2fs after the kill: fewer than fall=%d failed rounds" % (took, h["fall"])

    t0 = time.monotonic()
    pool[0].sshd.start()
    g.wait_for(lambda s: g.instance("demo-1", s)["state"] == "up",
               P.up_budget(g.health, SLACK), interval=0.02, what="demo-1 up")
    took = time.monotonic() - t0
    assert took >= (h["rise"] - 1) * P.round_min(g.health) - 0.05, \
        "up %.2fs after the restart: fewer than rise=%d good rounds" % (took, h["rise"])
