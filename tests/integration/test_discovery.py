"""The discovery file: watched, re-read on change; instances added, changed, removed at runtime;
an invalid file is logged and the previous set stays; an id already in the config is refused."""

import time

import pool as P
from conftest import SLACK


def appear_budget(g):
    # A poll period, then the first round decides.
    return g.cfg["discovery"]["poll_ms"] / 1000.0 + P.first_round_budget(g.health, SLACK)


def ids(s):
    return sorted(i["id"] for i in s["instances"])


def test_add_change_remove(pool, make_poolgate):
    g = make_poolgate([pool[0].config()], discovery=True)
    h = g.health
    g.wait_state("demo-1", "up", P.up_budget(h, SLACK))
    assert ids(g.status()) == ["demo-1"]

    # Add: the second real instance, under a discovery id.
    g.write_discovery([pool[1].config(id="disc-2", labels={"zone": "b", "from": "discovery"})])
    i = g.wait_state("disc-2", "up", appear_budget(g))
    assert i["source"] == "discovery"
    assert i["address"] == pool[1].ip and i["ssh_port"] == 2022
    assert i["labels"] == {"zone": "b", "from": "discovery"}
    assert g.instance("demo-1")["source"] == "config"

    # Change its ssh port to one nothing listens on: updated in place, and it goes down.
    g.write_discovery([pool[1].config(id="disc-2", ssh_port=2099)])
    g.wait_for(lambda s: (g.instance("disc-2", s) or {}).get("ssh_port") == 2099,
               appear_budget(g), what="disc-2 ssh_port updated to 2099")
    g.wait_state("disc-2", "down", appear_budget(g) + P.down_budget(h, SLACK))

    # And back: up again.
    g.write_discovery([pool[1].config(id="disc-2")])
    g.wait_state("disc-2", "up", appear_budget(g) + P.up_budget(h, SLACK))

    # Remove: gone, the config instance untouched.
    g.write_discovery([])
    g.wait_for(lambda s: ids(s) == ["demo-1"], appear_budget(g), what="disc-2 removed")
    assert g.instance("demo-1")["state"] == "up"
    assert g.alive()


def test_in_place_rewrite_of_same_size_is_seen(pool, make_poolgate):
    """An editor or `cat >` rewrites the file in place (same inode); a port change keeps the size
    the same. Both must still be picked up."""
    g = make_poolgate([pool[0].config()], discovery=[pool[1].config(id="disc-2", ssh_port=2022)])
    g.wait_state("disc-2", "up", P.up_budget(g.health, SLACK))
    with open(g.discovery_path) as f:
        text = f.read()
    new = text.replace('"ssh_port": 2022', '"ssh_port": 2023')
    assert len(new) == len(text) and new != text
    with open(g.discovery_path, "r+") as f:  # same inode, same size
        f.write(new)
    g.wait_for(lambda s: (g.instance("disc-2", s) or {}).get("ssh_port") == 2023,
               appear_budget(g), what="in-place edit picked up")


def test_invalid_file_keeps_previous_set(pool, make_poolgate):
    g = make_poolgate([pool[0].config()], discovery=[pool[1].config(id="disc-2")])
    h = g.health
    g.wait_state("disc-2", "up", P.up_budget(h, SLACK))

    for raw, needle in (('{"instances": [ {"id": "disc-3", ', None),
                        ('{"instances": [{"id": "disc-3", "address": "127.0.0.3", "ssh_port": '
                         '2022, "http_port": 8000, "bogus_key": 1}]}', "bogus_key"),
                        ('{"instances": [{"id": "disc-3", "address": "127.0.0.3", "ssh_port": '
                         '"2022", "http_port": 8000}]}', "instances[0].ssh_port")):
        mark = g.log_mark()
        g.write_discovery(raw=raw)
        line = g.wait_log(lambda l: (needle in l) if needle else
                          ("discovery" in l.lower() or g.discovery_path in l), 5, mark,
                          what="a log line for the invalid discovery file (%s)" % (needle or
                                                                                  "parse error"))
        assert line
        # The previous set stays, for several poll periods.
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            s = g.status()
            assert ids(s) == ["demo-1", "disc-2"], s
            assert g.instance("disc-2", s)["source"] == "discovery"
            time.sleep(0.1)
        assert g.instance("disc-2")["state"] == "up"

    # A valid file afterwards is applied again.
    g.write_discovery([pool[1].config(id="disc-3")])
    g.wait_for(lambda s: ids(s) == ["demo-1", "disc-3"], appear_budget(g),
               what="valid discovery file applied after invalid ones")


def test_id_clash_with_config_is_refused(pool, make_poolgate):
    g = make_poolgate([pool[0].config()], discovery=True)
    g.wait_state("demo-1", "up", P.up_budget(g.health, SLACK))
    mark = g.log_mark()
    g.write_discovery([pool[1].config(id="demo-1"), pool[1].config(id="disc-2")])
    g.wait_state("disc-2", "up", appear_budget(g))
    g.wait_log(lambda l: "demo-1" in l and "discovery" in l.lower(), 5, mark,
               what="log line refusing discovery's demo-1")
    s = g.status()
    mine = [i for i in s["instances"] if i["id"] == "demo-1"]
    assert len(mine) == 1, s
    assert mine[0]["source"] == "config" and mine[0]["address"] == pool[0].ip, mine


def test_missing_file_at_start_then_created(pool, make_poolgate):
    g = make_poolgate([pool[0].config()], discovery=True, start=False)
    import os
    os.unlink(g.discovery_path)
    g.start()
    assert g.get("/healthz").status == 200
    assert ids(g.status()) == ["demo-1"]
    g.write_discovery([pool[1].config(id="disc-2")])
    g.wait_state("disc-2", "up", appear_budget(g))


def test_many_discovered_instances(pool, make_poolgate):
    many = [dict(pool[1].config(), id="d-%03d" % n, address="127.0.2.%d" % n)
            for n in range(1, 101)]
    g = make_poolgate([pool[0].config()], discovery=True)
    g.write_discovery(many + [pool[1].config(id="disc-real")])
    g.wait_for(lambda s: len(s["instances"]) == 102, appear_budget(g),
               what="102 instances listed")
    g.wait_state("disc-real", "up", appear_budget(g))
    g.write_discovery(many[:10])
    g.wait_for(lambda s: len(s["instances"]) == 11, appear_budget(g), what="down to 11")
    assert g.alive()
