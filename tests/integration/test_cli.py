"""The command line: --help, --version, --check-config exit codes and messages, startup failure,
and shutdown on SIGTERM/SIGINT."""

import copy
import json
import signal
import socket
import time

import pytest

import pool as P


def base_config(tmp_path):
    return {
        "listen": {"admin": ["127.0.0.1:19090"]},
        "state_dir": str(tmp_path / "state"),
        "log": {"level": "debug", "format": "text"},
        "instances": [
            {"id": "demo-1", "address": "127.0.0.2", "ssh_port": 2022, "http_port": 8000,
             "http_tls": False, "capacity": 8, "admin_state": "active", "labels": {"zone": "a"}},
            {"id": "demo-2", "address": "127.0.0.3", "ssh_port": 2022, "http_port": 8000,
             "http_tls": False, "capacity": 8, "admin_state": "active", "labels": {"zone": "b"}},
        ],
        "discovery": {"file": str(tmp_path / "instances.json"), "poll_ms": 200},
        "health": {"interval_ms": 500, "timeout_ms": 300, "rise": 2, "fall": 2, "jitter_pct": 10,
                   "checks": ["tcp", "ssh", "http"], "http_path": "/hub/health"},
    }


def write(tmp_path, cfg, name="poolgate.json"):
    p = tmp_path / name
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return str(p)


def test_help_and_version(poolgate_bin):
    r = P.run_poolgate(["--help"])
    assert r.returncode == 0, r
    out = r.stdout + r.stderr
    assert "--check-config" in out and "-c" in out, out
    r = P.run_poolgate(["--version"])
    assert r.returncode == 0, r
    assert "0.1.0" in r.stdout + r.stderr


def test_unknown_option_fails(poolgate_bin):
    r = P.run_poolgate(["--no-such-option"])
    assert r.returncode != 0, r
    assert r.stderr.strip(), "no message for an unknown option"


def test_check_config_valid(poolgate_bin, tmp_path):
    r = P.run_poolgate(["--check-config", write(tmp_path, base_config(tmp_path))])
    assert r.returncode == 0, r


def _set(path):
    """A mutation that sets cfg[path...] = value."""
    def m(value):
        def f(cfg):
            d = cfg
            for k in path[:-1]:
                d = d[k]
            d[path[-1]] = value
        return f
    return m


INVALID = [
    # (name, mutation, JSON path the message must name)
    ("unknown top-level key", _set(["bogus_key"])(1), "bogus_key"),
    ("unknown instance key", _set(["instances", 0, "bogus_key"])(1), "instances[0].bogus_key"),
    ("unknown health key", _set(["health", "bogus_key"])(1), "health.bogus_key"),
    ("port as string", _set(["instances", 0, "ssh_port"])("2022"), "instances[0].ssh_port"),
    ("port out of range", _set(["instances", 1, "ssh_port"])(65536), "instances[1].ssh_port"),
    ("port zero", _set(["instances", 1, "http_port"])(0), "instances[1].http_port"),
    ("port negative", _set(["instances", 0, "http_port"])(-1), "instances[0].http_port"),
    ("port fractional", _set(["instances", 0, "ssh_port"])(22.5), "instances[0].ssh_port"),
    ("bool as string", _set(["instances", 0, "http_tls"])("false"), "instances[0].http_tls"),
    ("bad admin_state", _set(["instances", 0, "admin_state"])("sleeping"),
     "instances[0].admin_state"),
    ("labels not an object", _set(["instances", 1, "labels"])(["a"]), "instances[1].labels"),
    ("instances not an array", _set(["instances"])({}), "instances"),
    ("negative rise", _set(["health", "rise"])(-1), "health.rise"),
    ("unknown check", _set(["health", "checks"])(["tcp", "icmp"]), "health.checks[1]"),
    ("admin address garbage", _set(["listen", "admin"])(["not-an-address"]), "listen.admin[0]"),
    ("admin port out of range", _set(["listen", "admin"])(["127.0.0.1:99999"]),
     "listen.admin[0]"),
    ("instance id missing", lambda c: c["instances"][0].pop("id"), "instances[0].id"),
    ("duplicate instance id", _set(["instances", 1, "id"])("demo-1"), "instances[1].id"),
]


@pytest.mark.parametrize("name,mutate,path", INVALID, ids=[c[0] for c in INVALID])
def test_check_config_invalid(poolgate_bin, tmp_path, name, mutate, path):
    cfg = copy.deepcopy(base_config(tmp_path))
    mutate(cfg)
    r = P.run_poolgate(["--check-config", write(tmp_path, cfg)])
    assert r.returncode == 2, "%s: exit %d, stderr %r" % (name, r.returncode, r.stderr)
    assert path in r.stderr, "%s: stderr does not name %r: %r" % (name, path, r.stderr)


def test_check_config_not_json(poolgate_bin, tmp_path):
    path = write(tmp_path, '{"listen": {"admin": ["127.0.0.1:1"]},')
    r = P.run_poolgate(["--check-config", path])
    assert r.returncode == 2, r
    assert r.stderr.strip(), r


def test_check_config_missing_file(poolgate_bin, tmp_path):
    path = str(tmp_path / "nope.json")
    r = P.run_poolgate(["--check-config", path])
    assert r.returncode != 0, r
    assert path in r.stderr, r


def test_admin_port_in_use_exits_1(poolgate_bin, tmp_path):
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        cfg = base_config(tmp_path)
        cfg["listen"]["admin"] = ["127.0.0.1:%d" % port]
        r = P.run_poolgate(["-c", write(tmp_path, cfg)], timeout=15)
        assert r.returncode == 1, r
        assert "127.0.0.1:%d" % port in r.stderr, r.stderr
    finally:
        squatter.close()


def _start(make_poolgate):
    # Instances that do not exist: these tests are about the process, not the pool.
    return make_poolgate([{"id": "x", "address": "127.0.0.9", "ssh_port": 2022,
                           "http_port": 8000}])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_0_promptly(make_poolgate, sig):
    g = _start(make_poolgate)
    time.sleep(0.5)  # let a health round or two run
    t0 = time.monotonic()
    g.stop(sig, timeout=5)
    assert time.monotonic() - t0 < 3, "exit took %.1fs" % (time.monotonic() - t0)
    assert not P.port_open("127.0.0.1", g.admin_port), "admin port still open after exit"


def test_sigterm_with_open_clients_exits_0(pool, make_poolgate):
    """Open admin connections (idle, and mid-request) and in-flight probes must not keep the
    loop alive after SIGTERM."""
    g = make_poolgate([inst.config() for inst in pool])
    idle = socket.create_connection(("127.0.0.1", g.admin_port), timeout=2)
    half = socket.create_connection(("127.0.0.1", g.admin_port), timeout=2)
    half.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        g.stop(signal.SIGTERM, timeout=5)
        assert time.monotonic() - t0 < 3
    finally:
        idle.close()
        half.close()


def test_stderr_log_lines(make_poolgate):
    """One line per event on stderr, in the configured format."""
    g = _start(make_poolgate)
    g.wait_state("x", "down", 5)
    g.stop()
    lines = [l for l in g.log().splitlines() if l.strip()]
    assert lines, "nothing logged"
    assert any("instance x: unknown -> down" in l for l in lines), lines[-20:]


def test_runs_without_any_instance(make_poolgate):
    g = make_poolgate([])
    assert g.status()["instances"] == []
    assert g.get("/readyz").status == 503
    assert g.get("/healthz").status == 200
    g.stop()

