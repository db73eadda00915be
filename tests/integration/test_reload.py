"""SIGHUP re-reads the config file: a valid change is applied, an invalid file is refused with a
log line naming the error and the old config keeps serving."""

import copy
import signal
import time

import pool as P
from conftest import SLACK


def summary(s):
    return sorted((i["id"], i["address"], i["ssh_port"], i["http_port"], i["source"])
                  for i in s["instances"])


def test_sighup_applies_valid_change(pool, make_poolgate):
    g = make_poolgate([pool[0].config()])
    h = g.health
    g.wait_state("demo-1", "up", P.up_budget(h, SLACK))

    cfg = copy.deepcopy(g.cfg)
    cfg["instances"].append(pool[1].config())
    g.write_config(cfg)
    g.reload()
    i = g.wait_state("demo-2", "up", P.first_round_budget(h, SLACK) + 1)
    assert i["source"] == "config"
    assert g.alive()

    # Remove it again, and change demo-1's labels.
    cfg["instances"] = [pool[0].config(labels={"zone": "z"})]
    g.write_config(cfg)
    g.reload()
    g.wait_for(lambda s: [i["id"] for i in s["instances"]] == ["demo-1"]
               and s["instances"][0]["labels"] == {"zone": "z"}, 5,
               what="demo-2 removed and demo-1 relabelled by SIGHUP")
    g.wait_state("demo-1", "up", P.up_budget(h, SLACK))


def _refused(g, raw_or_cfg, needle):
    before = summary(g.status())
    mark = g.log_mark()
    if isinstance(raw_or_cfg, str):
        g.write_config(raw=raw_or_cfg)
    else:
        g.write_config(raw_or_cfg)
    g.reload()
    match = needle if callable(needle) else (lambda l: needle in l)
    line = g.wait_log(match, 5, mark, what="log line with the reload error naming %r" % needle)
    assert line
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:
        assert g.alive(), "poolgate died on SIGHUP with a broken config\n" + g.log_tail()
        assert summary(g.status()) == before
        time.sleep(0.1)
    assert g.get("/healthz").status == 200
    assert g.get("/readyz").status == 200


def test_sighup_with_broken_config_keeps_old(pool, make_poolgate):
    g = make_poolgate([inst.config() for inst in pool])
    h = g.health
    g.wait_for(P.all_up(["demo-1", "demo-2"]), P.up_budget(h, SLACK))
    good = copy.deepcopy(g.cfg)

    bad = copy.deepcopy(good)
    bad["bogus_key"] = 1
    bad["instances"] = bad["instances"][:1]
    _refused(g, bad, "bogus_key")

    bad = copy.deepcopy(good)
    bad["instances"][1]["ssh_port"] = "2022"
    _refused(g, bad, "instances[1].ssh_port")

    bad = copy.deepcopy(good)
    bad["instances"][0]["ssh_port"] = 65536
    _refused(g, bad, "instances[0].ssh_port")

    # Not JSON at all: the message names the file or says it is not JSON.
    _refused(g, '{"listen": ', lambda l: g.config_path in l or "json" in l.lower())

    # The file is fixed: the next SIGHUP applies it.
    fixed = copy.deepcopy(good)
    fixed["instances"] = fixed["instances"][:1]
    g.write_config(fixed)
    g.reload()
    g.wait_for(lambda s: [i["id"] for i in s["instances"]] == ["demo-1"], 5,
               what="fixed config applied")


def test_sighup_storm_survives(pool, make_poolgate):
    """Many SIGHUPs in a row (a config-management loop gone wrong): still alive, still serving,
    config intact."""
    g = make_poolgate([pool[0].config()])
    g.wait_state("demo-1", "up", P.up_budget(g.health, SLACK))
    for _ in range(50):
        g.send_signal(signal.SIGHUP)
        time.sleep(0.01)
    time.sleep(0.5)
    assert g.alive()
    assert [i["id"] for i in g.status()["instances"]] == ["demo-1"]
    g.wait_state("demo-1", "up", P.up_budget(g.health, SLACK))


def metric(g, name, **labels):
    for line in g.get("/metrics").text().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all('%s="%s"' % kv in line for kv in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_reload_counter(pool, make_poolgate):
    g = make_poolgate([pool[0].config()])
    assert metric(g, "poolgate_config_reloads_total", result="ok") == 0
    g.reload()
    P.poll(lambda: metric(g, "poolgate_config_reloads_total", result="ok") == 1, 5, 0.1,
           "reloads_total{result=ok} == 1")
    g.write_config(raw="{")
    g.reload()
    P.poll(lambda: metric(g, "poolgate_config_reloads_total", result="error") == 1, 5, 0.1,
           "reloads_total{result=error} == 1")
    assert metric(g, "poolgate_config_reloads_total", result="ok") == 1


def test_changed_address_is_probed_at_once(pool, make_poolgate):
    """docs/config.md: changing an instance's address or ports resets its health to unknown and
    probes it at once, rather than waiting `fall` long rounds on the old verdict."""
    h = {"interval_ms": 4000, "timeout_ms": 1000, "rise": 3, "fall": 3, "jitter_pct": 0}
    g = make_poolgate([pool[0].config()], health=h)
    g.wait_state("demo-1", "up", P.first_round_budget(g.health, SLACK))
    cfg = copy.deepcopy(g.cfg)
    cfg["instances"][0]["ssh_port"] = 2099  # nothing listens there
    g.write_config(cfg)
    g.reload()
    t0 = time.monotonic()
    g.wait_for(lambda s: g.instance("demo-1", s)["ssh_port"] == 2099
               and g.instance("demo-1", s)["state"] == "down", 3,
               what="demo-1 down right after its port changed")
    assert time.monotonic() - t0 < 3


def test_unchanged_instance_keeps_its_state_over_reload(pool, make_poolgate):
    """A reload that does not touch an instance does not send it back to unknown."""
    g = make_poolgate([pool[0].config()])
    i = g.wait_state("demo-1", "up", P.up_budget(g.health, SLACK))
    cfg = copy.deepcopy(g.cfg)
    cfg["instances"].append(dict(pool[0].config(), id="other", address="127.0.0.9"))
    g.write_config(cfg)
    g.reload()
    g.wait_for(lambda s: g.instance("other", s) is not None, 5, what="other added")
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:
        j = g.instance("demo-1")
        assert j["state"] == "up" and j["since"] == i["since"], j
        time.sleep(0.05)


def test_listen_change_needs_restart(pool, make_poolgate):
    """docs/config.md: `listen` takes effect only at restart and the reload says so."""
    g = make_poolgate([pool[0].config()])
    cfg = copy.deepcopy(g.cfg)
    cfg["listen"]["admin"] = ["127.0.0.1:%d" % P.free_port()]
    mark = g.log_mark()
    g.write_config(cfg)
    g.reload()
    g.wait_log(lambda l: "listen" in l and "restart" in l, 5, mark, what="listen warning")
    assert g.get("/healthz").status == 200  # still on the old port
