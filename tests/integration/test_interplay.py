"""How config reloads, the discovery file and the health machinery interact over time."""

import copy
import os
import signal
import time

import pool as P
from conftest import SLACK


def count_lines(g, mark, pred):
    return sum(1 for l in g.log_since(mark).splitlines() if pred(l))


def test_config_drops_id_then_discovery_entry_takes_over(pool, make_poolgate):
    """The discovery file has an id the config also has (refused: config wins). When a reload
    removes it from the config, the discovery entry applies, without the discovery file having
    to change."""
    g = make_poolgate([pool[0].config(), pool[1].config()],
                      discovery=[pool[1].config(id="demo-1", labels={"from": "discovery"})])
    g.wait_for(lambda s: g.instance("demo-1", s)["source"] == "config", 5)
    time.sleep(0.6)  # a few discovery polls
    assert g.instance("demo-1")["address"] == pool[0].ip
    cfg = copy.deepcopy(g.cfg)
    cfg["instances"] = [pool[1].config()]  # demo-1 leaves the config
    g.write_config(cfg)
    g.reload()
    i = g.wait_for(lambda s: (g.instance("demo-1", s) or {}).get("source") == "discovery"
                   and g.instance("demo-1", s), 5,
                   what="demo-1 now from the discovery file")
    assert i["address"] == pool[1].ip and i["labels"] == {"from": "discovery"}, i


def test_config_adds_id_that_discovery_has(pool, make_poolgate):
    """The reverse: discovery has disc-x; a reload adds disc-x to the config: config wins."""
    g = make_poolgate([pool[0].config()], discovery=[pool[1].config(id="disc-x")])
    g.wait_for(lambda s: (g.instance("disc-x", s) or {}).get("source") == "discovery", 5)
    cfg = copy.deepcopy(g.cfg)
    cfg["instances"].append(pool[0].config(id="disc-x", labels={"from": "config"}))
    g.write_config(cfg)
    g.reload()
    i = g.wait_for(lambda s: (g.instance("disc-x", s) or {}).get("source") == "config"
                   and g.instance("disc-x", s), 5, what="disc-x taken over by the config")
    assert i["address"] == pool[0].ip and i["labels"] == {"from": "config"}, i
    assert len([x for x in g.status()["instances"] if x["id"] == "disc-x"]) == 1


def test_reload_changes_health_timing(pool, make_poolgate):
    slow = {"interval_ms": 5000, "timeout_ms": 1000, "rise": 3, "fall": 3, "jitter_pct": 0}
    g = make_poolgate([inst.config() for inst in pool], health=slow)
    g.wait_for(P.all_up(["demo-1", "demo-2"]), P.first_round_budget(g.health, SLACK))
    cfg = copy.deepcopy(g.cfg)
    cfg["health"].update({"interval_ms": 200, "timeout_ms": 100, "fall": 1, "rise": 1})
    g.write_config(cfg)
    g.reload()
    time.sleep(0.5)
    pool[0].sshd.kill()
    t0 = time.monotonic()
    # Under the old timing this takes >= 10 s; under the new one well under 2 s. A round
    # already scheduled under the old interval may still be pending once (up to 5 s).
    g.wait_state("demo-1", "down", 5 + 1 + SLACK)
    took = time.monotonic() - t0
    assert took < 6.5, "down after %.1fs: the reloaded timing did not apply" % took
    pool[0].sshd.start()
    g.wait_state("demo-1", "up", 2 + SLACK)


def test_reload_with_config_file_missing_keeps_old(pool, make_poolgate):
    g = make_poolgate([pool[0].config()])
    before = [i["id"] for i in g.status()["instances"]]
    mark = g.log_mark()
    os.rename(g.config_path, g.config_path + ".away")
    g.reload()
    g.wait_log(lambda l: g.config_path in l, 5, mark, what="log line naming the missing file")
    assert g.alive()
    assert [i["id"] for i in g.status()["instances"]] == before
    os.rename(g.config_path + ".away", g.config_path)


def test_discovery_file_deleted_keeps_set_and_logs_once(pool, make_poolgate):
    g = make_poolgate([pool[0].config()], discovery=[pool[1].config(id="disc-2")])
    g.wait_state("disc-2", "up", P.up_budget(g.health, SLACK))
    mark = g.log_mark()
    os.unlink(g.discovery_path)
    g.wait_log(lambda l: g.discovery_path in l, 5, mark, what="log line for the missing file")
    time.sleep(2.0)  # ten polls
    assert g.instance("disc-2") is not None and g.instance("disc-2")["state"] == "up"
    n = count_lines(g, mark, lambda l: g.discovery_path in l)
    assert n == 1, "the missing discovery file was logged %d times in ten polls:\n%s" % (
        n, g.log_since(mark)[-3000:])
    # Restored: applied again (and a further change too).
    g.write_discovery([pool[1].config(id="disc-3")])
    g.wait_for(lambda s: g.instance("disc-3", s) is not None and g.instance("disc-2", s) is None,
               5, what="new discovery file applied after the missing period")


def test_invalid_discovery_logged_once(pool, make_poolgate):
    g = make_poolgate([pool[0].config()], discovery=[pool[1].config(id="disc-2")])
    g.wait_for(lambda s: g.instance("disc-2", s) is not None, 5)
    mark = g.log_mark()
    g.write_discovery(raw='{"instances": [')
    g.wait_log(lambda l: "discovery" in l.lower() or g.discovery_path in l, 5, mark)
    time.sleep(2.0)
    n = count_lines(g, mark, lambda l: g.discovery_path in l or "discovery" in l.lower())
    assert n == 1, "an unchanged invalid discovery file was logged %d times:\n%s" % (
        n, g.log_since(mark)[-3000:])


def test_invalid_discovery_at_start(pool, make_poolgate):
    g = make_poolgate([pool[0].config()], discovery=True, start=False)
    g.write_discovery(raw="not json")
    g.start()
    assert [i["id"] for i in g.status()["instances"]] == ["demo-1"]
    g.write_discovery([pool[1].config(id="disc-2")])
    g.wait_for(lambda s: g.instance("disc-2", s) is not None, 5, what="fixed file applied")


def test_admin_state_change_via_discovery(pool, make_poolgate):
    """draining via the discovery file: state follows, health is kept (no reset to unknown),
    and /readyz follows when it was the only active instance."""
    g = make_poolgate([], discovery=[pool[1].config(id="disc-2")])
    i = g.wait_state("disc-2", "up", P.up_budget(g.health, SLACK))
    assert g.get("/readyz").status == 200
    g.write_discovery([pool[1].config(id="disc-2", admin_state="draining")])
    j = g.wait_state("disc-2", "draining", 5)
    assert j["health"] == "up", j
    assert g.get("/readyz").status == 503
    g.write_discovery([pool[1].config(id="disc-2")])
    g.wait_state("disc-2", "up", 5)
    assert g.get("/readyz").status == 200
    assert i["checks"]["ssh"]["ok"] is True


def test_sigterm_while_probes_hang(pool, make_poolgate):
    """A probe stuck on a hung peer (long timeout) must not delay shutdown."""
    bh = P.BlackholeServer("127.0.0.17", [0, 0])
    try:
        g = make_poolgate([dict(pool[0].config(), id="hung", address="127.0.0.17",
                                ssh_port=bh.ports[0], http_port=bh.ports[1])],
                          health={"interval_ms": 20000, "timeout_ms": 15000})
        time.sleep(0.5)  # the first round is in flight, waiting on the hung peer
        assert g.instance("hung")["state"] == "unknown"
        t0 = time.monotonic()
        g.stop(signal.SIGTERM, timeout=10)
        assert time.monotonic() - t0 < 3, "SIGTERM took %.1fs" % (time.monotonic() - t0)
    finally:
        bh.close()


def test_instances_metric_sums_to_instance_count(pool, make_poolgate):
    g = make_poolgate([inst.config() for inst in pool] + [
        dict(pool[0].config(), id="dead", address="127.0.0.9"),
        pool[0].config(id="maint-1", admin_state="maint")])
    g.wait_for(lambda s: all(i["state"] != "unknown" for i in s["instances"]), 5)
    s = g.status()
    text = g.get("/metrics").text()
    by_state = {}
    for line in text.splitlines():
        if line.startswith("poolgate_instances{"):
            st = line.split('state="', 1)[1].split('"', 1)[0]
            by_state[st] = float(line.rsplit(" ", 1)[1])
    assert sum(by_state.values()) == len(s["instances"]), by_state
    for st in ("up", "down", "maint"):
        assert by_state.get(st) == sum(1 for i in s["instances"] if i["state"] == st), (st,
                                                                                    by_state)
