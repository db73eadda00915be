"""Fixtures for poolgate's integration tests: a real pool (sshd + JupyterHub on 127.0.0.2 and
127.0.0.3) shared by the session, and a fresh poolgate process per test.

Run:  /usr/bin/python3 -m pytest tests/integration
Env:  POOLGATE_BIN         the binary (default build/proxy/poolgate)
      POOLGATE_TEST_STRICT 1 turns "peer missing" skips into failures (set in CI, where every
                           peer is installed and a skip would hide a broken machine); CI=true too
      POOLGATE_TEST_SLACK  seconds added to every health time budget (default 3)
      POOLGATE_TEST_POOL_IPS  the two loopback addresses of the pool (default 127.0.0.2,127.0.0.3);
                           another pair lets a second checkout run the suite at the same time
"""

import os
import shutil
import types

import pytest

import pool as P

SLACK = float(os.environ.get("POOLGATE_TEST_SLACK", "3"))
STRICT = os.environ.get("POOLGATE_TEST_STRICT", "") not in ("", "0") or \
    os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The pool under test. The demo (tests/integration/demo.py) uses other ports on the same
# addresses, so both can run at once; POOLGATE_TEST_POOL_IPS moves the whole pool to two other
# loopback addresses, so two checkouts (or CI and a developer) can too.
POOL_IPS = (os.environ.get("POOLGATE_TEST_POOL_IPS", "") or "127.0.0.2,127.0.0.3").split(",")
if len(POOL_IPS) != 2:
    raise RuntimeError("POOLGATE_TEST_POOL_IPS: expected two comma-separated addresses, got %r"
                       % POOL_IPS)
POOL_SPECS = [
    dict(id="demo-1", ip=POOL_IPS[0].strip(), ssh_port=2022, http_port=8000, hub_port=8081,
         api_port=8001, labels={"zone": "a"}),
    dict(id="demo-2", ip=POOL_IPS[1].strip(), ssh_port=2022, http_port=8000, hub_port=8081,
         api_port=8001, labels={"zone": "b"}),
]


def _unavailable(msg):
    if STRICT:
        pytest.fail(msg + " (POOLGATE_TEST_STRICT/CI is set, so this is a failure, not a skip)",
                    pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def peers():
    missing = P.missing_peers()
    if missing:
        _unavailable("real peers unavailable: " + "; ".join("%s: %s" % m for m in missing))


@pytest.fixture(scope="session")
def poolgate_bin():
    path = P.poolgate_bin()
    if not os.access(path, os.X_OK):
        _unavailable("poolgate binary not found at %s: build it with `meson setup build && "
                     "ninja -C build` at the repo root, or point POOLGATE_BIN at it" % path)
    return path


@pytest.fixture(scope="session")
def promtool():
    path = shutil.which("promtool")
    if path is None:
        _unavailable("promtool not installed (Debian package prometheus; run scripts/deps): "
                     "needed to validate /metrics")
    return path


@pytest.fixture(scope="session")
def session_pool(peers, tmp_path_factory):
    busy = ["%s:%d" % (s["ip"], port) for s in POOL_SPECS
            for port in (s["ssh_port"], s["http_port"], s["hub_port"], s["api_port"])
            if P.port_open(s["ip"], port, 0.3)]
    if busy:
        pytest.fail("cannot start the test pool: something already listens on %s "
                    "(a leftover sshd/jupyterhub? see `ss -ltnp`)" % ", ".join(busy),
                    pytrace=False)
    p = P.Pool(str(tmp_path_factory.mktemp("pool")), POOL_SPECS)
    try:
        p.start()
    except P.PeerError as e:
        pytest.fail("the real pool did not start:\n%s" % e, pytrace=False)
    yield p
    p.stop()


@pytest.fixture
def pool(session_pool):
    """The session pool, every instance running at the start and again at the end of the test
    (whatever the test killed is restarted)."""
    session_pool.ensure_running()
    yield session_pool
    session_pool.ensure_running()


@pytest.fixture
def make_poolgate(poolgate_bin, tmp_path, request):
    """Factory: make_poolgate(instances=[...], discovery=..., health={...}, start=True).
    Every poolgate made is killed at teardown if still running; its log is printed when the test
    failed (pytest shows it under 'Captured stdout teardown')."""
    made = []

    def make(instances=(), start=True, **kw):
        g = P.Poolgate(str(tmp_path / ("poolgate%d" % len(made))), instances=instances,
                       binary=poolgate_bin, **kw)
        made.append(g)
        if start:
            g.start()
        return g

    yield make
    problems = []
    for g in made:
        if g.alive():
            # Every test ends with a graceful SIGTERM: shutdown is exercised after every scenario,
            # and a sanitizer build's leak report (non-zero exit) is caught here.
            rc = g.stop(check=False, timeout=10)
            if rc != 0:
                problems.append("%s: exit %r after SIGTERM at teardown" % (g.log_path, rc))
        log = g.log()
        for needle in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if needle in log:
                problems.append("%s: %s" % (g.log_path, needle))
        rep = getattr(request.node, "rep_call", None)
        if (rep is not None and rep.failed) or problems:
            print("--- poolgate log %s ---\n%s" % (g.log_path, g.log_tail(80)))
    if problems:
        pytest.fail("poolgate misbehaved at teardown:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def certs(peers, tmp_path_factory):
    """Certificates made at test time with the openssl CLI: a test CA (`ca`, its PEM path;
    `authority`, the TestCA, to issue more), `pool` for pool.test and IP 127.0.0.1 and `other`
    for other.test, each a (cert, key) pair of paths."""
    if not os.access(P.OPENSSL, os.X_OK):
        _unavailable("openssl CLI not installed (Debian package openssl)")
    ca = P.TestCA(str(tmp_path_factory.mktemp("ca")))
    return types.SimpleNamespace(
        ca=ca.cert, authority=ca,
        pool=ca.issue("pool", dns=["pool.test"], ips=["127.0.0.1"]),
        other=ca.issue("other", dns=["other.test"]))


@pytest.fixture
def make_https_poolgate(make_poolgate, certs):
    """Factory: make_https_poolgate(instances, certificates=..., http={...}, **make_poolgate
    keywords): a poolgate with the https front door and the http redirect on free ports of
    127.0.0.1, serving the pool certificate (default) and other.test's (SNI)."""
    def make(instances=(), **kw):
        kw.setdefault("certificates", [certs.pool, certs.other])
        return make_poolgate(instances, https=True, **kw)
    return make


@pytest.fixture
def poolgate(pool, make_poolgate):
    """A running poolgate in front of both pool instances (config source)."""
    return make_poolgate([inst.config() for inst in pool])


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)

