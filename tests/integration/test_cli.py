"""The command line: --help, --version, --check-config exit codes and messages, startup failure,
and shutdown on SIGTERM/SIGINT."""

import copy
import json
import os
import signal
import socket
import stat
import time

import pytest

import pool as P


def base_config(tmp_path):
    return {
        "listen": {"admin": ["127.0.0.1:19090"], "ssh": [], "https": [], "http": []},
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
    # Documented in docs/config.md:
    ("id with bad characters", _set(["instances", 0, "id"])("demo 1!"), "instances[0].id"),
    ("id too long", _set(["instances", 0, "id"])("a" * 64), "instances[0].id"),
    ("address is a host name", _set(["instances", 0, "address"])("localhost"),
     "instances[0].address"),
    ("capacity zero", _set(["instances", 0, "capacity"])(0), "instances[0].capacity"),
    ("ca file without tls", _set(["instances", 0, "http_ca_file"])("/etc/ssl/certs/x.pem"),
     "instances[0].http_ca_file"),
    ("timeout not below interval", _set(["health", "timeout_ms"])(500), "health.timeout_ms"),
    ("jitter over 50", _set(["health", "jitter_pct"])(51), "health.jitter_pct"),
    ("poll_ms below 100", _set(["discovery", "poll_ms"])(50), "discovery.poll_ms"),
    ("log level unknown", _set(["log", "level"])("loud"), "log.level"),
    ("ssh listener garbage", _set(["listen", "ssh"])(["ssh.example:22"]), "listen.ssh[0]"),
    ("ssh key unknown", _set(["ssh"])({"hostkey": "/k"}), "ssh.hostkey"),
]


@pytest.mark.parametrize("name,mutate,path", INVALID, ids=[c[0] for c in INVALID])
def test_check_config_invalid(poolgate_bin, tmp_path, name, mutate, path):
    cfg = copy.deepcopy(base_config(tmp_path))
    mutate(cfg)
    r = P.run_poolgate(["--check-config", write(tmp_path, cfg)])
    assert r.returncode == 2, "%s: exit %d, stderr %r" % (name, r.returncode, r.stderr)
    assert path in r.stderr, "%s: stderr does not name %r: %r" % (name, path, r.stderr)


def test_check_config_message_names_file(poolgate_bin, tmp_path):
    cfg = base_config(tmp_path)
    cfg["instances"][0]["ssh_port"] = 0
    r = P.run_poolgate(["--check-config", write(tmp_path, cfg, "named.json")])
    assert r.returncode == 2, r
    assert "named.json" in r.stderr and "instances[0].ssh_port" in r.stderr, r.stderr


def test_check_config_not_json(poolgate_bin, tmp_path):
    path = write(tmp_path, '{\n  "listen": {"admin": ["127.0.0.1:1"]},\n  "state_dir": ,\n}')
    r = P.run_poolgate(["--check-config", path])
    assert r.returncode == 2, r
    # docs/config.md: "JSON syntax errors give a line and column".
    assert "line 3" in r.stderr and "column" in r.stderr, r.stderr


def test_check_config_duplicate_key(poolgate_bin, tmp_path):
    text = json.dumps(base_config(tmp_path))
    text = text.replace('"state_dir":', '"state_dir": "/tmp/first", "state_dir":', 1)
    r = P.run_poolgate(["--check-config", write(tmp_path, text)])
    assert r.returncode == 2, r
    assert "state_dir" in r.stderr, r.stderr


def test_check_discovery(poolgate_bin, tmp_path):
    good = {"instances": [{"id": "d1", "address": "127.0.0.3", "ssh_port": 2022,
                           "http_port": 8000}]}
    r = P.run_poolgate(["--check-discovery", write(tmp_path, good, "d.json")])
    assert r.returncode == 0, r
    bad = copy.deepcopy(good)
    bad["instances"][0]["ssh_port"] = 70000
    r = P.run_poolgate(["--check-discovery", write(tmp_path, bad, "d.json")])
    assert r.returncode == 2, r
    assert "instances[0].ssh_port" in r.stderr, r.stderr
    r = P.run_poolgate(["--check-discovery", write(tmp_path, {"instances": [], "x": 1}, "d.json")])
    assert r.returncode == 2 and "x" in r.stderr, r


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


def test_state_dir_created_0700(make_poolgate, tmp_path):
    g = make_poolgate([], start=False)
    os.rmdir(g.state_dir)
    g.cfg["state_dir"] = str(tmp_path / "fresh" / "state")
    g.start()
    st = os.stat(g.cfg["state_dir"])
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    g.stop()


def test_json_log_format(make_poolgate):
    g = make_poolgate([{"id": "x", "address": "127.0.0.9", "ssh_port": 2022,
                        "http_port": 8000}], start=False)
    g.cfg["log"]["format"] = "json"
    g.start()
    g.wait_state("x", "down", 5)
    g.stop()
    lines = [l for l in g.log().splitlines() if l.strip()]
    assert lines
    for l in lines:
        rec = json.loads(l)
        assert set(("ts", "level", "msg")) <= set(rec), rec
        P.parse_rfc3339(rec["ts"])
    # The text line "instance x: unknown -> down (...)" is conn "instance x" + msg in JSON.
    recs = [json.loads(l) for l in lines]
    assert any(("%s: %s" % (r.get("conn"), r["msg"])).startswith("instance x: unknown -> down")
               for r in recs), recs


def test_admin_on_ipv6_loopback(make_poolgate):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
    except OSError as e:
        pytest.skip("no IPv6 loopback here: %s" % e)
    g = make_poolgate([], start=False)
    g.cfg["listen"]["admin"] = ["[::1]:%d" % port]
    g.write_config()
    g.start(wait=False)
    import http.client

    def ok():
        c = http.client.HTTPConnection("::1", port, timeout=1)
        try:
            c.request("GET", "/healthz")
            return c.getresponse().status == 200
        finally:
            c.close()
    P.poll(ok, 10, 0.1, "GET /healthz on [::1]:%d" % port)
    g.stop()


def test_runs_without_any_instance(make_poolgate):
    g = make_poolgate([])
    assert g.status()["instances"] == []
    assert g.get("/readyz").status == 503
    assert g.get("/healthz").status == 200
    g.stop()

