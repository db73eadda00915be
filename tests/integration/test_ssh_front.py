"""The SSH front door end to end: the real OpenSSH client -> poolgate -> the real sshd of the
user's instance (127.0.0.2 / 127.0.0.3), logged in there with a user certificate the pool CA
signed on the spot (the instances trust it with TrustedUserCAKeys)."""

import hashlib
import os
import pwd
import re
import socket
import subprocess
import time

import pytest

import pool as P
from conftest import SLACK

SSH = "/usr/bin/ssh"
SCP = "/usr/bin/scp"
SFTP = "/usr/bin/sftp"
USERS = ("pgtest-alice", "pgtest-bob")


def ensure_user(name):
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    if os.geteuid() != 0:
        pytest.skip("test user %s missing and not root to create it" % name)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, timeout=30,
                   capture_output=True)
    # useradd leaves the password "!" (locked), and sshd without PAM refuses locked accounts
    # whatever the key: "*" is no password, not locked.
    subprocess.run(["usermod", "-p", "*", name], check=True, timeout=30, capture_output=True)


def keygen(path):
    subprocess.run([P.SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", os.path.basename(path),
                    "-f", path], check=True, timeout=30, capture_output=True)
    with open(path + ".pub") as f:
        return f.read()


class Env:
    pass


def setup_env(pool, make_poolgate, tmp_path, known_hosts=True, ssh=None, trust=True,
              instances=None, health=None, wait_up=True, trusted_ca=None, top=None, port=None,
              listen=None):
    """Keys, authorized_keys under a %u pattern, and a poolgate with the SSH front door in front
    of the pool. known_hosts: True lists the instances' real keys, a list gives the lines,
    None sets no file. ssh: more `ssh` settings; top: more top-level settings; port: the ssh
    listener's port (default a free one); listen: more `listen` entries."""
    for u in USERS:
        ensure_user(u)
    e = Env()
    e.dir = str(tmp_path)
    e.keys = {}
    homes = os.path.join(e.dir, "homes")
    for u in USERS + ("stranger",):
        e.keys[u] = os.path.join(e.dir, "id_" + u)
        pub = keygen(e.keys[u])
        if u != "stranger":
            os.makedirs(os.path.join(homes, u), exist_ok=True)
            with open(os.path.join(homes, u, "authorized_keys"), "w") as f:
                f.write("# %s's keys\n%s" % (u, pub))
    settings = {"front_auth": {"authorized_keys": os.path.join(homes, "%u", "authorized_keys")},
                "login_grace_ms": 20000}
    if trusted_ca is not None:
        settings["front_auth"]["trusted_user_ca_keys"] = trusted_ca
    if known_hosts is not None:
        kh = os.path.join(e.dir, "instances_known_hosts")
        with open(kh, "w") as f:
            for line in ([inst.sshd.host_key_line() for inst in pool] if known_hosts is True
                         else known_hosts):
                f.write(line + "\n")
        settings["known_hosts"] = kh
    settings.update(ssh or {})
    e.port = port or P.free_port("127.0.0.1")
    g = make_poolgate(instances if instances is not None else [inst.config() for inst in pool],
                      start=False, health=health)
    g.cfg["listen"]["ssh"] = ["127.0.0.1:%d" % e.port]
    g.cfg["listen"].update(listen or {})
    g.cfg["ssh"] = settings
    g.cfg.update(top or {})
    g.start()
    for inst in (g.cfg["instances"] if wait_up else []):
        g.wait_state(inst["id"], "up", P.first_round_budget(g.health, SLACK)
                     + P.up_budget(g.health, SLACK))
    m = re.search(r"made a new pool user CA .*?: (ssh-ed25519 \S+)", g.log())
    assert m, g.log_tail(40)
    e.ca_line = m.group(1)
    if trust:
        for inst in pool:
            inst.sshd.trust_user_ca(e.ca_line)
    e.g, e.pool = g, pool
    e.user_known_hosts = os.path.join(e.dir, "user_known_hosts")
    return e


@pytest.fixture
def untrust(pool):
    yield
    for inst in pool:
        inst.sshd.trust_user_ca("")


@pytest.fixture
def ssh_env(pool, make_poolgate, tmp_path, untrust):
    return setup_env(pool, make_poolgate, tmp_path)


def ssh_args(e, user, key=None, extra=()):
    return [SSH, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=%s" % e.user_known_hosts, "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
            "-i", key or e.keys[user], "-p", str(e.port)] + list(extra) + ["%s@127.0.0.1" % user]


def run_ssh(e, user, command, key=None, extra=(), timeout=40):
    return subprocess.run(ssh_args(e, user, key, extra) + [command], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def landed_on(e, user):
    """The instance address the session reached, from $SSH_CONNECTION on the instance."""
    r = run_ssh(e, user, 'echo "$SSH_CONNECTION"')
    assert r.returncode == 0, (r.returncode, r.stderr)
    return r.stdout.split()[2]


def test_exec_exit_status(ssh_env):
    e = ssh_env
    r = run_ssh(e, "pgtest-alice", "echo ok; exit 3")
    assert r.stdout == "ok\n", (r.stdout, r.stderr, e.g.log_tail(40))
    assert r.returncode == 3, (r.returncode, r.stderr)
    # The banner says where the user landed.
    assert re.search(r"pgtest-alice -> demo-[12]", r.stderr), r.stderr
    assert "session open on demo-" in e.g.log()


def test_same_instance_every_time_and_users_spread(ssh_env):
    e = ssh_env
    a = {landed_on(e, "pgtest-alice") for _ in range(3)}
    b = {landed_on(e, "pgtest-bob") for _ in range(3)}
    assert len(a) == 1 and len(b) == 1, (a, b)
    # Two users, two instances with no users yet: placement spreads them.
    assert a != b, (a, b)
    status = e.g.status()
    ia, ib = e.g.user_instance("pgtest-alice", status), e.g.user_instance("pgtest-bob", status)
    ips = {inst.id: inst.ip for inst in e.pool}
    assert {ips[ia]} == a and {ips[ib]} == b, (ia, ib, a, b)


def test_one_pool_host_key(ssh_env):
    e = ssh_env
    for u in USERS:
        assert run_ssh(e, u, "true", extra=["-o", "UpdateHostKeys=yes"]).returncode == 0
    # sshd announces its host keys after login; poolgate stops the announcement.
    assert "instance: hostkeys-00@openssh.com stopped" in e.g.log()
    with open(e.user_known_hosts) as f:
        lines = [l.split() for l in f if l.strip()]
    # One entry for poolgate's address, whatever instance each user reached: the pool key.
    keys = {tuple(l[1:3]) for l in lines}
    assert len(keys) == 1, lines
    for inst in e.pool:
        assert inst.sshd.host_key_line().split()[2] not in {k[1] for k in keys}


def test_wrong_key_refused(ssh_env):
    e = ssh_env
    r = run_ssh(e, "pgtest-alice", "echo should-not-run", key=e.keys["stranger"])
    assert r.returncode == 255, (r.returncode, r.stdout, r.stderr)
    assert "Permission denied" in r.stderr, r.stderr
    assert "should-not-run" not in r.stdout
    # Names from peers that never authenticated make no pins.
    r = run_ssh(e, "nosuchuser", "true", key=e.keys["stranger"])
    assert r.returncode == 255
    status = e.g.status()
    assert e.g.user_instance("pgtest-alice", status) is None, status
    assert e.g.user_instance("nosuchuser", status) is None, status


def test_scp_and_sftp(ssh_env):
    e = ssh_env
    src = os.path.join(e.dir, "small.bin")
    data = os.urandom(200 * 1024)
    with open(src, "wb") as f:
        f.write(data)
    common = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
              "-o", "UserKnownHostsFile=%s" % e.user_known_hosts, "-o", "BatchMode=yes",
              "-o", "IdentitiesOnly=yes", "-i", e.keys["pgtest-alice"]]
    r = subprocess.run([SCP] + common + ["-P", str(e.port), src,
                        "pgtest-alice@127.0.0.1:/tmp/pgtest-scp.bin"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    back = os.path.join(e.dir, "back.bin")
    batch = os.path.join(e.dir, "batch")
    with open(batch, "w") as f:
        f.write("get /tmp/pgtest-scp.bin %s\nrm /tmp/pgtest-scp.bin\n" % back)
    r = subprocess.run([SFTP] + common + ["-P", str(e.port), "-b", batch,
                        "pgtest-alice@127.0.0.1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(back, "rb") as f:
        assert f.read() == data


def test_instance_host_key_mismatch_refused(pool, make_poolgate, tmp_path, untrust):
    other = os.path.join(str(tmp_path), "other_host_key")
    keygen(other)
    with open(other + ".pub") as f:
        t, b64 = f.read().split()[:2]
    e = setup_env(pool, make_poolgate, tmp_path,
                  known_hosts=["[%s]:%d %s %s" % (inst.ip, inst.ssh_port, t, b64)
                               for inst in pool])
    r = run_ssh(e, "pgtest-alice", "echo should-not-run")
    assert r.returncode == 255, (r.returncode, r.stdout, r.stderr)
    assert "should-not-run" not in r.stdout
    assert "host key has changed" in r.stderr, r.stderr
    assert "HOST KEY MISMATCH" in e.g.log()


def test_tofu_records_instance_keys(pool, make_poolgate, tmp_path, untrust):
    e = setup_env(pool, make_poolgate, tmp_path, known_hosts=None,
                  ssh={"host_key_check": "tofu"})
    r = run_ssh(e, "pgtest-alice", "echo ok")
    assert (r.returncode, r.stdout) == (0, "ok\n"), (r.returncode, r.stderr)
    with open(os.path.join(e.g.state_dir, "known_hosts")) as f:
        recorded = f.read()
    inst = [i for i in pool if i.id == e.g.user_instance("pgtest-alice")][0]
    assert inst.sshd.host_key_line().split()[2] in recorded, recorded
    # Seen once, trusted after: a second login works and records nothing new.
    assert run_ssh(e, "pgtest-alice", "true").returncode == 0
    with open(os.path.join(e.g.state_dir, "known_hosts")) as f:
        assert f.read() == recorded


def test_instance_refusing_the_certificate(pool, make_poolgate, tmp_path, untrust):
    """An instance that does not trust the pool CA: the user is told, the log names the fix."""
    e = setup_env(pool, make_poolgate, tmp_path, trust=False)
    r = run_ssh(e, "pgtest-alice", "echo should-not-run")
    assert r.returncode == 255, (r.returncode, r.stdout, r.stderr)
    assert "refused the login" in r.stderr, r.stderr
    assert "TrustedUserCAKeys" in e.g.log()


CIPHERS = [("chacha20-poly1305@openssh.com", None), ("aes256-gcm@openssh.com", None),
           ("aes128-gcm@openssh.com", None), ("aes128-ctr", "hmac-sha2-256"),
           ("aes256-ctr", "hmac-sha2-512-etm@openssh.com")]


@pytest.mark.parametrize("cipher,mac", CIPHERS, ids=[c for c, _ in CIPHERS])
def test_each_cipher(ssh_env, cipher, mac):
    extra = ["-c", cipher, "-v"] + (["-m", mac] if mac else [])
    r = run_ssh(ssh_env, "pgtest-alice", "echo ok; exit 3", extra=extra)
    assert (r.returncode, r.stdout) == (3, "ok\n"), r.stderr[-2000:]
    assert "cipher: %s" % cipher in r.stderr


KEXES = ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
         "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group14-sha256",
         "diffie-hellman-group16-sha512"]


@pytest.mark.parametrize("kex", KEXES)
def test_each_kex(ssh_env, kex):
    r = run_ssh(ssh_env, "pgtest-alice", "echo ok; exit 3",
                extra=["-o", "KexAlgorithms=%s" % kex, "-v"])
    assert (r.returncode, r.stdout) == (3, "ok\n"), r.stderr[-2000:]
    assert "kex: algorithm: %s" % kex in r.stderr


def test_stream_with_user_side_rekeys(ssh_env):
    """32 MiB down with RekeyLimit=2M: the user's side rekeys a dozen times mid-stream while
    the instance side does not; the pipe queues and pauses, nothing is lost."""
    r = subprocess.run(ssh_args(ssh_env, "pgtest-alice", extra=["-o", "RekeyLimit=2M"])
                       + ["head -c 33554432 /dev/zero"],
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(r.stdout) == 32 << 20 and r.stdout.count(b"\0") == 32 << 20


def test_local_forwarding(ssh_env):
    """-L: a TCP connection through the pipe to the instance's own sshd port (its ident line)."""
    e = ssh_env
    lport = P.free_port("127.0.0.1")
    # First login pins alice; forward to her instance's sshd.
    assert run_ssh(e, "pgtest-alice", "true").returncode == 0
    inst = [i for i in e.pool if i.id == e.g.user_instance("pgtest-alice")][0]
    p = subprocess.Popen(ssh_args(e, "pgtest-alice", extra=[
        "-N", "-o", "ExitOnForwardFailure=yes",
        "-L", "127.0.0.1:%d:%s:%d" % (lport, inst.ip, inst.ssh_port)]),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        P.poll(lambda: P.port_open("127.0.0.1", lport), 15, 0.1, "-L listener")
        assert P.read_ssh_ident("127.0.0.1", lport, 5.0).startswith("SSH-2.0-OpenSSH")
    finally:
        p.kill()
        p.wait(10)


def test_agent_forwarding(ssh_env, tmp_path):
    e = ssh_env
    sock = os.path.join(str(tmp_path), "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        P.poll(lambda: os.path.exists(sock), 10, 0.05, "ssh-agent socket")
        env = dict(os.environ, SSH_AUTH_SOCK=sock)
        subprocess.run(["ssh-add", e.keys["pgtest-bob"]], env=env, check=True, timeout=10,
                       capture_output=True)
        r = subprocess.run(ssh_args(e, "pgtest-alice", extra=["-A"]) + ["ssh-add -l"],
                           env=env, capture_output=True, text=True, timeout=40,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "id_pgtest-bob" in r.stdout, r.stdout
    finally:
        agent.kill()
        agent.wait(10)


HEALTH_TCP = {"interval_ms": 400, "timeout_ms": 300, "rise": 1, "fall": 1, "jitter_pct": 0,
              "checks": ["tcp"]}


def test_no_instance_available(pool, make_poolgate, tmp_path, untrust):
    dead = {"id": "dead-1", "address": "127.0.0.1", "ssh_port": P.free_port("127.0.0.1"),
            "http_port": P.free_port("127.0.0.1")}
    e = setup_env(pool, make_poolgate, tmp_path, instances=[dead], health=HEALTH_TCP,
                  wait_up=False)
    e.g.wait_state("dead-1", "down", P.first_round_budget(e.g.health, SLACK)
                   + P.up_budget(e.g.health, SLACK))
    r = run_ssh(e, "pgtest-alice", "echo should-not-run")
    assert r.returncode == 255, (r.returncode, r.stderr)
    assert "no instance is available" in r.stderr, r.stderr
    assert "no instance is available" in e.g.log()


def test_silent_instance_times_out(pool, make_poolgate, tmp_path, untrust):
    """An instance that accepts TCP and never speaks SSH: the user is told within
    ssh.connect_timeout_ms, not after the whole login grace time."""
    hole = P.BlackholeServer("127.0.0.1", [0])
    try:
        silent = {"id": "silent-1", "address": "127.0.0.1", "ssh_port": hole.ports[0],
                  "http_port": P.free_port("127.0.0.1")}
        e = setup_env(pool, make_poolgate, tmp_path, instances=[silent], health=HEALTH_TCP,
                      ssh={"connect_timeout_ms": 1000})
        t0 = time.monotonic()
        r = run_ssh(e, "pgtest-alice", "echo should-not-run")
        took = time.monotonic() - t0
        assert r.returncode == 255, (r.returncode, r.stderr)
        assert "did not answer in time" in r.stderr, r.stderr
        assert took < 1 + SLACK + 5, took
        assert "no key exchange within 1000 ms" in e.g.log()
    finally:
        hole.close()


def test_remote_forwarding(ssh_env):
    """-R: the instance listens (tcpip-forward, a global request with a reply that crosses the
    pipe) and its connections come back through poolgate to a port here."""
    e = ssh_env
    here = P.BlackholeServer("127.0.0.1", [0], greeting=b"SSH-2.0-from-the-user-side\r\n")
    rport = P.free_port("127.0.0.1")
    p = subprocess.Popen(ssh_args(e, "pgtest-alice", extra=[
        "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:%d:127.0.0.1:%d" % (rport, here.ports[0])])
        + ["sleep 30"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The forwarded port is on the instance's loopback: read it from there, over ssh again.
        got = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            r = run_ssh(e, "pgtest-alice",
                        "timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; head -c 28 <&3'"
                        % rport)
            if r.returncode == 0 and r.stdout:
                got = r.stdout
                break
            time.sleep(0.3)
        assert (got or "").strip() == "SSH-2.0-from-the-user-side", (got, r.stderr)
    finally:
        p.kill()
        p.wait(10)
        here.close()


def _tmux(*args):
    # A server of our own per test process: parallel runs never share one.
    return subprocess.run(["tmux", "-L", "pgtest-ssh-%d" % os.getpid()] + list(args),
                          capture_output=True, text=True, timeout=10)


def test_interactive_pty_and_window_change(ssh_env):
    """A pty session driven by tmux: the shell sees the terminal size, and a resize
    (window-change) reaches the instance."""
    e = ssh_env
    cmd = " ".join("'%s'" % a for a in ssh_args(e, "pgtest-alice", extra=["-tt"]))
    _tmux("kill-server")
    r = _tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", cmd)
    assert r.returncode == 0, r.stderr
    try:
        def screen():
            return _tmux("capture-pane", "-p", "-t", "t").stdout

        time.sleep(1.0)
        _tmux("send-keys", "-t", "t", "stty size; echo mark-$((6*7))", "Enter")
        P.poll(lambda: "mark-42" in screen(), 15, 0.2, "shell output")
        assert re.search(r"^\s*30 100\s*$", screen(), re.M), screen()
        _tmux("resize-window", "-t", "t", "-x", "120", "-y", "40")
        time.sleep(0.5)
        _tmux("send-keys", "-t", "t", "clear; stty size; echo mark-$((6*8))", "Enter")
        P.poll(lambda: "mark-48" in screen(), 15, 0.2, "shell output after resize")
        assert re.search(r"^\s*40 120\s*$", screen(), re.M), screen()
        _tmux("send-keys", "-t", "t", "exit", "Enter")
    finally:
        _tmux("kill-server")


def ssh_metric(g, name):
    for line in g.get("/metrics").text().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("%s not in /metrics" % name)


def test_metrics(ssh_env, promtool):
    e = ssh_env
    assert run_ssh(e, "pgtest-alice", "true").returncode == 0
    assert run_ssh(e, "pgtest-alice", "true", key=e.keys["stranger"]).returncode == 255
    text = e.g.get("/metrics").text()
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ssh_metric(e.g, "poolgate_ssh_connections_total") == 2
    assert ssh_metric(e.g, "poolgate_ssh_sessions_total") == 1
    assert ssh_metric(e.g, "poolgate_ssh_auth_failures_total") >= 1
    assert ssh_metric(e.g, "poolgate_ssh_upstream_errors_total") == 0
    P.poll(lambda: ssh_metric(e.g, "poolgate_ssh_connections_open") == 0, 10, 0.1,
           "connections closed")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_scp_and_sftp_200mb_both_ways_with_rekeys(ssh_env):
    """200 MB up and down with scp and with sftp, RekeyLimit=16M on the user's side: dozens of
    rekeys in each direction while the pipe queues and pauses; every checksum equal."""
    e = ssh_env
    src = os.path.join(e.dir, "big.bin")
    with open(src, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1 << 20))
    want = sha256_file(src)
    common = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
              "-o", "UserKnownHostsFile=%s" % e.user_known_hosts, "-o", "BatchMode=yes",
              "-o", "IdentitiesOnly=yes", "-o", "RekeyLimit=16M", "-i", e.keys["pgtest-bob"]]
    remote = "/tmp/pgtest-big-%d" % os.getpid()
    target = "pgtest-bob@127.0.0.1"
    back_scp, back_sftp = os.path.join(e.dir, "back.scp"), os.path.join(e.dir, "back.sftp")
    batch = os.path.join(e.dir, "batch")
    with open(batch, "w") as f:
        # sftp up to a second file and down the one scp sent, so each tool goes both ways.
        f.write("put %s %s.sftp\nget %s.scp %s\n" % (src, remote, remote, back_sftp))
    try:
        r = subprocess.run([SCP] + common + ["-P", str(e.port), src,
                            "%s:%s.scp" % (target, remote)],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([SFTP] + common + ["-P", str(e.port), "-b", batch, target],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([SCP] + common + ["-P", str(e.port), "%s:%s.sftp" % (target, remote),
                            back_scp], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
    finally:
        run_ssh(e, "pgtest-bob", "rm -f %s.scp %s.sftp" % (remote, remote))
    assert sha256_file(back_sftp) == want, "scp up, sftp down: checksum differs"
    assert sha256_file(back_scp) == want, "sftp up, scp down: checksum differs"
    # 200 MB / 16 MB each way: a user-side connection that did at least 10 key exchanges.
    counts = [int(n) for n in re.findall(r"ssh#\d+ .*ssh key exchange (\d+) done", e.g.log())]
    assert counts and max(counts) >= 10, "too few user-side rekeys: %r" % sorted(set(counts))


def test_3gib_stream_crosses_the_default_rekey(ssh_env):
    """3 GiB down on chacha20-poly1305 with default rekey limits everywhere: every side (ssh,
    poolgate's two transports, sshd) reaches its 1 GiB limit at least twice; the stream keeps
    flowing through those key exchanges and every byte arrives."""
    total = 3 << 30
    p = subprocess.Popen(ssh_args(ssh_env, "pgtest-alice",
                                  extra=["-c", "chacha20-poly1305@openssh.com"])
                         + ["head -c %d /dev/zero" % total],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    got = zeros = 0
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            chunk = p.stdout.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
            zeros += chunk.count(b"\0")
        rc = p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode(errors="replace")
    assert (rc, got, zeros) == (0, total, total), err[-2000:]
    # Both of poolgate's transports did key exchanges after the first, in mid-stream.
    log = ssh_env.g.log()
    done = re.findall(r"ssh#\d+ .*ssh key exchange (\d+) done", log)
    assert sum(1 for n in done if int(n) >= 2) >= 4, \
        "expected rekeys on both sides, saw exchanges %r" % done


def test_pipe_answers_unimplemented_and_ignores_late_userauth(ssh_env):
    """Our own client transport through the front door: a message in the local-extension range
    gets SSH_MSG_UNIMPLEMENTED with our packet's number, a late USERAUTH_REQUEST is ignored, and
    a global request still crosses to sshd, whose REQUEST_FAILURE comes back."""
    path = os.path.join(os.path.dirname(P.poolgate_bin()), "..", "tests", "interop",
                        "ssh-interop-pipe")
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built" % path)
    r = subprocess.run([path, "127.0.0.1", str(ssh_env.port), "pgtest-alice",
                        ssh_env.keys["pgtest-alice"]], capture_output=True, text=True, timeout=60)
    kv = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    assert r.returncode == 0, (r.stdout, r.stderr, ssh_env.g.log_tail(30))
    assert kv["unimplemented"] == "1" and kv["unimplemented_seq"] == kv["sent_seq"], kv
    assert kv["global_reply"] == "82", kv


def test_libssh2_client(ssh_env):
    """libssh2, a second client implementation, completes kex and asks for the userauth list."""
    path = os.path.join(os.path.dirname(P.poolgate_bin()), "..", "tests", "interop",
                        "ssh-interop-libssh2")
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built" % path)
    r = subprocess.run([path, str(ssh_env.port)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    kv = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    assert kv["methods"] == "publickey", kv


def test_reload_changes_front_auth(ssh_env):
    """SIGHUP: a new authorized_keys pattern and max_auth_tries apply to the next connection;
    the listener and the open sessions stay."""
    e = ssh_env
    hold = subprocess.Popen(ssh_args(e, "pgtest-alice") + ["sleep 20; echo held-done"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        P.poll(lambda: "session open on" in e.g.log(), 15, 0.1, "held session")
        # Alice's keys move: the new file holds bob's key for her.
        moved = os.path.join(e.dir, "moved")
        os.makedirs(os.path.join(moved, "pgtest-alice"))
        with open(e.keys["pgtest-bob"] + ".pub") as f, \
                open(os.path.join(moved, "pgtest-alice", "authorized_keys"), "w") as out:
            out.write(f.read())
        mark = e.g.log_mark()
        e.g.cfg["ssh"]["front_auth"]["authorized_keys"] = os.path.join(moved, "%u",
                                                                      "authorized_keys")
        e.g.write_config()
        e.g.reload()
        e.g.wait_log(lambda l: "in force" in l, 10, mark, "reload")
        assert run_ssh(e, "pgtest-alice", "true").returncode == 255
        r = run_ssh(e, "pgtest-alice", "echo ok", key=e.keys["pgtest-bob"])
        assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
        assert hold.poll() is None, "the open session survived the reload"
    finally:
        hold.kill()
        hold.wait(10)


def test_user_certificates(pool, make_poolgate, tmp_path, untrust):
    """Users may log in with OpenSSH certificates from a trusted user CA (no authorized_keys
    entry): the principal must be the user, the validity current, and a restricted certificate
    (critical options, a permit-* missing) is refused rather than half-enforced."""
    d = str(tmp_path)
    ca = os.path.join(d, "users_ca")
    keygen(ca)
    e = setup_env(pool, make_poolgate, tmp_path, trusted_ca=ca + ".pub")
    key = os.path.join(d, "id_cert_user")
    keygen(key)

    def sign(name, *opts):
        path = os.path.join(d, name)
        subprocess.run(["cp", key + ".pub", path + ".pub"], check=True)
        subprocess.run([P.SSH_KEYGEN, "-q", "-s", ca, "-I", name] + list(opts) + [path + ".pub"],
                       check=True, timeout=30, capture_output=True)
        return path + "-cert.pub"

    def login(cert):
        return run_ssh(e, "pgtest-alice", "echo ok", key=key,
                       extra=["-o", "CertificateFile=%s" % cert])

    r = login(sign("good", "-n", "pgtest-alice", "-V", "-5m:+1h"))
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    assert 'certificate "good" serial 0' in e.g.log()
    for name, opts, why in (
            ("other", ["-n", "pgtest-bob", "-V", "-5m:+1h"], "not among its principals"),
            ("expired", ["-n", "pgtest-alice", "-V", "20200101:20200102"], "expired"),
            ("nopty", ["-n", "pgtest-alice", "-V", "-5m:+1h", "-O", "no-pty"],
             "restricted certificates"),
            ("forced", ["-n", "pgtest-alice", "-V", "-5m:+1h", "-O", "force-command=true"],
             "critical options")):
        r = login(sign(name, *opts))
        assert r.returncode == 255, (name, r.returncode, r.stderr)
        assert "Permission denied" in r.stderr, (name, r.stderr)
        assert why in e.g.log(), (name, e.g.log_tail(20))
    # A certificate from a CA nobody trusts.
    other_ca = os.path.join(d, "other_ca")
    keygen(other_ca)
    path = os.path.join(d, "stranger-signed")
    subprocess.run(["cp", key + ".pub", path + ".pub"], check=True)
    subprocess.run([P.SSH_KEYGEN, "-q", "-s", other_ca, "-I", "x", "-n", "pgtest-alice",
                    path + ".pub"], check=True, timeout=30, capture_output=True)
    assert login(path + "-cert.pub").returncode == 255
    assert "its CA is not trusted" in e.g.log()


def test_login_grace_and_max_connections(pool, make_poolgate, tmp_path, untrust):
    """A peer that never authenticates is cut after ssh.login_grace_ms; past
    ssh.max_connections, new connections are closed at once."""
    e = setup_env(pool, make_poolgate, tmp_path,
                  ssh={"login_grace_ms": 1500, "max_connections": 1})
    idle = socket.create_connection(("127.0.0.1", e.port), timeout=10)
    try:
        assert idle.recv(256).startswith(b"SSH-2.0-poolgate")
        # The one slot is taken: a second connection is closed without a word.
        second = socket.create_connection(("127.0.0.1", e.port), timeout=10)
        assert second.recv(256) == b""
        second.close()
        # The idle peer is cut once the grace time is over.
        t0 = time.monotonic()
        while idle.recv(65536):
            pass
        assert time.monotonic() - t0 < 1.5 + SLACK
    finally:
        idle.close()
    assert "login grace time (1500 ms) over" in e.g.log()
    assert "refused: 1 connections open (ssh.max_connections)" in e.g.log()
    P.poll(lambda: ssh_metric(e.g, "poolgate_ssh_connections_open") == 0, 10, 0.1, "closed")
    assert ssh_metric(e.g, "poolgate_ssh_connections_rejected_total") == 1
    r = run_ssh(e, "pgtest-alice", "echo ok")
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr


def test_quiet_session_outlives_the_rekey_clock(ssh_env):
    """A session with nothing to say for 12 s: the session timer (login grace before the pipe,
    the time-based rekey check every 10 s after) fires in the pipe and changes nothing."""
    r = run_ssh(ssh_env, "pgtest-alice", "sleep 12; echo done; exit 4", timeout=60)
    assert (r.returncode, r.stdout) == (4, "done\n"), r.stderr


def heap_inuse(g):
    m = re.search(r"^poolgate_heap_inuse_bytes (\d+)$", g.get("/metrics").text(), re.M)
    assert m, "no poolgate_heap_inuse_bytes in /metrics"
    return int(m.group(1))


def test_memory_per_idle_session_is_small(ssh_env):
    """40 sessions that each moved 1 MB through poolgate and then sit idle: the heap poolgate
    holds for them (glibc's count of bytes in use) stays small per session, because buffers a
    burst grew are given back when drained."""
    e, n, burst = ssh_env, 40, 1000000
    base_run = run_ssh(e, "pgtest-alice", "head -c %d /dev/zero" % burst)
    assert base_run.returncode == 0, base_run.stderr
    before = heap_inuse(e.g)
    if before < 64 * 1024:
        pytest.skip("heap statistics unavailable (%d bytes: a sanitizer's allocator)" % before)
    procs = []
    try:
        for i in range(n):
            p = subprocess.Popen(ssh_args(e, USERS[i % 2]) + [
                "head -c %d /dev/zero; echo; echo ready; exec sleep 120" % burst],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            procs.append(p)
            got = 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = p.stdout.readline()
                assert line, "session %d ended early" % i
                got += len(line)
                if line == b"ready\n":
                    break
            assert got == burst + len(b"\nready\n"), (i, got)
        time.sleep(0.5)
        after = heap_inuse(e.g)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    per = (after - before) / n
    print("heap per idle SSH session: %.0f bytes (%d sessions, %d -> %d)" % (per, n, before, after))
    assert per < 64 * 1024, "%.0f bytes per idle session" % per
