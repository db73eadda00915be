"""The load probe and load-aware placement against the real pool: poolgate logs in to each
instance's real sshd with libssh2 as the probe user `pgprobe` (an ECDSA P-256 certificate the
pool user CA signs, or a plain key), runs the probe command, and puts what it reports into
/status and /metrics; placement weighs it; a full pool is told to SSH users (auth banner,
disconnect reason) and to browsers (503 with Retry-After).

The pool's instances are loopback sshds on this machine, so both report this machine's load:
the figures are compared with /proc here, within what a few seconds of drift allow.
"""

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import types

import pytest

import pool as P
from conftest import SLACK
# untrust: tests make the instances trust their pool CA; afterwards they trust nobody again.
from test_ssh_front import ensure_user, keygen, untrust  # noqa: F401 (a fixture)

PROBE_USER = "pgprobe"
LOAD = {"enabled": True, "interval_ms": 1000, "timeout_ms": 800, "user": PROBE_USER}
CURL = "/usr/bin/curl"
SSH = "/usr/bin/ssh"


# ---------------------------------------------------------------------------------------------
# Setting up


@pytest.fixture
def probe_user():
    """The probe's account on the instances (this machine), unlocked."""
    ensure_user(PROBE_USER)
    # Unlocked even if an interrupted run of the locked-user test left it locked.
    subprocess.run(["usermod", "-p", "*", PROBE_USER], check=True, timeout=30,
                   capture_output=True)
    return PROBE_USER


def make_ca(path):
    """A pool user CA made before poolgate starts, so the instances can trust it from the first
    probe round (poolgate loads state_dir/user_ca_ed25519 when it exists)."""
    subprocess.run([P.SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "test pool CA", "-f",
                    path], check=True, timeout=30, capture_output=True)
    os.chmod(path, 0o600)
    with open(path + ".pub") as f:
        return f.read().strip()


def start(pool, make_poolgate, tmp_path, load=None, known_hosts=None, instances=None,
          trust=True, ssh_listen=False, https=False, certs=None, users=(), weights=None):
    """A poolgate over the pool with the load probe configured as `load` (merged into LOAD;
    None: probe off). known_hosts: lines (default: the instances' real keys). ssh_listen: the
    SSH front door on a free port, users (pgtest-*) given keys in authorized_keys under a %u
    pattern. Returns the Poolgate with .ssh_port, .keys, .user_known_hosts set."""
    kw = dict(https=True, certificates=[certs.pool]) if https else {}
    health = {"load": dict(LOAD, **load)} if load is not None else None
    g = make_poolgate(instances if instances is not None else [i.config() for i in pool],
                      start=False, health=health, **kw)
    ca_line = make_ca(os.path.join(g.state_dir, "user_ca_ed25519"))
    if trust:
        for inst in pool:
            inst.sshd.trust_user_ca(ca_line)
    kh = os.path.join(str(tmp_path), "instances_known_hosts")
    with open(kh, "w") as f:
        for line in (known_hosts if known_hosts is not None
                     else [i.sshd.host_key_line() for i in pool]):
            f.write(line + "\n")
    g.cfg["ssh"] = {"known_hosts": kh}
    if weights is not None:
        g.cfg["placement"] = {"weights": weights}
    g.keys, g.ssh_port = {}, None
    if ssh_listen:
        homes = os.path.join(str(tmp_path), "homes")
        for u in users:
            ensure_user(u)
            g.keys[u] = os.path.join(str(tmp_path), "id_" + u)
            os.makedirs(os.path.join(homes, u), exist_ok=True)
            with open(os.path.join(homes, u, "authorized_keys"), "w") as f:
                f.write(keygen(g.keys[u]))
        g.ssh_port = P.free_port("127.0.0.1")
        g.cfg["listen"]["ssh"] = ["127.0.0.1:%d" % g.ssh_port]
        g.cfg["ssh"]["front_auth"] = {"authorized_keys": os.path.join(homes, "%u",
                                                                      "authorized_keys")}
        g.cfg["ssh"]["login_grace_ms"] = 20000
    g.user_known_hosts = os.path.join(str(tmp_path), "user_known_hosts")
    g.start()
    h = g.health
    g.wait_for(P.all_up([i["id"] for i in g.cfg["instances"]]),
               P.first_round_budget(h, SLACK) + P.up_budget(h, SLACK))
    return g


def load_of(g, id, status=None):
    return g.instance(id, status)["load"]


def wait_load(g, ids, pred, what, timeout=None):
    """Waits until pred(load object) holds for every instance in ids; returns the /status."""
    def ok(s):
        return all(pred(load_of(g, i, s)) for i in ids)
    return g.wait_for(ok, timeout or 10 + SLACK, 0.2, what)


def known(l):
    return l["state"] == "known"


def metrics(g):
    r = g.get("/metrics")
    assert r.status == 200
    return r.text()


def metric(text, name, **labels):
    """The value of the sample name{labels} (labels in any order), or None."""
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if got == labels:
            return float(m.group(3))
    return None


def sshd_accepted(inst, mark=0):
    """Logins of the probe user that inst's sshd accepted since byte offset mark of its log."""
    with open(inst.sshd.log_path, "r", errors="replace") as f:
        f.seek(mark)
        return sum(1 for line in f if "Accepted publickey for %s " % PROBE_USER in line)


def log_size(inst):
    try:
        return os.path.getsize(inst.sshd.log_path)
    except OSError:
        return 0


def local_loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def local_mem_used():
    m = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            m[k] = int(v.split()[0])
    return m["MemTotal"], 1 - m["MemAvailable"] / m["MemTotal"]


def local_users():
    r = subprocess.run("who | wc -l", shell=True, capture_output=True, text=True, timeout=10)
    return int(r.stdout.strip())


def probe_sessions(inst):
    """Pids of the sshd processes of inst that run as the probe user (its session's children)."""
    uid = pwd.getpwnam(PROBE_USER).pw_uid
    out = []
    for pid in P.descendants(inst.sshd.proc.pid):
        try:
            with open("/proc/%d/status" % pid) as f:
                uids = next(l for l in f if l.startswith("Uid:")).split()[1:]
        except (OSError, StopIteration):
            continue
        if int(uids[0]) == uid:
            out.append(pid)
    return out


def curl(*args, timeout=15):
    return subprocess.run([CURL, "-sS", "--max-time", str(timeout)] + list(args),
                          capture_output=True, timeout=timeout + 5, stdin=subprocess.DEVNULL)


def https_get(g, certs, path):
    """(status, headers, body) of one GET through the https front door."""
    r = curl("-i", "--cacert", certs.ca, g.base_url + path)
    assert r.returncode == 0, r.stderr
    return P.parse_head(r.stdout)


def https_login(g, certs, user):
    """A browser login of user through the https front door (JupyterHub's dummy authenticator
    accepts it): the pin is made when JupyterHub says yes."""
    P.HubBrowser(g.base_url, ca=certs.ca).login(user)


def ssh_login(g, user, command="true"):
    return subprocess.run([SSH, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=%s" % g.user_known_hosts,
                           "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                           "-o", "ConnectTimeout=10", "-i", g.keys[user], "-p", str(g.ssh_port),
                           "%s@127.0.0.1" % user, command],
                          capture_output=True, text=True, timeout=40, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# The figures


def test_load_figures_match_the_instances(pool, make_poolgate, tmp_path, probe_user, untrust,
                                          promtool):
    marks = [log_size(i) for i in pool]
    g = start(pool, make_poolgate, tmp_path, load={})
    ids = [i.id for i in pool]
    # Three good rounds each, so the session has been reused.
    s = wait_load(g, ids, lambda l: known(l) and l["rounds_ok"] >= 3, "3 good load rounds")
    before = local_loadavg()
    s = g.status()
    after = local_loadavg()
    total_kb, mem_used = local_mem_used()
    ncpu = os.cpu_count()
    for id in ids:
        l = load_of(g, id, s)
        assert l["reason"] is None and l["weighed"] is True, l
        assert l["ncpu"] == ncpu, l
        assert l["mem_total_kb"] == total_kb, l
        assert abs(l["mem_used"] - mem_used) < 0.05, (l, mem_used)
        # /proc/loadavg moves every 5 s; the probe read it up to a round ago.
        lo, hi = min(before, after), max(before, after)
        assert lo - 1.0 - 0.15 * lo <= l["load1"] <= hi + 1.0 + 0.15 * hi, (l, before, after)
        assert l["age_s"] < 5, l
        assert abs(l["users_logged_in"] - local_users()) <= 1, l
        assert l["gpus"] == 0 and l["gpu_util"] is None, l   # no nvidia-smi here
        # One login, kept for every round since.
        assert l["logins"] == 1, l
    text = metrics(g)
    with open(os.path.join(str(tmp_path), "metrics.txt"), "w") as f:
        f.write(text)
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    for id in ids:
        assert metric(text, "poolgate_instance_load_known", instance=id) == 1
        assert metric(text, "poolgate_instance_cpus", instance=id) == ncpu
        assert metric(text, "poolgate_instance_memory_bytes", instance=id) == total_kb * 1024
        assert metric(text, "poolgate_instance_load_average", instance=id, period="1m") \
            is not None
        assert 0 <= metric(text, "poolgate_instance_memory_used_ratio", instance=id) <= 1
        assert metric(text, "poolgate_load_probe_logins_total", instance=id) == 1
        assert metric(text, "poolgate_load_probe_rounds_total", instance=id, result="ok") >= 3
        assert metric(text, "poolgate_instance_placement_score", instance=id) is not None
    assert metric(text, "poolgate_placement_decisions_total", reason="pool_full") == 0
    # sshd saw one probe login per instance, not one per round.
    for inst, mark in zip(pool, marks):
        assert sshd_accepted(inst, mark) == 1, P.tail(inst.sshd.log_path)
    # Bytes: marks are byte offsets, and sshd's stderr lines end in \r\n, which text mode would
    # fold (one character less per line before the mark once the log is long).
    with open(pool[0].sshd.log_path, "rb") as f:
        assert b"ECDSA-CERT" in f.read()[marks[0]:]


def test_broken_session_logs_in_again(pool, make_poolgate, tmp_path, probe_user, untrust):
    marks = [log_size(i) for i in pool]
    g = start(pool, make_poolgate, tmp_path, load={})
    inst = pool[0]
    wait_load(g, [inst.id], lambda l: known(l) and l["logins"] == 1, "first login")
    pids = probe_sessions(inst)
    assert pids, "no sshd process of %s under %s" % (PROBE_USER, inst.sshd.proc.pid)
    for pid in pids:   # the instance drops the kept session (by pid: processes of our sshd)
        os.kill(pid, 9)
    wait_load(g, [inst.id], lambda l: known(l) and l["logins"] == 2, "a second login")
    assert sshd_accepted(inst, marks[0]) == 2
    assert "kept session gone" in g.log()
    # The other instance kept its session throughout.
    assert load_of(g, pool[1].id)["logins"] == 1
    # The instance's sshd dies: the kept session breaks, logging in again is refused. (A round
    # may meet the dying sshd half-way first and say so; the rounds after say "refused".)
    inst.sshd.stop()
    wait_load(g, [inst.id], lambda l: l["state"] == "unknown" and
              l["reason"] == "connect: Connection refused", "load unknown, sshd gone")


# ---------------------------------------------------------------------------------------------
# Failures: load unknown with a reason, the instance still up and serving


def assert_up_and_serving(g, pool):
    s = g.status()
    for inst in pool:
        i = g.instance(inst.id, s)
        assert i["state"] == "up", i
    assert g.get("/readyz").status == 200


def test_plain_key_login(pool, make_poolgate, tmp_path, probe_user, load_files):
    """auth "key": the probe logs in with a plain key listed in authorized_keys. sshd reads that
    file as the user, so this test runs its own sshd with its files where pgprobe may read."""
    key = os.path.join(str(tmp_path), "probe_key")
    pub = keygen(key)
    inst = pool[0]
    sshd = P.Sshd(inst.ip, P.free_port(inst.ip), os.path.join(load_files, "sshd"))
    os.makedirs(sshd.dir, exist_ok=True)
    os.chmod(sshd.dir, 0o755)
    with open(os.path.join(sshd.dir, "authorized_keys"), "w") as f:
        f.write(pub)
    os.chmod(os.path.join(sshd.dir, "authorized_keys"), 0o644)
    sshd.start()
    try:
        g = start(pool, make_poolgate, tmp_path, load={"auth": "key", "key": key}, trust=False,
                  instances=[inst.config(ssh_port=sshd.port)],
                  known_hosts=[sshd.host_key_line()])
        wait_load(g, [inst.id], lambda l: known(l) and l["rounds_ok"] >= 2,
                  "load known with a plain key")
        assert "load probe logs in as pgprobe with key %s (ssh-ed25519" % key in g.log()
        assert sshd_accepted(types.SimpleNamespace(sshd=sshd)) == 1
        assert "ED25519 SHA256:" in P.tail(sshd.log_path, 200)
    finally:
        sshd.kill()


def test_wrong_key_makes_load_unknown(pool, make_poolgate, tmp_path, probe_user):
    key = os.path.join(str(tmp_path), "probe_key")
    keygen(key)   # in no authorized_keys
    g = start(pool, make_poolgate, tmp_path, load={"auth": "key", "key": key}, trust=False)
    s = wait_load(g, [i.id for i in pool],
                  lambda l: l["state"] == "unknown" and l["rounds_failed"] >= 2,
                  "load unknown after failed logins")
    for inst in pool:
        l = load_of(g, inst.id, s)
        assert l["reason"] == "login as pgprobe refused (key)", l
        assert l["weighed"] is False and l["load1"] is None, l
    assert_up_and_serving(g, pool)
    text = metrics(g)
    assert metric(text, "poolgate_instance_load_known", instance=pool[0].id) == 0
    assert metric(text, "poolgate_instance_cpus", instance=pool[0].id) is None
    # One log line for the change, not one per failed round.
    assert g.log().count("load %s: load unknown: login as pgprobe refused" % pool[0].id) == 1


def test_locked_probe_user_makes_load_unknown(pool, make_poolgate, tmp_path, probe_user,
                                              untrust):
    subprocess.run(["usermod", "-L", PROBE_USER], check=True, timeout=30, capture_output=True)
    try:
        g = start(pool, make_poolgate, tmp_path, load={})
        s = wait_load(g, [i.id for i in pool],
                      lambda l: l["state"] == "unknown" and l["rounds_failed"] >= 2,
                      "load unknown with the probe user locked")
        for inst in pool:
            assert load_of(g, inst.id, s)["reason"] == \
                "login as pgprobe refused (certificate from the pool user CA)"
        assert_up_and_serving(g, pool)
    finally:
        subprocess.run(["usermod", "-p", "*", PROBE_USER], check=True, timeout=30,
                       capture_output=True)
    # Unlocked: the next rounds log in.
    wait_load(g, [i.id for i in pool], known, "load known once the user is unlocked")


def test_host_key_mismatch_makes_load_unknown(pool, make_poolgate, tmp_path, probe_user, untrust):
    mark = log_size(pool[0])
    other = os.path.join(str(tmp_path), "other_host_key")
    t, b64 = keygen(other).split()[:2]
    first = pool[0]
    lines = ["[%s]:%d %s %s" % (first.ip, first.ssh_port, t, b64),
             pool[1].sshd.host_key_line()]
    g = start(pool, make_poolgate, tmp_path, load={}, known_hosts=lines)
    s = wait_load(g, [first.id], lambda l: l["state"] == "unknown" and l["rounds_failed"] >= 1,
                  "load unknown for the changed host key")
    assert load_of(g, first.id, s)["reason"] == \
        "host key refused: the instance's host key has changed"
    wait_load(g, [pool[1].id], known, "the other instance's load")
    line = g.wait_log(lambda l: "HOST KEY MISMATCH" in l, 5, what="the mismatch log line")
    assert "load %s: instance %s (%s:%d): HOST KEY MISMATCH" % (
        first.id, first.id, first.ip, first.ssh_port) in line, line
    # No login was attempted there: the host key check comes first.
    assert sshd_accepted(first, mark) == 0
    assert_up_and_serving(g, pool)


# ---------------------------------------------------------------------------------------------
# Placement


@pytest.fixture
def load_files():
    """A directory the probe user can read, for a probe command that reports made-up load."""
    d = tempfile.mkdtemp(prefix="pgload-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_load(d, ip, load1, mem_used):
    total = 16 * 1024 * 1024
    text = ("== loadavg\n%.2f 0.50 0.50 1/100 1\n== ncpu\n2\n== meminfo\nMemTotal: %d kB\n"
            "MemAvailable: %d kB\n== users\n0\n" % (load1, total, int(total * (1 - mem_used))))
    path = os.path.join(d, "load-" + ip)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", 0o644)
    os.rename(path + ".tmp", path)


def test_high_load_sends_new_users_elsewhere(pool, make_poolgate, tmp_path, certs, probe_user,
                                             untrust, load_files):
    hot, cool = pool[0], pool[1]
    write_load(load_files, hot.ip, 8.0, 0.9)
    write_load(load_files, cool.ip, 0.1, 0.1)
    # Each instance's probe reads the file named after its own address ($SSH_CONNECTION).
    cmd = "cat %s/load-$(echo $SSH_CONNECTION | cut -d' ' -f3)" % load_files
    g = start(pool, make_poolgate, tmp_path, load={"command": cmd}, https=True, certs=certs)
    wait_load(g, [hot.id], lambda l: known(l) and l["load1"] == 8.0, "hot load reported")
    wait_load(g, [cool.id], lambda l: known(l) and l["load1"] == 0.1, "cool load reported")
    # By users alone they would alternate; the load sends all three to the cool instance.
    for n in range(3):
        https_login(g, certs, "new%d" % n)
        assert g.user_instance("new%d" % n) == cool.id, g.users()
    # The figures follow the instances: the loads swap, and so does the choice.
    write_load(load_files, hot.ip, 0.1, 0.1)
    write_load(load_files, cool.ip, 8.0, 0.9)
    wait_load(g, [hot.id], lambda l: known(l) and l["load1"] == 0.1, "loads swapped")
    wait_load(g, [cool.id], lambda l: known(l) and l["load1"] == 8.0, "loads swapped")
    https_login(g, certs, "late")
    assert g.user_instance("late") == hot.id, g.users()
    scores = {i.id: load_of(g, i.id)["placement_score"] for i in pool}
    assert scores[hot.id] < scores[cool.id], scores
    # A round whose command fails: load unknown with the command's own words.
    os.unlink(os.path.join(load_files, "load-" + hot.ip))
    s = wait_load(g, [hot.id], lambda l: l["state"] == "unknown", "load unknown without file")
    reason = load_of(g, hot.id, s)["reason"]
    assert reason.startswith("the command exited with status 1: cat: "), reason
    assert "No such file" in reason, reason


def test_capacity_pins_and_pool_full(pool, make_poolgate, tmp_path, certs):
    """demo-1 takes 2 users, demo-2 takes 3: new users go where they take the smaller share;
    when both are full, SSH users read why in the auth banner and the disconnect reason, and
    browsers get a 503 that says so with Retry-After. Load probe off: users alone decide."""
    a, b = pool[0], pool[1]
    g = start(pool, make_poolgate, tmp_path, instances=[a.config(capacity=2),
              b.config(capacity=3)], ssh_listen=True, users=("pgtest-alice",), https=True,
              certs=certs)
    expect = {"u1": b.id, "u2": a.id, "u3": b.id}   # 1/3 < 1/2; 1/2 < 2/3; 2/3 < 1
    for user, where in sorted(expect.items()):
        https_login(g, certs, user)
        assert g.user_instance(user) == where, (user, g.users())
    for user in ("u4", "u5"):   # 2/2 against 3/3: one each, whichever ties say
        https_login(g, certs, user)
    users = g.users()
    assert len(users[a.id]) == 2 and len(users[b.id]) == 3, users

    # Full. A new user by URL, an anonymous browser: the pool-full page.
    for path in ("/user/u6/", "/hub/login"):
        status, headers, body = https_get(g, certs, path)
        assert status == 503, (path, status, body)
        assert headers.get("retry-after") == "120", headers
        assert b"The pool is full" in body, body
    assert g.user_instance("u6") is None
    # Pinned users still get through.
    status, _, _ = https_get(g, certs, "/user/u1/")
    assert status != 503
    # A new SSH user: banner and disconnect reason.
    r = ssh_login(g, "pgtest-alice")
    assert r.returncode == 255, (r.returncode, r.stderr)
    assert "poolgate: the pool is full" in r.stderr, r.stderr
    assert "pool full: no machine can take another user" in r.stderr, r.stderr
    assert "user pgtest-alice: not placed: pool full" in g.log()
    text = metrics(g)
    assert metric(text, "poolgate_placement_decisions_total", reason="new") == 5
    assert metric(text, "poolgate_placement_decisions_total", reason="pool_full") >= 3
    assert metric(text, "poolgate_placement_decisions_total", reason="kept") >= 1
    # No instance up at all is not "full": the plain 503.
    for inst in pool:
        inst.sshd.stop()
        inst.hub.pause()
    g.wait_for(lambda s: all(i["state"] == "down" for i in s["instances"]),
               P.down_budget(g.health, SLACK), what="both down")
    status, headers, body = https_get(g, certs, "/user/u7/")
    assert status == 503 and b"pool is full" not in body, body
    assert headers.get("retry-after") == "30", headers


def test_reload_weights_and_turning_the_probe_off(pool, make_poolgate, tmp_path, probe_user,
                                                  untrust):
    g = start(pool, make_poolgate, tmp_path, load={})
    ids = [i.id for i in pool]
    s = wait_load(g, ids, known, "load known")
    assert all(load_of(g, i, s)["placement_score"] != 0.125 for i in ids), s
    # Weights apply on reload: with only the users term, a score is (0 + 1) / 8.
    g.cfg["placement"] = {"weights": {"users": 1, "cpu": 0, "memory": 0, "gpu": 0}}
    mark = g.log_mark()
    g.write_config()
    g.reload()
    g.wait_log(lambda l: "config" in l and "in force" in l, 10, mark, "the reload")
    s = g.status()
    assert all(load_of(g, i, s)["placement_score"] == 0.125 for i in ids), s
    # Turning the probe off stops it (its sessions say goodbye) and the load is "off".
    g.cfg["health"]["load"]["enabled"] = False
    mark = g.log_mark()
    g.write_config()
    g.reload()
    g.wait_log(lambda l: "load probes stop" in l, 10, mark, "the probe stopping")
    s = wait_load(g, ids, lambda l: l["state"] == "off", "load off")
    assert all(load_of(g, i, s)["reason"] is None for i in ids)
    # Turning it on again needs a restart, and says so.
    g.cfg["health"]["load"]["enabled"] = True
    mark = g.log_mark()
    g.write_config()
    g.reload()
    g.wait_log(lambda l: "the load probe starts at restart" in l, 10, mark, "the warning")


def test_pool_ca_made_and_logged_without_ssh_front_door(pool, make_poolgate, tmp_path,
                                                        probe_user, untrust):
    """No SSH front door to make the pool user CA: the load probe makes it and logs the line
    the instances' TrustedUserCAKeys needs. Untrusted, its logins are refused; trusted with
    that line, they work."""
    kh = os.path.join(str(tmp_path), "kh")
    with open(kh, "w") as f:
        f.write("\n".join(i.sshd.host_key_line() for i in pool) + "\n")
    g = make_poolgate([i.config() for i in pool], start=False,
                      health={"load": dict(LOAD)})
    g.cfg["ssh"] = {"known_hosts": kh}
    g.start()
    line = g.wait_log(lambda l: "made a new pool user CA" in l, 5, what="the CA line")
    ca = os.path.join(g.state_dir, "user_ca_ed25519")
    assert os.stat(ca).st_mode & 0o777 == 0o600
    s = wait_load(g, [i.id for i in pool],
                  lambda l: l["state"] == "unknown" and l["rounds_failed"] >= 1, "refused")
    for inst in pool:
        assert load_of(g, inst.id, s)["reason"] == \
            "login as pgprobe refused (certificate from the pool user CA)"
    m = re.search(r"(ssh-ed25519 \S+)", line)
    assert m, line
    for inst in pool:
        inst.sshd.trust_user_ca(m.group(1))
    wait_load(g, [i.id for i in pool], known, "load known once the instances trust the CA")
