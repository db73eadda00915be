"""Affinity through poolgate's https front door against the real pool: users stay on the instance
they were pinned to, a known user's pin wins over a browser's cookie, a forged cookie never
chooses the instance, and a user whose instance dies is pinned again elsewhere.

Which instance served a request is read from each hub's own log: every request below carries a
unique `probe` query string, and JupyterHub logs each request's URI.
"""

import time
import uuid

import pytest

import pool as P
from conftest import SLACK


def wait_up(g, pool):
    h = g.health
    return g.wait_for(P.all_up([i.id for i in pool]),
                      P.first_round_budget(h, SLACK) + P.up_budget(h, SLACK))


def by_id(pool, id):
    return next(i for i in pool if i.id == id)


def served_by(pool, probe, timeout=5.0):
    """The ids of the instances whose hub logged `probe` (waits until at least one has)."""
    P.poll(lambda: any(i.hub.log_count(probe) for i in pool), timeout, 0.05,
           "a hub to log %s" % probe)
    return [i.id for i in pool if i.hub.log_count(probe)]


def test_users_stay_on_their_instances(pool, make_https_poolgate, certs):
    g = make_https_poolgate([i.config() for i in pool])
    wait_up(g, pool)
    alice = P.HubBrowser(g.base_url, ca=certs.ca)
    bob = P.HubBrowser(g.base_url, ca=certs.ca)
    alice.login("alice")
    bob.login("bob")

    # New users go to the up instance with the fewest users: one each.
    homes = {"alice": g.user_instance("alice"), "bob": g.user_instance("bob")}
    assert None not in homes.values() and homes["alice"] != homes["bob"], g.users()
    assert alice.affinity()["id"] == homes["alice"], alice.cookie(alice.cookie_name)
    assert bob.affinity()["id"] == homes["bob"], bob.cookie(bob.cookie_name)

    tag = uuid.uuid4().hex
    for n in range(100):
        for user, b in (("alice", alice), ("bob", bob)):
            r = b.get("/hub/api/users/%s?probe=%s-%s-%d" % (user, tag, user, n))
            # 200 with the user's model: the hub that issued this browser's login cookie
            # answered (the other hub has another cookie secret and would say 403).
            assert r.status_code == 200 and r.json()["name"] == user, \
                "%s request %d: %d %s" % (user, n, r.status_code, r.text[:200])
            assert b.affinity()["id"] == homes[user], (n, b.cookie(b.cookie_name))

    for user in ("alice", "bob"):
        probe = "%s-%s-" % (tag, user)
        P.poll(lambda: by_id(pool, homes[user]).hub.log_count(probe) == 100, 5, 0.1,
               "100 %s requests in %s's hub log" % (user, homes[user]))
        counts = dict((i.id, i.hub.log_count(probe)) for i in pool)
        assert counts == dict((i.id, 100 if i.id == homes[user] else 0) for i in pool), \
            (user, counts)
    assert g.users() == dict((i.id, [u for u in ("alice", "bob") if homes[u] == i.id])
                             for i in pool), g.users()

    # A browser with no cookie of ours asking for alice's things by URL goes to her instance.
    stranger = P.HubBrowser(g.base_url, ca=certs.ca)
    for n, path in enumerate(("/hub/api/users/alice", "/hub/spawn/alice", "/user/alice/tree")):
        probe = "%s-stranger-%d" % (tag, n)
        r = stranger.get("%s?probe=%s" % (path, probe))
        assert r.status_code < 500, (path, r.status_code, r.text[:200])
        if path.startswith("/hub/"):
            assert served_by(pool, probe) == [homes["alice"]], path

    # A fresh browser logging in as alice lands on alice's instance, even if it carries a
    # (genuine, signed) cookie naming bob's instance: a known user's pin wins, and poolgate
    # rewrites the cookie.
    fresh = P.HubBrowser(g.base_url, ca=certs.ca)
    fresh.set_affinity(bob.cookie(bob.cookie_name))
    probe = uuid.uuid4().hex
    fresh.login("alice", probe=probe)
    assert served_by(pool, probe) == [homes["alice"]]
    assert fresh.affinity()["id"] == homes["alice"], fresh.cookie(fresh.cookie_name)
    r = fresh.get("/hub/api/users/alice?probe=%s-after" % probe)
    assert r.status_code == 200 and r.json()["name"] == "alice"
    assert g.user_instance("alice") == homes["alice"], g.users()


def forge_bad_mac(genuine, target):
    c = P.parse_affinity(genuine)
    mac = c["mac"]
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    return "v1.%s.%d.%s" % (target, c["expiry"], flipped)


def forge_swapped_id(genuine, target):
    c = P.parse_affinity(genuine)
    return "v1.%s.%d.%s" % (target, c["expiry"], c["mac"])


def forge_no_mac(genuine, target):
    return "v1.%s.%d." % (target, int(time.time()) + 86400)


def forge_expired(genuine, target):
    c = P.parse_affinity(genuine)
    return "v1.%s.%d.%s" % (target, int(time.time()) - 3600, c["mac"])


@pytest.mark.parametrize("forge", [forge_bad_mac, forge_swapped_id, forge_no_mac, forge_expired],
                         ids=["corrupt-mac", "swapped-id", "empty-mac", "expired"])
def test_forged_cookie_never_chooses_the_instance(pool, make_https_poolgate, certs, forge):
    g = make_https_poolgate([i.config() for i in pool])
    wait_up(g, pool)
    alice = P.HubBrowser(g.base_url, ca=certs.ca)
    alice.login("alice")
    target = g.user_instance("alice")
    assert target is not None, "alice not pinned: %r" % g.users()
    # Normal placement of a new user is the other instance (fewer users): the attacker wants
    # the crowded one, so obeying the cookie and placing normally differ.
    normal = next(i.id for i in pool if i.id != target)

    mallory = P.HubBrowser(g.base_url, ca=certs.ca)
    # A genuine cookie to tamper with: an anonymous request gets one.
    r = mallory.get("/hub/login")
    assert r.status_code == 200
    genuine = mallory.cookie(mallory.cookie_name)
    assert P.parse_affinity(genuine), "no affinity cookie for an anonymous browser: %r" % (
        r.headers.get("Set-Cookie"),)
    forged = forge(genuine, target)
    mallory.set_affinity(forged)

    user = "mallory-" + uuid.uuid4().hex[:8]
    probe = uuid.uuid4().hex
    r = mallory.get("/hub/login?probe=%s-page" % probe)
    assert r.status_code == 200
    assert served_by(pool, probe + "-page") == [normal], "forged cookie %r obeyed" % forged
    mallory.login(user, probe=probe)
    assert served_by(pool, probe) == [normal]
    assert g.user_instance(user) == normal, g.users()
    assert mallory.affinity()["id"] == normal, mallory.cookie(mallory.cookie_name)
    assert g.user_instance("alice") == target


def test_signed_cookie_obeyed_until_it_expires(pool, make_https_poolgate, certs):
    g = make_https_poolgate([i.config() for i in pool])
    wait_up(g, pool)
    alice = P.HubBrowser(g.base_url, ca=certs.ca)
    alice.login("alice")
    target = g.user_instance("alice")
    assert target is not None, "alice not pinned: %r" % g.users()
    normal = next(i.id for i in pool if i.id != target)

    # Control: a cookie signed with poolgate's secret and not expired is followed (so the
    # signing here matches poolgate's, and the expired case below is a genuine cookie).
    b = P.HubBrowser(g.base_url, ca=certs.ca)
    b.set_affinity(P.mint_affinity(g.state_dir, target, int(time.time()) + 3600))
    probe = uuid.uuid4().hex
    assert b.get("/hub/login?probe=%s" % probe).status_code == 200
    assert served_by(pool, probe) == [target], "a genuine cookie was not followed"

    # The same, expired a minute ago: ignored, the browser is placed normally.
    b = P.HubBrowser(g.base_url, ca=certs.ca)
    expired = P.mint_affinity(g.state_dir, target, int(time.time()) - 60)
    b.set_affinity(expired)
    probe = uuid.uuid4().hex
    assert b.get("/hub/login?probe=%s" % probe).status_code == 200
    assert served_by(pool, probe) == [normal], "expired cookie %r followed" % expired
    assert b.affinity()["id"] == normal and b.affinity()["expiry"] > time.time(), \
        b.cookie(b.cookie_name)


def test_dead_instance_repins_user(pool, make_https_poolgate, certs):
    g = make_https_poolgate([i.config() for i in pool])
    wait_up(g, pool)
    b = P.HubBrowser(g.base_url, ca=certs.ca)
    b.login("alice")
    home = g.user_instance("alice")
    assert home is not None, "alice not pinned: %r" % g.users()
    other = next(i for i in pool if i.id != home)
    assert b.get("/hub/api/users/alice").status_code == 200

    by_id(pool, home).hub.kill()  # the pool fixture starts it again after the test
    g.wait_state(home, "down", P.down_budget(g.health, SLACK))

    # Her next request is served by the other instance (which does not know her login yet)...
    probe = uuid.uuid4().hex
    r = b.get("/hub/api/users/alice?probe=%s" % probe)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert served_by(pool, probe) == [other.id]
    assert b.affinity()["id"] == other.id, b.cookie(b.cookie_name)
    # ...she is pinned there now...
    g.wait_for(lambda s: g.user_instance("alice", s) == other.id, 2 + SLACK,
               what="alice listed under %s" % other.id)
    # ...and logs in again there.
    probe = uuid.uuid4().hex
    b.login("alice", probe=probe)
    assert served_by(pool, probe) == [other.id]
    r = b.get("/hub/api/users/alice")
    assert r.status_code == 200 and r.json()["name"] == "alice"
    assert g.users()[home] == [], g.users()
