"""Privileges (docs/security.md): poolgate started as root binds its listeners, ports below 1024
among them, then drops to the config's "user" for good; secret files group or others can read are
refused at start and at reload."""

import json
import os
import pwd
import re
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile

import pytest

import pool as P
from test_ssh_front import run_ssh, setup_env, untrust  # noqa: F401 (untrust is a fixture)

SVC = "pgtest-svc"
LOW_PORTS = range(900, 1020)


def ensure_service_user():
    try:
        return pwd.getpwnam(SVC)
    except KeyError:
        pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    SVC], check=True, timeout=30, capture_output=True)
    return pwd.getpwnam(SVC)


def free_low_port(host="127.0.0.1", taken=()):
    """A port below 1024 nobody listens on now (root only)."""
    for port in LOW_PORTS:
        if port in taken:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    pytest.skip("no free port in %d..%d on %s" % (LOW_PORTS[0], LOW_PORTS[-1], host))


@pytest.fixture
def svc_dir():
    """A work directory the service user can pass through (pytest's tmp_path sits under a
    0700 directory of root's): /tmp/pg-priv-*, mode 0755, removed after the test."""
    if os.geteuid() != 0:
        pytest.skip("bind-then-drop needs the test to run as root")
    pw = ensure_service_user()
    d = tempfile.mkdtemp(prefix="pg-priv-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d, pw
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_svc_poolgate(poolgate_bin, svc_dir):
    """make_poolgate, with its files in svc_dir."""
    d, _ = svc_dir
    made = []

    def make(instances=(), start=True, **kw):
        g = P.Poolgate(os.path.join(d, "poolgate%d" % len(made)), instances=instances,
                       binary=poolgate_bin, **kw)
        os.chmod(g.dir, 0o755)
        made.append(g)
        if start:
            g.start()
        return g

    yield make
    problems = []
    for g in made:
        if g.alive():
            rc = g.stop(check=False, timeout=10)
            if rc != 0:
                problems.append("%s: exit %r after SIGTERM" % (g.log_path, rc))
        log = g.log()
        for needle in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if needle in log:
                problems.append("%s: %s" % (g.log_path, needle))
        if problems:
            print("--- poolgate log %s ---\n%s" % (g.log_path, g.log_tail(80)))
    if problems:
        pytest.fail("poolgate misbehaved:\n" + "\n".join(problems), pytrace=False)


def proc_ids(pid):
    """(uids, gids, groups) of a process from /proc/PID/status."""
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                ids[k] = [int(x) for x in v.split()]
    return ids["Uid"], ids["Gid"], ids["Groups"]


def tls_handshake(port):
    """The certificate a TLS handshake on 127.0.0.1:port presents (DER)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def owner_mode(path):
    st = os.lstat(path)
    return st.st_uid, stat.S_IMODE(st.st_mode)


def test_bind_then_drop_serves_low_ports(pool, svc_dir, make_svc_poolgate, untrust):
    d, pw = svc_dir
    ssh_port = free_low_port()
    https_port = free_low_port(taken=(ssh_port,))
    state = os.path.join(d, "state-new")        # poolgate makes it
    e = setup_env(pool, make_svc_poolgate, d, port=ssh_port,
                  listen={"https": ["127.0.0.1:%d" % https_port]},
                  top={"user": SVC, "state_dir": state})
    g = e.g
    log = g.log()
    assert re.search(r"dropped privileges: now uid %d \(%s\) gid %d" % (pw.pw_uid, SVC, pw.pw_gid),
                     log), g.log_tail(40)
    assert "poolgate runs as root" not in log
    uids, gids, groups = proc_ids(g.proc.pid)
    assert uids == [pw.pw_uid] * 4 and gids == [pw.pw_gid] * 4, (uids, gids)
    assert groups == [pw.pw_gid], groups

    # What poolgate made at start is the user's: state_dir, keys, the self-signed certificate.
    assert owner_mode(state) == (pw.pw_uid, 0o700)
    for name in ("ssh_host_ed25519_key", "user_ca_ed25519", "cookie_secret",
                 "tls/selfsigned.key"):
        assert owner_mode(os.path.join(state, name)) == (pw.pw_uid, 0o600), name

    # Both low ports serve, and an SSH login (its pin journalled) goes through.
    assert tls_handshake(https_port)
    r = run_ssh(e, "pgtest-alice", "echo ok")
    assert (r.returncode, r.stdout) == (0, "ok\n"), (r.stderr, g.log_tail(40))
    journal = os.path.join(state, "pins.journal")
    P.poll(lambda: b"pgtest-alice" in open(journal, "rb").read(), 10, 0.1,
           "pgtest-alice in pins.journal")
    assert os.stat(journal).st_uid == pw.pw_uid

    # SIGHUP, as the user: config, certificates and token read again.
    token = os.path.join(d, "token")
    with open(token, "w") as f:
        f.write("t" * 32 + "\n")
    os.chown(token, pw.pw_uid, pw.pw_gid)
    os.chmod(token, 0o600)
    g.cfg["admin"] = {"token_file": token}
    g.write_config()
    mark = g.log_mark()
    g.reload()
    g.wait_log(lambda l: "in force" in l, 10, mark, what="reload in force")
    assert "refused" not in g.log_since(mark), g.log_since(mark)
    r = g.request("POST", "/admin/reload", headers={"Authorization": "Bearer " + "t" * 32})
    assert r.status in (200, 202), r
    assert tls_handshake(https_port)
    r = run_ssh(e, "pgtest-bob", "echo ok")
    assert (r.returncode, r.stdout) == (0, "ok\n"), (r.stderr, g.log_tail(40))


def test_state_dir_of_another_owner_refused(svc_dir, make_svc_poolgate):
    d, pw = svc_dir
    g = make_svc_poolgate(start=False, extra={"user": SVC})
    os.chmod(g.state_dir, 0o700)        # root's, as make_poolgate made it
    g.start(wait=False)
    assert g.wait_exit(10) == 2, g.log()
    assert ("state_dir %s: owned by uid 0, not by \"user\" (uid %d); chown -R %d %s"
            % (g.state_dir, pw.pw_uid, pw.pw_uid, g.state_dir)) in g.log()
    os.chown(g.state_dir, pw.pw_uid, pw.pw_gid)
    os.chmod(g.state_dir, 0o770)
    g.start(wait=False)
    assert g.wait_exit(10) == 2, g.log()
    assert "lets group or others write in it; chmod 700" in g.log()
    # A key in it root still owns (say, from a run as root) is refused, naming the chown.
    os.chmod(g.state_dir, 0o700)
    key = os.path.join(g.state_dir, "ssh_host_ed25519_key")
    subprocess.run([P.SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", key], check=True,
                   timeout=30, capture_output=True)
    g.cfg["listen"]["ssh"] = ["127.0.0.1:%d" % P.free_port()]
    g.start(wait=False)
    assert g.wait_exit(10) == 1, g.log()
    assert ("%s: private key: owned by uid 0, but poolgate runs as uid %d; chown %d %s"
            % (key, pw.pw_uid, pw.pw_uid, key)) in g.log()
    os.chown(key, pw.pw_uid, pw.pw_gid)
    g.start()
    assert "dropped privileges" in g.log()


def test_keys_program_run_as_another_user_refused(svc_dir, make_svc_poolgate):
    g = make_svc_poolgate(start=False, extra={
        "user": SVC, "ssh": {"front_auth": {"authorized_keys_command": {
            "command": ["/bin/true"], "run_as": "nobody"}}}})
    g.start(wait=False)
    assert g.wait_exit(10) == 2, g.log()
    assert "run_as: must be \"user\"" in g.log()


def test_root_without_user_warns(make_poolgate):
    if os.geteuid() != 0:
        pytest.skip("the warning is for poolgate running as root")
    g = make_poolgate()
    assert re.search(r"warn +main: poolgate runs as root: set \"user\"", g.log()), g.log_tail(20)
    assert "dropped privileges" not in g.log()


def test_user_without_root_refused(poolgate_bin, tmp_path):
    """Dropping needs root; started as the service user itself, poolgate says so."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start poolgate as another user")
    pw = ensure_service_user()
    d = tempfile.mkdtemp(prefix="pg-priv-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        cfg = os.path.join(d, "poolgate.json")
        with open(cfg, "w") as f:
            json.dump({"user": SVC, "state_dir": os.path.join(d, "state"),
                       "listen": {"admin": ["127.0.0.1:%d" % P.free_port()]}}, f)
        r = subprocess.run(["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid),
                            "--clear-groups", poolgate_bin, "-c", cfg],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert "dropping privileges needs poolgate to start as root" in r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def private_copy(src, dst):
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o600)
    return dst


def test_host_key_readable_by_others_refused_at_start(make_poolgate, tmp_path):
    key = str(tmp_path / "host_key")
    subprocess.run([P.SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", key], check=True,
                   timeout=30, capture_output=True)
    os.chmod(key, 0o644)
    g = make_poolgate(start=False)
    g.cfg["listen"]["ssh"] = ["127.0.0.1:%d" % P.free_port()]
    g.cfg["ssh"] = {"host_keys": [key]}
    g.start(wait=False)
    assert g.wait_exit(10) == 2, g.log()
    assert ("%s: ssh.host_keys: mode 0644 gives group or others access to a secret; "
            "chmod 600 %s" % (key, key)) in g.log()
    os.chmod(key, 0o600)
    g.start()


def test_state_dir_key_readable_by_others_refused_at_start(make_poolgate):
    g = make_poolgate(start=False)
    g.cfg["listen"]["ssh"] = ["127.0.0.1:%d" % P.free_port()]
    g.start()
    g.stop()
    key = os.path.join(g.state_dir, "ssh_host_ed25519_key")
    os.chmod(key, 0o640)
    g.start(wait=False)
    assert g.wait_exit(10) == 1, g.log()
    assert "%s: private key: mode 0640 gives group or others access" % key in g.log()


def test_tls_key_readable_by_others_refused_at_reload(make_https_poolgate, certs, tmp_path):
    cert, key = certs.pool
    key = private_copy(key, str(tmp_path / "pool.key"))
    g = make_https_poolgate(certificates=[(cert, key)])
    before = tls_handshake(g.https_port)
    os.chmod(key, 0o644)
    mark = g.log_mark()
    g.reload()
    line = g.wait_log(lambda l: "reload" in l and "refused" in l, 10, mark,
                      what="the reload refused")
    assert ("%s: tls.certificates[].key: mode 0644 gives group or others access to a secret; "
            "chmod 600 %s" % (key, key)) in line, line
    assert "in force" not in g.log_since(mark)
    assert g.alive()
    assert tls_handshake(g.https_port) == before
    st = g.status()
    assert st["admin"]["reload"]["ok"] is False, st["admin"]["reload"]
    assert "mode 0644" in st["admin"]["reload"]["error"], st["admin"]["reload"]
    # Put right, the next reload goes through.
    os.chmod(key, 0o600)
    mark = g.log_mark()
    g.reload()
    g.wait_log(lambda l: "in force" in l, 10, mark, what="reload in force")


def test_admin_token_readable_by_others_refused_at_reload(make_poolgate, tmp_path):
    token = str(tmp_path / "token")
    with open(token, "w") as f:
        f.write("x" * 32 + "\n")
    os.chmod(token, 0o600)
    g = make_poolgate(extra={"admin": {"token_file": token}})
    os.chmod(token, 0o604)
    mark = g.log_mark()
    g.reload()
    line = g.wait_log(lambda l: "refused" in l, 10, mark, what="the reload refused")
    assert "%s: admin.token_file: mode 0604" % token in line, line
    assert g.alive() and g.get("/healthz").status == 200
    # A token others may read is no secret: actions stop (fail closed) until it is private.
    g.wait_for(lambda s: not s["admin"]["actions_enabled"], 10, what="actions disabled")
    assert g.status()["admin"]["reload"]["ok"] is False
    os.chmod(token, 0o600)
    mark = g.log_mark()
    g.reload()
    g.wait_log(lambda l: "in force" in l, 10, mark, what="reload in force")
    g.wait_for(lambda s: s["admin"]["actions_enabled"], 10, what="actions enabled again")
