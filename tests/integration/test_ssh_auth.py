"""SSH front door, every way in (issue 5, items 1-4): the real OpenSSH client -> poolgate -> a
real sshd that decides.

- Password passthrough to an sshd that checks /etc/shadow itself (UsePAM no), driven by
  sshpass and by pexpect (a wrong password, then the right one, in one connection).
- keyboard-interactive passthrough to an sshd run under its own program name, which is its PAM
  service (/etc/pam.d/poolgate-test-kbd: the password, then a one-time HOTP code through
  pam_oath; no other sshd on the machine uses that service).
- Key sources: an AuthorizedKeysCommand-style program (accepted, slow, huge, failing), and
  authorized_keys options (from=, expiry-time=, restrict, cert-authority with principals=),
  plus a user certificate past its validity.

The sshd instances here are this module's own, on the pool addresses (POOLGATE_TEST_POOL_IPS)
and free ports; each poolgate fronts one of them.
"""

import os
import pwd
import re
import subprocess
import time

import pytest

import pool as P
from conftest import POOL_IPS, SLACK, _unavailable

SSH = "/usr/bin/ssh"
SSHPASS = "/usr/bin/sshpass"
OATHTOOL = "/usr/bin/oathtool"
PAM_OATH = "/lib/x86_64-linux-gnu/security/pam_oath.so"
PAM_SERVICE = "poolgate-test-kbd"
PAM_FILE = "/etc/pam.d/" + PAM_SERVICE

PW_USER, PW = "pgtest-pw", "pw-Secret-7qx"
KBD_USER, KBD_PW = "pgtest-kbd", "kbd-Secret-3vz"
KEY_USER = "pgtest-keys"
OATH_SECRET = "3132333435363738393031323334353637383930"


def ensure_user(name, password=None):
    try:
        pwd.getpwnam(name)
    except KeyError:
        if os.geteuid() != 0:
            pytest.skip("test user %s missing and not root to create it" % name)
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, timeout=30,
                       capture_output=True)
    if password is not None:
        subprocess.run(["chpasswd"], input="%s:%s\n" % (name, password), text=True, check=True,
                       timeout=30, capture_output=True)
    else:
        # Not locked ("!"): sshd without PAM refuses locked accounts whatever the key.
        subprocess.run(["usermod", "-p", "*", name], check=True, timeout=30, capture_output=True)


def keygen(path):
    subprocess.run([P.SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", os.path.basename(path),
                    "-f", path], check=True, timeout=30, capture_output=True)
    with open(path + ".pub") as f:
        return f.read().strip()


@pytest.fixture(scope="module")
def instances(peers, tmp_path_factory):
    """Two sshd: `pw` checks passwords itself and trusts poolgate's CA (set per test); `kbd`
    runs PAM with two prompts."""
    for path, pkg in ((SSHPASS, "sshpass"), (OATHTOOL, "oathtool"), (PAM_OATH, "libpam-oath")):
        if not os.path.exists(path):
            _unavailable("%s missing (Debian package %s; run scripts/deps)" % (path, pkg))
    try:
        import pexpect  # noqa: F401
    except ImportError:
        _unavailable("python3-pexpect missing (run scripts/deps)")
    if os.geteuid() != 0:
        pytest.skip("needs root: test users with passwords, a PAM service, sshd as root")
    d = str(tmp_path_factory.mktemp("auth"))
    ensure_user(PW_USER, PW)
    ensure_user(KBD_USER, KBD_PW)
    ensure_user(KEY_USER)
    oath = os.path.join(d, "users.oath")
    with open(PAM_FILE, "w") as f:
        f.write("# poolgate integration tests (tests/integration/test_ssh_auth.py): the PAM\n"
                "# stack of one test sshd, run under this program name. Rewritten per run.\n"
                "auth required pam_unix.so\n"
                "auth required pam_oath.so usersfile=%s window=5 digits=6\n"
                "account required pam_unix.so\n"
                "session required pam_permit.so\n"
                "password required pam_deny.so\n" % oath)
    prog = os.path.join(d, PAM_SERVICE)
    os.symlink(P.SSHD, prog)
    pw = P.Sshd(POOL_IPS[0].strip(), P.free_port(POOL_IPS[0].strip()), os.path.join(d, "pw"),
                options={"PasswordAuthentication": "yes", "MaxAuthTries": "10"})
    kbd = P.Sshd(POOL_IPS[1].strip(), P.free_port(POOL_IPS[1].strip()), os.path.join(d, "kbd"),
                 options={"UsePAM": "yes", "KbdInteractiveAuthentication": "yes"},
                 program=prog)
    kbd.oath_file = oath
    try:
        pw.start()
        kbd.start()
    except P.PeerError as e:
        pw.kill()
        pytest.fail("test sshd did not start:\n%s" % e, pytrace=False)
    yield {"pw": pw, "kbd": kbd}
    pw.kill()
    kbd.kill()


class Gate:
    """A poolgate with the SSH front door in front of one of the module's sshd."""

    def __init__(self, g, port, sshd, d):
        self.g, self.port, self.sshd, self.dir = g, port, sshd, d
        self.known_hosts = os.path.join(d, "user_known_hosts")

    def ssh_args(self, user, extra=()):
        return [SSH, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=%s" % self.known_hosts, "-o", "ConnectTimeout=10",
                "-p", str(self.port)] + list(extra) + ["%s@127.0.0.1" % user]

    def sshpass(self, user, password, command, extra=(), timeout=40):
        args = [SSHPASS, "-e"] + self.ssh_args(user, ["-o", "PreferredAuthentications=password",
                                                       "-o", "PubkeyAuthentication=no"]
                                                 + list(extra)) + [command]
        return subprocess.run(args, env=dict(os.environ, SSHPASS=password), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def key_ssh(self, user, key, command, extra=(), timeout=40):
        args = self.ssh_args(user, ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                                    "-o", "PreferredAuthentications=publickey", "-i", key]
                             + list(extra)) + [command]
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def log(self):
        return self.g.log()

    def sshd_log(self):
        with open(self.sshd.log_path, errors="replace") as f:
            return f.read()


@pytest.fixture
def make_gate(make_poolgate, tmp_path):
    n = [0]

    def make(sshd, front_auth, trust_ca=False, ssh=None):
        n[0] += 1
        d = str(tmp_path / ("gate%d" % n[0]))
        os.makedirs(d)
        kh = os.path.join(d, "instances_known_hosts")
        with open(kh, "w") as f:
            f.write(sshd.host_key_line() + "\n")
        port = P.free_port("127.0.0.1")
        inst = {"id": "auth-%d" % n[0], "address": sshd.ip, "ssh_port": sshd.port,
                "http_port": 9, "capacity": 8}
        g = make_poolgate([inst], start=False, health={"checks": ["tcp", "ssh"], "rise": 1})
        g.cfg["listen"]["ssh"] = ["127.0.0.1:%d" % port]
        g.cfg["ssh"] = {"front_auth": front_auth, "known_hosts": kh, "login_grace_ms": 30000}
        g.cfg["ssh"].update(ssh or {})
        g.start()
        g.wait_state(inst["id"], "up", P.first_round_budget(g.health, SLACK)
                     + P.up_budget(g.health, SLACK))
        if trust_ca:
            m = re.search(r"made a new pool user CA .*?: (ssh-ed25519 \S+)", g.log())
            assert m, g.log_tail(40)
            sshd.trust_user_ca(m.group(1))
        return Gate(g, port, sshd, d)
    yield make


# ---- 1. password ----------------------------------------------------------------------------


def test_password_passthrough(instances, make_gate):
    gate = make_gate(instances["pw"], {"methods": ["password"]})
    r = gate.sshpass(PW_USER, PW, "echo pw-ok; exit 4")
    assert r.stdout == "pw-ok\n", (r.returncode, r.stdout, r.stderr, gate.g.log_tail(30))
    assert r.returncode == 4
    assert "%s -> auth-1" % PW_USER in r.stderr
    assert re.search(r"Accepted password for %s from \S+ port \d+" % PW_USER, gate.sshd_log())
    log = gate.log()
    assert "user %s: password accepted by instance auth-1" % PW_USER in log
    assert "after password" in log
    # Placed only now: the pin is recorded once the instance said yes.
    assert gate.g.user_instance(PW_USER) == "auth-1"
    assert PW not in log


def test_password_wrong_fails_and_makes_no_pin(instances, make_gate):
    gate = make_gate(instances["pw"], {"methods": ["password"]})
    r = gate.sshpass(PW_USER, "wrong-" + PW, "echo should-not-run")
    # sshpass: 5 is "invalid/incorrect password" (the prompt came again).
    assert r.returncode in (5, 255), (r.returncode, r.stdout, r.stderr)
    assert "should-not-run" not in r.stdout
    assert re.search(r"Failed password for %s from" % PW_USER, gate.sshd_log())
    log = gate.log()
    assert "user %s: password refused by instance auth-1" % PW_USER in log
    assert "wrong-" + PW not in log
    # A name whose owner never got in makes no pin.
    assert gate.g.user_instance(PW_USER) is None, gate.g.status()
    # An unknown user name: the instance refuses it like a wrong password, no pin either.
    r = gate.sshpass("pgtest-nosuch", PW, "true")
    assert r.returncode in (5, 255)
    assert gate.g.user_instance("pgtest-nosuch") is None


def test_password_retry_in_one_connection(instances, make_gate):
    import pexpect
    gate = make_gate(instances["pw"], {"methods": ["password"]})
    args = gate.ssh_args(PW_USER, ["-o", "PreferredAuthentications=password",
                                   "-o", "PubkeyAuthentication=no",
                                   "-o", "NumberOfPasswordPrompts=3"]) + ["echo retry-ok"]
    c = pexpect.spawn(args[0], args[1:], timeout=20, encoding="utf-8")
    try:
        c.expect("password: ")
        c.sendline("not-" + PW)
        # A normal failure: the client asks again on the same connection.
        c.expect("Permission denied, please try again")
        c.expect("password: ")
        c.sendline(PW)
        c.expect("retry-ok")
        c.expect(pexpect.EOF)
    finally:
        c.close()
    assert c.exitstatus == 0, (c.exitstatus, gate.g.log_tail(30))
    log = gate.log()
    # One connection: one session id saw both attempts.
    m = re.search(r"(ssh#\d+) .*password refused by instance", log)
    assert m, log[-3000:]
    assert re.search(r"%s .*password accepted by instance" % re.escape(m.group(1)), log)
    assert len(re.findall(r"Failed password for %s" % PW_USER, gate.sshd_log())) >= 1


def test_password_attempt_limit(instances, make_gate):
    import pexpect
    gate = make_gate(instances["pw"], {"methods": ["password"]}, ssh={"max_auth_tries": 2})
    args = gate.ssh_args(PW_USER, ["-o", "PreferredAuthentications=password",
                                   "-o", "PubkeyAuthentication=no",
                                   "-o", "NumberOfPasswordPrompts=5"]) + ["true"]
    c = pexpect.spawn(args[0], args[1:], timeout=20, encoding="utf-8")
    try:
        for _ in range(2):
            c.expect("password: ")
            c.sendline("bad")
        c.expect(pexpect.EOF)
        out = c.before
    finally:
        c.close()
    assert c.exitstatus == 255
    assert "too many authentication failures" in out, out
    assert "too many authentication failures" in gate.log()


def test_bad_passwords_slowed_then_source_refused(instances, make_gate):
    """50 wrong passwords from one address, one per connection: relayed to the instance, refused
    there, and counted by poolgate's penalty like refused keys: answered later and later, then
    the address is blocked and refused at connect. Another address logs in with the password."""
    bad, good = "127.0.0.77", "127.0.0.78"
    penalty = {"free_failures": 3, "delay_ms": 200, "max_delay_ms": 1600,
               "half_life_ms": 86400000, "block_after": 12, "block_ms": 60000}
    gate = make_gate(instances["pw"], {"methods": ["password"]},
                     ssh={"limits": {"penalty": penalty}})
    outcomes, took = [], []
    sshd_mark = len(gate.sshd_log())	# the module's sshd is shared: count only from here
    deadline = time.monotonic() + 180
    for _ in range(50):
        assert time.monotonic() < deadline, "50 attempts took too long: %r" % took
        t0 = time.monotonic()
        r = gate.sshpass(PW_USER, "wrong-" + PW, "echo should-not-run",
                         extra=["-b", bad, "-o", "NumberOfPasswordPrompts=1"])
        took.append(time.monotonic() - t0)
        assert r.returncode != 0 and "should-not-run" not in r.stdout, r.stderr
        if "too many failed logins from your address" in r.stderr:
            outcomes.append("blocked")
        elif "Permission denied" in r.stderr or r.returncode == 5:
            outcomes.append("denied")
        else:
            assert re.search(r"Connection closed|Connection reset|kex_exchange_identification",
                             r.stderr), (r.returncode, r.stderr)
            outcomes.append("refused")
    assert outcomes == ["denied"] * 11 + ["blocked"] + ["refused"] * 38, outcomes
    # Slowed: the free failures at once, later ones held back up to the 1.6 s cap. Durations
    # are lower bounds only (a busy machine makes every attempt slower); poolgate's own log says
    # which answers it held back and for how long.
    assert min(took[6:11]) >= 1.5, took
    log = gate.log()
    held = [int(ms) for ms in re.findall(r"failed attempt answered after (\d+) ms", log)]
    assert len(held) == 11 - 3 and held == sorted(held) and held[-1] == 1600, held
    assert re.search(r"source 127\.0\.0\.77 blocked for 60000 ms after 12 failed attempts", log)
    assert "wrong-" + PW not in log
    # The instance saw the 12 attempts that reached it, and no more.
    assert len(re.findall(r"Failed password for %s" % PW_USER,
                          gate.sshd_log()[sshd_mark:])) == 12
    # The blocked address is refused even with the right password; another one logs in.
    r = gate.sshpass(PW_USER, PW, "echo ok", extra=["-b", bad])
    assert r.returncode != 0 and "ok" not in r.stdout, r.stderr
    r = gate.sshpass(PW_USER, PW, "echo ok", extra=["-b", good])
    assert (r.returncode, r.stdout) == (0, "ok\n"), (r.stderr, gate.g.log_tail(20))


# ---- 4. methods per user; none answers the allowed methods ---------------------------------


def test_methods_per_user(instances, make_gate, tmp_path):
    key = str(tmp_path / "id_keys")
    pub = keygen(key)
    homes = tmp_path / "homes" / KEY_USER
    homes.mkdir(parents=True)
    (homes / "authorized_keys").write_text(pub + "\n")
    gate = make_gate(instances["pw"], {
        "authorized_keys": str(tmp_path / "homes" / "%u" / "authorized_keys"),
        "methods": ["password", "keyboard-interactive"],
        "per_user": [{"users": ["pgtest-k*"], "methods": ["publickey"]}]}, trust_ca=True)
    # A publickey user: `none` lists publickey only, the key logs in upstream with a certificate.
    r = gate.key_ssh(KEY_USER, key, "echo key-ok", extra=["-v"])
    assert r.stdout == "key-ok\n", (r.stderr[-2000:], gate.g.log_tail(30))
    assert "Authentications that can continue: publickey\n" in r.stderr.replace("\r", "")
    # A password user is offered exactly password and keyboard-interactive; a key is refused.
    r = gate.key_ssh(PW_USER, key, "true", extra=["-v"])
    assert r.returncode == 255
    assert "Authentications that can continue: keyboard-interactive,password" in r.stderr
    r = gate.sshpass(PW_USER, PW, "echo pw-ok")
    assert r.stdout == "pw-ok\n", r.stderr
    # And a password for the publickey-only user is not even relayed.
    r = gate.sshpass(KEY_USER, "anything", "true", extra=["-o", "NumberOfPasswordPrompts=1"])
    assert r.returncode != 0
    assert "Failed password for %s" % KEY_USER not in gate.sshd_log()


# ---- 2. keyboard-interactive ----------------------------------------------------------------


def hotp(counter):
    return subprocess.run([OATHTOOL, "--hotp", "-c", str(counter), OATH_SECRET],
                          capture_output=True, text=True, check=True, timeout=10).stdout.strip()


def kbd_login(gate, password, code, command="echo kbd-ok"):
    """Answers the two prompts; returns (exit status, everything the client printed)."""
    import pexpect
    args = gate.ssh_args(KBD_USER, ["-o", "PreferredAuthentications=keyboard-interactive",
                                    "-o", "PubkeyAuthentication=no",
                                    "-o", "NumberOfPasswordPrompts=1"]) + [command]
    c = pexpect.spawn(args[0], args[1:], timeout=20, encoding="utf-8")
    seen = ""
    try:
        c.expect("[Pp]assword: ")
        seen += c.before + c.after
        c.sendline(password)
        c.expect(r"One-time password \(OATH\) for `%s': " % KBD_USER)
        seen += c.before + c.after
        c.sendline(code)
        c.expect(pexpect.EOF)
        seen += c.before
    finally:
        c.close()
    return c.exitstatus, seen


def test_keyboard_interactive_two_prompts(instances, make_gate):
    kbd = instances["kbd"]
    with open(kbd.oath_file, "w") as f:
        f.write("HOTP %s - %s\n" % (KBD_USER, OATH_SECRET))
    os.chmod(kbd.oath_file, 0o600)
    gate = make_gate(kbd, {"methods": ["keyboard-interactive"]})
    status, out = kbd_login(gate, KBD_PW, hotp(0))
    assert status == 0 and "kbd-ok" in out, (status, out, gate.g.log_tail(40))
    assert re.search(r"Accepted keyboard-interactive/pam for %s" % KBD_USER, gate.sshd_log())
    log = gate.log()
    assert "user %s: keyboard-interactive accepted by instance" % KBD_USER in log
    assert KBD_PW not in log and hotp(0) not in log
    # A wrong second factor (a code already used): refused by the instance, so by poolgate.
    status, out = kbd_login(gate, KBD_PW, hotp(0))
    assert status == 255, (status, out)
    assert "Permission denied" in out
    assert "user %s: keyboard-interactive refused by instance" % KBD_USER in gate.log()
    # The next code works again.
    status, out = kbd_login(gate, KBD_PW, hotp(1))
    assert status == 0 and "kbd-ok" in out, (status, out)


# ---- 3. key sources ---------------------------------------------------------------------------


def write_script(path, body):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)


@pytest.fixture
def public_dir():
    """A directory any user can read (pytest's tmp_path is root's alone): the keys program runs
    as `nobody` there."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="pgtest-auth-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_keys_command(instances, make_gate, tmp_path, public_dir):
    key = str(tmp_path / "id_cmd")
    pub = keygen(key)
    store = os.path.join(public_dir, "store")
    os.mkdir(store)
    os.chmod(store, 0o755)
    with open(os.path.join(store, KEY_USER), "w") as f:
        f.write("# from the directory service\n" + pub + "\n")
    args = os.path.join(public_dir, "args")
    with open(args, "w"):
        pass
    os.chmod(args, 0o666)
    cmd = os.path.join(public_dir, "keys-cmd")
    # Prints the user's keys (as nobody); the arguments show %u and %% expanded.
    write_script(cmd, 'id -un > %s\necho "$*" >> %s\nexec cat %s/"$1"\n' % (args, args, store))
    gate = make_gate(instances["pw"], {"authorized_keys_command": {
        "command": [cmd, "%u", "100%%"], "run_as": "nobody", "timeout_ms": 3000}},
        trust_ca=True)
    r = gate.key_ssh(KEY_USER, key, "echo cmd-ok")
    assert r.stdout == "cmd-ok\n", (r.stderr, gate.g.log_tail(30))
    with open(args) as f:
        assert f.read().split() == ["nobody", KEY_USER, "100%"]
    # Another user: the program prints nothing for them.
    r = gate.key_ssh(PW_USER, key, "true")
    assert r.returncode == 255


def test_keys_command_slow_huge_failing(instances, make_gate, tmp_path):
    key = str(tmp_path / "id_cmd")
    pub = keygen(key)
    os.chmod(str(tmp_path), 0o755)
    # A child of the program holds the pipe too: the whole group must die at the timeout. The
    # sleeps' unusual length finds them in /proc.
    secs = str(86400 + os.getpid())
    marker = "sleep\0%s\0" % secs
    slow = str(tmp_path / "slow")
    write_script(slow, "sleep %s &\nsleep %s\n" % (secs, secs))
    gate = make_gate(instances["pw"], {"authorized_keys_command": {
        "command": [slow, "%u"], "timeout_ms": 1000}}, trust_ca=True)
    t0 = time.monotonic()
    r = gate.key_ssh(KEY_USER, key, "true")
    assert r.returncode == 255
    assert time.monotonic() - t0 < 15
    assert "authorized_keys_command did not finish within 1000 ms" in gate.log()
    P.poll(lambda: not [p for p in os.listdir("/proc") if p.isdigit() and
                        _cmdline(p) == marker], 5, 0.1, "the slow program's processes to die")

    huge = str(tmp_path / "huge")
    # The key first, then 2 MiB of comments: cut at 1 MiB, what came before still counts.
    write_script(huge, 'echo "%s"\nhead -c 2097152 /dev/zero | tr "\\\\0" "#"\n' % pub)
    gate = make_gate(instances["pw"], {"authorized_keys_command": {"command": [huge]}},
                     trust_ca=True)
    r = gate.key_ssh(KEY_USER, key, "echo huge-ok")
    assert r.stdout == "huge-ok\n", (r.stderr, gate.g.log_tail(30))
    assert "authorized_keys_command wrote more than 1048576 bytes" in gate.log()

    failing = str(tmp_path / "failing")
    write_script(failing, 'echo "%s"\necho "directory unreachable" >&2\nexit 3\n' % pub)
    gate = make_gate(instances["pw"], {"authorized_keys_command": {"command": [failing]}},
                     trust_ca=True)
    r = gate.key_ssh(KEY_USER, key, "true")
    assert r.returncode == 255, "a failing program's output must not count"
    assert ("authorized_keys_command exited with status 3; no keys: directory unreachable"
            in gate.log())


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def key_gate(make_gate, instances, tmp_path, lines, **front):
    homes = tmp_path / "homes" / KEY_USER
    homes.mkdir(parents=True, exist_ok=True)
    (homes / "authorized_keys").write_text("\n".join(lines) + "\n")
    fa = {"authorized_keys": str(tmp_path / "homes" / "%u" / "authorized_keys")}
    fa.update(front)
    return make_gate(instances["pw"], fa, trust_ca=True)


def test_from_option(instances, make_gate, tmp_path):
    ka, kb = str(tmp_path / "id_a"), str(tmp_path / "id_b")
    pa, pb = keygen(ka), keygen(kb)
    # The client connects from 127.0.0.1.
    gate = key_gate(make_gate, instances, tmp_path, [
        'from="10.0.0.0/8,192.0.2.*" ' + pa,
        'from="127.0.0.0/8,!127.0.0.2" ' + pb])
    r = gate.key_ssh(KEY_USER, ka, "true")
    assert r.returncode == 255
    assert 'the client address 127.0.0.1 does not match from="10.0.0.0/8,192.0.2.*"' in gate.log()
    r = gate.key_ssh(KEY_USER, kb, "echo from-ok")
    assert r.stdout == "from-ok\n", (r.stderr, gate.g.log_tail(30))


def test_refused_options(instances, make_gate, tmp_path):
    ka, kb = str(tmp_path / "id_a"), str(tmp_path / "id_b")
    pa, pb = keygen(ka), keygen(kb)
    gate = key_gate(make_gate, instances, tmp_path, [
        'restrict ' + pa,
        'command="/bin/false",no-pty ' + pb])
    for k in (ka, kb):
        r = gate.key_ssh(KEY_USER, k, "true")
        assert r.returncode == 255
    log = gate.log()
    assert "option restrict cannot be enforced through poolgate" in log
    assert "option command cannot be enforced through poolgate" in log


def test_expired_key_and_certificates(instances, make_gate, tmp_path):
    k = str(tmp_path / "id_exp")
    pk = keygen(k)
    ca = str(tmp_path / "user_ca")
    ca_pub = keygen(ca)
    gate = key_gate(make_gate, instances, tmp_path, [
        'expiry-time="20200101" ' + pk,
        'cert-authority,principals="pool-users" ' + ca_pub])
    r = gate.key_ssh(KEY_USER, k, "true")
    assert r.returncode == 255
    assert "refused: expired (expiry-time)" in gate.log()

    def sign(principals, validity, name):
        subprocess.run([P.SSH_KEYGEN, "-q", "-s", ca, "-I", name, "-n", principals,
                        "-V", validity, k + ".pub"], check=True, timeout=30,
                       capture_output=True)
        os.rename(k + "-cert.pub", str(tmp_path / (name + "-cert.pub")))
        return str(tmp_path / (name + "-cert.pub"))

    # A certificate from the user's own cert-authority line, naming a listed principal.
    good = sign("pool-users", "-5m:+10m", "good")
    r = gate.key_ssh(KEY_USER, k, "echo cert-ok", extra=["-o", "CertificateFile=" + good])
    assert r.stdout == "cert-ok\n", (r.stderr, gate.g.log_tail(30))
    # The user's name is not enough when principals= lists others.
    named = sign(KEY_USER, "-5m:+10m", "named")
    r = gate.key_ssh(KEY_USER, k, "true", extra=["-o", "CertificateFile=" + named])
    assert r.returncode == 255
    # Past its validity: refused.
    old = sign("pool-users", "20200101:20200102", "old")
    r = gate.key_ssh(KEY_USER, k, "true", extra=["-o", "CertificateFile=" + old])
    assert r.returncode == 255
    assert "certificate authority for user %s refused: expired" % KEY_USER in gate.log()


def test_expired_certificate_from_trusted_ca(instances, make_gate, tmp_path):
    k = str(tmp_path / "id_c")
    keygen(k)
    ca = str(tmp_path / "trusted_ca")
    keygen(ca)
    subprocess.run([P.SSH_KEYGEN, "-q", "-s", ca, "-I", "expired-one", "-n", KEY_USER,
                    "-V", "20200101:20200102", k + ".pub"], check=True, timeout=30,
                   capture_output=True)
    gate = key_gate(make_gate, instances, tmp_path, [], trusted_user_ca_keys=ca + ".pub")
    r = gate.key_ssh(KEY_USER, k, "true", extra=["-o", "CertificateFile=" + k + "-cert.pub"])
    assert r.returncode == 255
    assert re.search(r'certificate "expired-one" serial \d+ \(CA \S+\) refused: expired',
                     gate.log())


def test_password_as_first_request_libssh2(instances, make_gate):
    """libssh2 sends the password as the connection's first userauth request (no `none`
    before it): the request that names the user is itself relayed."""
    path = os.path.join(os.path.dirname(P.poolgate_bin()), "..", "tests", "interop",
                        "ssh-interop-libssh2")
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built" % path)
    gate = make_gate(instances["pw"], {"methods": ["password"]})
    r = subprocess.run([path, str(gate.port), PW_USER, "nope", "true"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr, gate.g.log_tail(20))
    assert gate.g.user_instance(PW_USER) is None
    r = subprocess.run([path, str(gate.port), PW_USER, PW, "echo libssh2-pw-ok"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr, gate.g.log_tail(20))
    assert "libssh2-pw-ok" in r.stdout
    assert gate.g.user_instance(PW_USER) == "auth-1"
