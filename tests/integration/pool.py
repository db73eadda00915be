"""Real peers for poolgate's integration tests and demo: sshd, JupyterHub and poolgate itself.

No pytest here: tests/integration/conftest.py wraps these in fixtures and
tests/integration/demo.py (scripts/demo) uses them directly.

Every process is started in its own session (so its process group id is its pid) and is killed
with its whole group and every descendant still found under it in /proc: JupyterHub's
configurable-http-proxy child and sshd's per-connection children (which call setsid() and so leave
the group) must not outlive a test. Every wait loop is bounded in time and in iterations.

Runs under Debian's /usr/bin/python3 (stdlib only).
"""

import http.client
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
JUPYTERHUB = "/usr/bin/jupyterhub"
CHP = "/usr/bin/configurable-http-proxy"
NODE_PATH = "/usr/share/nodejs"


class PeerError(RuntimeError):
    """A real peer failed to start or to become ready; the message includes its log tail."""


# ---------------------------------------------------------------------------------------------
# Small utilities


def poll(predicate, timeout, interval=0.1, what="condition"):
    """Calls predicate() until it returns a truthy value, at most `timeout` seconds and at most
    timeout/interval + 1 times. Returns that value; raises TimeoutError naming `what` and the last
    exception or value seen."""
    deadline = time.monotonic() + timeout
    tries = max(1, int(timeout / interval) + 1)
    last = None
    for _ in range(tries):
        try:
            v = predicate()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - we report it in the timeout
            last = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def free_port(host="127.0.0.1"):
    """A TCP port that was free on `host` a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_ssh_ident(host, port, timeout=2.0):
    """Connects and returns the first line the server sends ("SSH-2.0-..."), or raises."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in data and len(data) < 1024 and time.monotonic() < deadline:
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n")[0].split(b"\n")[0].decode("ascii", "replace")


def http_get(host, port, path, timeout=2.0, tls=False):
    """(status, body bytes) of one GET over a fresh connection (tls: https without verification,
    for readiness checks of instances with a self-signed certificate)."""
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def _children_map():
    """pid -> [child pids], from /proc."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised comm, which may itself contain spaces or ')'.
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) < 2:
            continue
        kids.setdefault(int(rest[1]), []).append(int(name))
    return kids


def descendants(pid):
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            if c not in out:
                out.append(c)
                todo.append(c)
    return out


def kill_tree(proc, sig=signal.SIGKILL, timeout=10.0):
    """Sends `sig` to proc's process group and to every descendant, then reaps proc.
    Returns proc's exit status (None if it could not be reaped in time)."""
    if proc is None:
        return None
    pids = descendants(proc.pid) if proc.poll() is None else []
    try:
        # Also when the leader is already gone: the rest of its group (a hub's proxy) may not be.
        os.killpg(proc.pid, sig)
    except OSError:
        pass
    for p in pids + ([proc.pid] if proc.poll() is None else []):
        try:
            os.kill(p, sig)
        except OSError:
            pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        _reap(pids, timeout)


def pause_tree(proc, pause=True):
    """SIGSTOP (or SIGCONT) proc's process group and its descendants: a hung peer whose kernel
    still completes TCP handshakes into the listen backlog but which never answers."""
    if proc is None or proc.poll() is not None:
        return
    sig = signal.SIGSTOP if pause else signal.SIGCONT
    try:
        os.killpg(proc.pid, sig)
    except OSError:
        pass
    for p in descendants(proc.pid):
        try:
            os.kill(p, sig)
        except OSError:
            pass


def become_subreaper():
    """Makes this process the reaper of its orphaned descendants (prctl PR_SET_CHILD_SUBREAPER),
    so that sshd's connection children, which call setsid() and outlive a killed listener, are
    reaped here rather than left as zombies for an init that may be slow to reap them."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(pids, timeout):
    """Waits (bounded) until each pid is gone: reaped here if it is now our child, else until
    it is a zombie of someone else or has vanished."""
    deadline = time.monotonic() + timeout
    for p in pids:
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(p, os.WNOHANG)
                if done == p:
                    break
            except ChildProcessError:
                try:
                    with open("/proc/%d/stat" % p, "rb") as f:
                        if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                            break
                except (OSError, IndexError):
                    break
            time.sleep(0.02)


def tail(path, n=40):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return "(no log: %s)" % e


# ---------------------------------------------------------------------------------------------
# sshd


class Sshd:
    """A real OpenSSH sshd on ip:port, root-run, with its own ed25519 host key in `workdir`.
    `options` replaces or adds sshd_config keywords ({"UsePAM": "yes"}); `program` is the
    sshd binary to run, e.g. a symlink to it under another name: sshd uses its program name as
    its PAM service, so a test can give one sshd a PAM stack of its own."""

    def __init__(self, ip, port, workdir, options=None, program=SSHD):
        self.ip, self.port, self.dir = ip, port, workdir
        self.options = dict(options or {})
        self.program = program
        os.makedirs(workdir, exist_ok=True)
        self.host_key = os.path.join(workdir, "ssh_host_ed25519_key")
        # The address in the file name puts it in sshd's command line, so an operator can
        # find one instance's sshd with `pkill -f 'sshd.*127.0.0.2'` (README, demo).
        self.config = os.path.join(workdir, "sshd_config-%s-%d" % (ip, port))
        self.log_path = os.path.join(workdir, "sshd.log")
        # TrustedUserCAKeys: tests of the SSH front door write poolgate's user CA line here
        # (sshd reads the file at each login, so no restart); empty, it trusts nobody. No
        # AuthorizedPrincipalsFile: a certificate's principal must be the user name.
        self.trusted_ca_file = os.path.join(workdir, "trusted_user_ca_keys")
        self.proc = None
        self.ident = None
        self.paused = False

    def _prepare(self):
        become_subreaper()
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        if not os.path.exists(self.trusted_ca_file):
            open(self.trusted_ca_file, "a").close()
        if not os.path.exists(self.host_key):
            subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C",
                            "poolgate-test-%s" % self.ip, "-f", self.host_key],
                           check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        lines = [
            "ListenAddress %s:%d" % ("[%s]" % self.ip if ":" in self.ip else self.ip,
                                     self.port),
            "HostKey %s" % self.host_key,
            "PidFile none",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "AuthorizedKeysFile %s" % os.path.join(self.dir, "authorized_keys"),
            "TrustedUserCAKeys %s" % self.trusted_ca_file,
            "StrictModes no",
            "LogLevel VERBOSE",
            # Health probes open and drop connections all the time; keep preauth children short.
            "LoginGraceTime 15",
            "MaxStartups 200",
            "Subsystem sftp internal-sftp",
        ]
        opts = dict(self.options)
        for i, line in enumerate(lines):
            key = line.split(" ", 1)[0]
            if key in opts:
                lines[i] = "%s %s" % (key, opts.pop(key))
        lines += ["%s %s" % kv for kv in opts.items()]
        with open(self.config, "w") as f:
            f.write("\n".join(lines + [""]))
        r = subprocess.run([self.program, "-t", "-f", self.config], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise PeerError("sshd -t rejected %s: %s" % (self.config, r.stderr.strip()))

    def trust_user_ca(self, pub_line):
        """Makes this sshd accept user certificates signed by the CA of pub_line."""
        with open(self.trusted_ca_file, "w") as f:
            f.write(pub_line.strip() + "\n")

    def host_key_line(self):
        """This sshd's host key as a known_hosts entry: "[ip]:port type base64"."""
        with open(self.host_key + ".pub") as f:
            t, b64 = f.read().split()[:2]
        return "[%s]:%d %s %s" % (self.ip, self.port, t, b64)

    def start(self, timeout=15.0):
        if self.running():
            return self
        self._prepare()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([self.program, "-D", "-e", "-f", self.config],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        finally:
            log.close()
        try:
            self.ident = poll(self._ready, timeout, 0.05, "sshd on %s:%d" % (self.ip, self.port))
        except TimeoutError as e:
            self.kill()
            raise PeerError("%s\n--- %s ---\n%s" % (e, self.log_path, tail(self.log_path)))
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise PeerError("sshd exited with %s\n--- %s ---\n%s"
                            % (self.proc.returncode, self.log_path, tail(self.log_path)))
        ident = read_ssh_ident(self.ip, self.port, timeout=1.0)
        return ident if ident.startswith("SSH-2.0-") else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """kill -9 of the listener, its group and its connection children."""
        pause_tree(self.proc, False)
        kill_tree(self.proc, signal.SIGKILL)
        self.proc = None
        self.paused = False

    def pause(self):
        pause_tree(self.proc, True)
        self.paused = True

    def resume(self):
        pause_tree(self.proc, False)
        self.paused = False

    stop = kill

    def restart(self):
        self.kill()
        return self.start()


# ---------------------------------------------------------------------------------------------
# JupyterHub


class JupyterHub:
    """A real JupyterHub (dummy authenticator, simple spawner) whose public proxy listens on
    ip:http_port, hub on ip:hub_port, proxy API on ip:api_port. State lives in `workdir`."""

    def __init__(self, ip, workdir, http_port=8000, hub_port=8081, api_port=8001,
                 ssl_cert=None, ssl_key=None):
        self.ip, self.dir = ip, workdir
        # With a certificate, the public proxy speaks https (the DSVM default), as
        # JupyterHub's own ssl_cert/ssl_key settings make it.
        self.ssl_cert, self.ssl_key = ssl_cert, ssl_key
        self.http_port, self.hub_port, self.api_port = http_port, hub_port, api_port
        os.makedirs(workdir, exist_ok=True)
        self.config = os.path.join(workdir, "jupyterhub_config.py")
        self.log_path = os.path.join(workdir, "jupyterhub.log")
        self.pid_file = os.path.join(workdir, "jupyterhub.pid")
        self.proxy_pid_file = os.path.join(workdir, "proxy.pid")
        self.proc = None
        self.paused = False
        self.proxy_token = os.urandom(16).hex()

    def _prepare(self):
        d = self.dir
        with open(self.config, "w") as f:
            f.write("\n".join([
                "c = get_config()  # noqa",
                "c.JupyterHub.authenticator_class = 'dummy'",
                "c.JupyterHub.spawner_class = 'simple'",
                "c.Spawner.args = ['--allow-root']",
                "c.JupyterHub.bind_url = '%s://%s:%d'" % (
                    "https" if self.ssl_cert else "http", self.ip, self.http_port),
                "c.JupyterHub.hub_ip = '%s'" % self.ip,
                "c.JupyterHub.hub_port = %d" % self.hub_port,
                "c.ConfigurableHTTPProxy.api_url = 'http://%s:%d'" % (self.ip, self.api_port),
                "c.ConfigurableHTTPProxy.auth_token = '%s'" % self.proxy_token,
                "c.ConfigurableHTTPProxy.pid_file = %r" % self.proxy_pid_file,
                "c.JupyterHub.db_url = 'sqlite:///%s'" % os.path.join(d, "jupyterhub.sqlite"),
                "c.JupyterHub.cookie_secret_file = %r" % os.path.join(d, "jupyterhub_cookie_secret"),
                "c.JupyterHub.pid_file = %r" % self.pid_file,
                "c.JupyterHub.cleanup_servers = True",
                "c.JupyterHub.cleanup_proxy = True",
                "c.JupyterHub.log_level = 'INFO'",
                # poolgate (and configurable-http-proxy, which appends the address it saw)
                # connect from 127.0.0.1: trusting it, the hub logs the client poolgate names
                # in X-Forwarded-For as the request's "(@address)".
                "c.JupyterHub.trusted_downstream_ips = ['127.0.0.1']",
            ] + ([
                "c.JupyterHub.ssl_cert = %r" % self.ssl_cert,
                "c.JupyterHub.ssl_key = %r" % self.ssl_key,
            ] if self.ssl_cert else []) + [
                "",
            ]))
        # A stale proxy pid file would make the hub try to stop whatever now has that pid.
        for p in (self.proxy_pid_file, self.pid_file):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def start(self, timeout=90.0):
        if self.running():
            return self
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self):
        """Starts the process without waiting (so several hubs can boot in parallel)."""
        self._prepare()
        env = dict(os.environ, NODE_PATH=NODE_PATH)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([JUPYTERHUB, "-f", self.config], cwd=self.dir, env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        finally:
            log.close()
        return self

    def wait_ready(self, timeout=90.0):
        try:
            poll(self._ready, timeout, 0.25,
                 "JupyterHub /hub/health on %s:%d" % (self.ip, self.http_port))
        except (TimeoutError, PeerError) as e:
            self.kill()
            raise PeerError("%s\n--- %s ---\n%s" % (e, self.log_path, tail(self.log_path)))
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise PeerError("jupyterhub exited with %s" % self.proc.returncode)
        status, _ = http_get(self.ip, self.http_port, "/hub/health", timeout=2.0,
                             tls=self.ssl_cert is not None)
        return status == 200

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_count(self, needle):
        """How many lines of this hub's log contain `needle` (a request's unique query string
        shows there: JupyterHub logs every request with its URI at INFO)."""
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return sum(1 for line in f if needle in line)
        except OSError:
            return 0

    def kill(self):
        """kill -9 of the hub and its configurable-http-proxy (same process group)."""
        pause_tree(self.proc, False)
        kill_tree(self.proc, signal.SIGKILL)
        self.proc = None
        self.paused = False
        # Both ports must be closed before a restart or a test that expects "refused".
        try:
            poll(lambda: not port_open(self.ip, self.http_port, 0.2)
                 and not port_open(self.ip, self.hub_port, 0.2), 10, 0.05,
                 "JupyterHub ports to close on %s" % self.ip)
        except TimeoutError:
            pass

    stop = kill

    def pause(self):
        pause_tree(self.proc, True)
        self.paused = True

    def resume(self):
        pause_tree(self.proc, False)
        self.paused = False

    def restart(self):
        self.kill()
        return self.start()


# ---------------------------------------------------------------------------------------------
# One pool instance: sshd + JupyterHub on one loopback address


class Instance:
    def __init__(self, id, ip, workdir, ssh_port=2022, http_port=8000, hub_port=8081,
                 api_port=8001, capacity=8, labels=None):
        self.id, self.ip = id, ip
        self.ssh_port, self.http_port = ssh_port, http_port
        self.capacity = capacity
        self.labels = labels if labels is not None else {}
        self.sshd = Sshd(ip, ssh_port, os.path.join(workdir, "sshd"))
        self.hub = JupyterHub(ip, os.path.join(workdir, "jupyterhub"), http_port, hub_port,
                              api_port)

    def start(self):
        self.sshd.start()
        if not self.hub.running():
            self.hub.start()
        return self

    def ensure_running(self):
        """Resumes whatever a test paused, restarts whatever it killed."""
        for peer in (self.sshd, self.hub):
            if peer.paused:
                peer.resume()
        if not self.sshd.running():
            self.sshd.start()
        if not self.hub.running():
            self.hub.start()

    def stop(self):
        self.hub.kill()
        self.sshd.kill()

    def config(self, **overrides):
        """This instance as an entry of poolgate's `instances` list."""
        d = {"id": self.id, "address": self.ip, "ssh_port": self.ssh_port,
             "http_port": self.http_port, "http_tls": False, "capacity": self.capacity,
             "admin_state": "active", "labels": dict(self.labels)}
        d.update(overrides)
        return d


class Pool:
    """Several instances, started in parallel where it matters (hubs take seconds to boot)."""

    def __init__(self, workdir, specs):
        """specs: list of dicts of Instance keyword arguments (id, ip, ports...)."""
        self.dir = workdir
        self.instances = [Instance(workdir=os.path.join(workdir, s["id"]), **s) for s in specs]

    def __getitem__(self, i):
        return self.instances[i]

    def __iter__(self):
        return iter(self.instances)

    def start(self):
        try:
            for inst in self.instances:
                inst.sshd.start()
            for inst in self.instances:
                inst.hub.spawn()
            for inst in self.instances:
                inst.hub.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def ensure_running(self):
        for inst in self.instances:
            inst.ensure_running()

    def stop(self):
        for inst in self.instances:
            inst.stop()


# ---------------------------------------------------------------------------------------------
# A TCP server that accepts and never answers (a hung instance)


class BlackholeServer:
    """Accepts TCP connections on ip:port for each port and never sends a byte. Connections are
    held open until close()."""

    def __init__(self, ip, ports, greeting=None, byte_delay=0.0):
        """greeting: bytes sent to each client right after accept (then silence), or None;
        with byte_delay, one byte at a time that many seconds apart (a fragmenting peer)."""
        self.ip, self.greeting, self.byte_delay = ip, greeting, byte_delay
        self.socks, self.conns = [], []
        self._stop = threading.Event()
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
            s.listen(128)
            s.setblocking(False)
            self.socks.append(s)
        self.ports = [s.getsockname()[1] for s in self.socks]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import selectors
        sel = selectors.DefaultSelector()
        for s in self.socks:
            sel.register(s, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                try:
                    c, _ = s.accept()
                    c.setblocking(True)
                    self.conns.append(c)
                    if self.greeting and self.byte_delay:
                        threading.Thread(target=self._trickle, args=(c,), daemon=True).start()
                    elif self.greeting:
                        c.sendall(self.greeting)
                except OSError:
                    pass

    def _trickle(self, c):
        try:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in self.greeting:
                if self._stop.is_set():
                    return
                c.sendall(bytes([b]))
                time.sleep(self.byte_delay)
        except OSError:
            pass

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        for c in self.conns + self.socks:
            try:
                c.close()
            except OSError:
                pass


class TcpSwitch:
    """A TCP relay in front of one real peer whose behaviour a test switches at run time:
    "forward" relays both ways, "blackhole" accepts and never answers (nor relays), "refuse"
    stops listening (connects get RST). Used to make an instance hang or flap on purpose.

    sw = TcpSwitch(ip, target_ip, target_port); sw.mode = "blackhole"; ...; sw.close()"""

    def __init__(self, ip, target_ip, target_port, port=0, mode="forward"):
        self.ip, self.target = ip, (target_ip, target_port)
        self._lock = threading.Lock()
        self._mode = "forward"
        self._stop = threading.Event()
        self.conns = []
        self.accepted = 0
        self._listen(port)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.mode = mode

    def _listen(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.ip, port))
        s.listen(128)
        s.settimeout(0.05)
        self._sock = s

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, m):
        assert m in ("forward", "blackhole", "refuse"), m
        with self._lock:
            if m == "refuse" and self._sock is not None:
                self._sock.close()
                self._sock = None
            elif m != "refuse" and self._sock is None:
                self._listen(self.port)
            self._mode = m

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                s, mode = self._sock, self._mode
            if s is None:
                time.sleep(0.02)
                continue
            try:
                c, _ = s.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            self.conns.append(c)
            if mode == "forward":
                threading.Thread(target=self._relay, args=(c,), daemon=True).start()

    def _relay(self, c):
        try:
            u = socket.create_connection(self.target, timeout=5)
        except OSError:
            c.close()
            return
        self.conns.append(u)
        for a, b in ((c, u), (u, c)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a, b):
        try:
            # The relay may be closed (its sockets too) before this thread first runs.
            a.settimeout(None)
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        for c in list(self.conns):
            try:
                c.close()
            except OSError:
                pass


def vm_rss_kib(pid):
    """VmRSS of a process in KiB (from /proc/PID/status), or -1."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def is_sanitized(binary):
    """True when the binary was built with AddressSanitizer (its runtime is linked in)."""
    try:
        with open(binary, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# poolgate


def poolgate_bin():
    return os.environ.get("POOLGATE_BIN", os.path.join(REPO, "build", "proxy", "poolgate"))


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class Poolgate:
    """The poolgate binary under test: writes its config, runs it with stderr in a log file.

    p = Poolgate(workdir, instances=[...]); p.start(); p.status(); p.reload(); p.stop()
    """

    def __init__(self, workdir, instances=(), discovery=None, health=None, admin_port=None,
                 binary=None, log_level="debug", extra=None, https=False, certificates=None,
                 http=None):
        """https: also listen for browsers, https on 127.0.0.1:<https_port> and the plain-http
        redirect on 127.0.0.1:<http_port> (both free ports); certificates: [(cert, key)] paths
        for `tls.certificates` (None: poolgate makes its self-signed one); http: the `http`
        settings object (timeouts, limits, cookie name)."""
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.binary = binary or poolgate_bin()
        self.admin_host = "127.0.0.1"
        self.admin_port = admin_port or free_port(self.admin_host)
        # Ports picked here may be taken by someone else before poolgate binds them (free_port
        # can only close its probe socket): start() picks new ones and retries then.
        self._auto_ports = admin_port is None
        self.config_path = os.path.join(workdir, "poolgate.json")
        self.log_path = os.path.join(workdir, "poolgate.log")
        self.state_dir = os.path.join(workdir, "state")
        self.discovery_path = os.path.join(workdir, "instances.json")
        os.makedirs(self.state_dir, exist_ok=True)
        self.health = {"interval_ms": 500, "timeout_ms": 300, "rise": 2, "fall": 2,
                       "jitter_pct": 10, "checks": ["tcp", "ssh", "http"],
                       "http_path": "/hub/health"}
        if health:
            self.health.update(health)
        self.cfg = {
            # The front doors default to 0.0.0.0 ports (DESIGN.md); tests that want them say so
            # through `extra`, the others turn them off so parallel poolgates never clash.
            "listen": {"admin": ["%s:%d" % (self.admin_host, self.admin_port)],
                       "ssh": [], "https": [], "http": []},
            "state_dir": self.state_dir,
            "log": {"level": log_level, "format": "text"},
            "instances": list(instances),
            "health": self.health,
            # SIGTERM gives live sessions this long before they are disconnected (default 10 s);
            # teardown stops every poolgate with a 10 s budget, so tests keep it short.
            "shutdown_grace_ms": 2000,
        }
        if discovery is not None:
            # discovery: list of instance dicts to write now, or True for an empty file.
            self.cfg["discovery"] = {"file": self.discovery_path, "poll_ms": 200}
            self.write_discovery([] if discovery is True else discovery)
        self.https_port = self.http_port = None
        if https:
            self.https_port = free_port(self.admin_host)
            self.http_port = free_port(self.admin_host)
            self.cfg["listen"]["https"] = ["%s:%d" % (self.admin_host, self.https_port)]
            self.cfg["listen"]["http"] = ["%s:%d" % (self.admin_host, self.http_port)]
            if certificates:
                self.cfg["tls"] = {"certificates": [{"cert": c, "key": k}
                                                    for c, k in certificates]}
            if http:
                self.cfg["http"] = dict(http)
        if extra:
            self.cfg.update(extra)
        self.proc = None
        self.exit_code = None

    @property
    def base_url(self):
        """The https front door as a browser addresses it (by IP: the test certificate has an
        IP SAN for 127.0.0.1)."""
        return "https://%s:%d" % (self.admin_host, self.https_port)

    def users(self, status=None):
        """{instance id: [pinned users]} from /status."""
        return dict((i["id"], list(i.get("users", [])))
                    for i in (status or self.status())["instances"])

    def user_instance(self, user, status=None):
        """The id of the instance /status lists `user` under, or None (asserts at most one)."""
        ids = [i for i, us in self.users(status).items() if user in us]
        assert len(ids) <= 1, "%s listed under several instances: %r" % (user, ids)
        return ids[0] if ids else None

    # --- config and discovery files

    def write_config(self, cfg=None, raw=None):
        """Writes the config (atomically: write + rename) as JSON, or `raw` text verbatim."""
        _atomic_write(self.config_path, raw if raw is not None
                      else json.dumps(cfg if cfg is not None else self.cfg, indent=2))

    def write_discovery(self, instances=None, raw=None):
        _atomic_write(self.discovery_path, raw if raw is not None
                      else json.dumps({"instances": list(instances)}, indent=2))

    # --- process

    def start(self, wait=True, timeout=10.0):
        for attempt in range(3):
            self._spawn()
            if not wait:
                return self
            try:
                poll(self._healthy, timeout, 0.05, "poolgate /healthz on %s:%d"
                     % (self.admin_host, self.admin_port))
                return self
            except (TimeoutError, AssertionError) as e:
                log = self.log()
                if (self._auto_ports and attempt < 2 and self.proc.poll() == 1
                        and "address already in use" in log):
                    self._repick_ports()
                    continue
                raise AssertionError("%s\n--- poolgate log ---\n%s" % (e, log))
        return self

    def _spawn(self):
        self.write_config()
        self.log_file = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([self.binary, "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=self.log_file,
                                         stderr=self.log_file, start_new_session=True)
        finally:
            self.log_file.close()

    def _repick_ports(self):
        """Another process took one of our free ports between free_port() and bind."""
        self.admin_port = free_port(self.admin_host)
        self.cfg["listen"]["admin"] = ["%s:%d" % (self.admin_host, self.admin_port)]
        if self.https_port is not None:
            self.https_port = free_port(self.admin_host)
            self.http_port = free_port(self.admin_host)
            self.cfg["listen"]["https"] = ["%s:%d" % (self.admin_host, self.https_port)]
            self.cfg["listen"]["http"] = ["%s:%d" % (self.admin_host, self.http_port)]

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError("poolgate exited with %s" % self.proc.returncode)
        return self.get("/healthz", timeout=1.0).status == 200

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        """SIGHUP: poolgate re-reads its config file."""
        self.send_signal(signal.SIGHUP)

    def wait_exit(self, timeout=10.0):
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def stop(self, sig=signal.SIGTERM, timeout=10.0, check=True):
        """Sends `sig` and waits for the exit; with check, asserts exit status 0 in time.
        Always leaves nothing running."""
        if self.proc is None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        t0 = time.monotonic()
        rc = self.wait_exit(timeout)
        elapsed = time.monotonic() - t0
        if rc is None:
            kill_tree(self.proc)
            self.proc = None
            if check:
                raise AssertionError("poolgate did not exit within %.0fs of %s\n--- log ---\n%s"
                                     % (timeout, signal.Signals(sig).name, self.log()))
            return None
        self.proc = None
        if check:
            assert rc == 0, "poolgate exited %d after %s (%.2fs)\n--- log ---\n%s" % (
                rc, signal.Signals(sig).name, elapsed, self.log())
        return rc

    def kill(self):
        kill_tree(self.proc)
        self.proc = None

    # --- admin endpoint

    def request(self, method, path, timeout=3.0, body=None, headers=None):
        c = http.client.HTTPConnection(self.admin_host, self.admin_port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return Response(r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read())
        finally:
            c.close()

    def get(self, path, timeout=3.0):
        return self.request("GET", path, timeout)

    def status(self):
        r = self.get("/status")
        assert r.status == 200, "GET /status -> %r" % r
        return r.json()

    def instance(self, id, status=None):
        """The /status entry for `id`, or None."""
        for i in (status or self.status())["instances"]:
            if i["id"] == id:
                return i
        return None

    def states(self):
        return dict((i["id"], i["state"]) for i in self.status()["instances"])

    def wait_for(self, predicate, timeout, interval=0.1, what=None):
        """Polls predicate(status_json) until truthy; returns its value (the /status JSON when
        that value is just True). On timeout raises
        AssertionError with the last /status and the log tail."""
        last = {}

        def probe():
            last["s"] = self.status()
            v = predicate(last["s"])
            # A plain True is replaced by the /status that satisfied the predicate.
            return last["s"] if v is True else v
        try:
            return poll(probe, timeout, interval, what or getattr(predicate, "__name__", "status"))
        except TimeoutError as e:
            raise AssertionError("%s\n--- last /status ---\n%s\n--- poolgate log (tail) ---\n%s"
                                 % (e, json.dumps(last.get("s"), indent=1),
                                    self.log_tail(60))) from None

    def wait_state(self, id, state, timeout):
        def pred(s):
            i = self.instance(id, s)
            return i is not None and i["state"] == state and i
        return self.wait_for(pred, timeout, what="instance %s state == %s" % (id, state))

    # --- log

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "".join(self.log().splitlines(True)[-n:])

    def log_mark(self):
        """An offset into the log; pass it to log_since/wait_log to look only at newer lines."""
        return len(self.log())

    def log_since(self, mark):
        return self.log()[mark:]

    def wait_log(self, predicate, timeout, mark=0, what="log line"):
        """Waits for a log line (after `mark`) for which predicate(line) is true; returns it."""
        def probe():
            for line in self.log_since(mark).splitlines():
                if predicate(line):
                    return line
            return None
        try:
            return poll(probe, timeout, 0.1, what)
        except TimeoutError as e:
            raise AssertionError("%s\n--- poolgate log since mark ---\n%s"
                                 % (e, self.log_since(mark)[-6000:])) from None


def _atomic_write(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_poolgate(args, timeout=20.0):
    """Runs the binary to completion: CompletedProcess with text stdout/stderr."""
    return subprocess.run([poolgate_bin()] + list(args), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def missing_peers():
    """[(what, why)] for each real peer that is not installed or cannot run here."""
    out = []
    for path, pkg in ((SSHD, "openssh-server"), (SSH_KEYGEN, "openssh-client"),
                      (JUPYTERHUB, "jupyterhub"), (CHP, "jupyterhub (configurable-http-proxy)")):
        if not os.access(path, os.X_OK):
            out.append((path, "not installed (Debian package %s; run scripts/deps)" % pkg))
    if shutil.which("node") is None and shutil.which("nodejs") is None:
        out.append(("node", "not installed (needed by configurable-http-proxy)"))
    if os.geteuid() != 0:
        out.append(("root", "sshd with privilege separation and JupyterHub's spawner are run "
                            "as root by these tests"))
    return out


def make_workdir(prefix="poolgate-it-"):
    return tempfile.mkdtemp(prefix=prefix)



# ---------------------------------------------------------------------------------------------
# Time budgets derived from the health config (seconds)

def round_max(h):
    """The longest gap between two rounds: interval plus its jitter."""
    return h["interval_ms"] / 1000.0 * (1 + h.get("jitter_pct", 0) / 100.0)


def round_min(h):
    return h["interval_ms"] / 1000.0 * (1 - h.get("jitter_pct", 0) / 100.0)


def first_round_budget(h, slack):
    """From start (state unknown) to the first round's verdict."""
    return round_max(h) + h["timeout_ms"] / 1000.0 + slack


def down_budget(h, slack):
    """From a peer's death to `down`: `fall` failed rounds, the last one possibly timing out."""
    return h["fall"] * round_max(h) + h["timeout_ms"] / 1000.0 + slack


def up_budget(h, slack):
    """From a peer's return to `up`: `rise` good rounds."""
    return h["rise"] * round_max(h) + h["timeout_ms"] / 1000.0 + slack


def all_up(ids):
    """A Poolgate.wait_for predicate: every id in `ids` is listed and up."""
    def pred(s):
        st = dict((i["id"], i["state"]) for i in s["instances"])
        return all(st.get(i) == "up" for i in ids)
    pred.__name__ = "all of %s up" % (sorted(ids),)
    return pred


def parse_rfc3339(s):
    """datetime for an RFC 3339 timestamp (Z or numeric offset, optional fraction); raises."""
    import datetime
    if not isinstance(s, str):
        raise ValueError("not a string: %r" % (s,))
    t = s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s
    if "T" not in t and "t" not in t:
        raise ValueError("no T separator: %r" % s)
    d = datetime.datetime.fromisoformat(t.replace("t", "T"))
    if d.tzinfo is None:
        raise ValueError("no offset: %r" % s)
    return d


class RecordingHTTPServer:
    """A real HTTP/1.1 server (http.server, threaded) on ip:port (IPv4 or IPv6) that answers
    every GET with `status` and records each request's path and headers."""

    def __init__(self, ip, port=0, status=200):
        import http.server

        outer = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.requests.append((self.command, self.path, dict(self.headers.items()),
                                       self.request_version))
                body = b"ok\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                # A body with a Content-Length, read whole; the answer names its size and
                # SHA-256, so a test can see every byte arrived.
                n = int(self.headers.get("Content-Length", "0"))
                h, left = hashlib.sha256(), n
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    h.update(chunk)
                    left -= len(chunk)
                outer.requests.append((self.command, self.path, dict(self.headers.items()),
                                       self.request_version))
                body = ("%d %s\n" % (n - left, h.hexdigest())).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if "close" in self.path:
                    # One exchange per connection: the proxy must connect anew for the next.
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT

            def log_message(self, *a):
                pass

        family = socket.AF_INET6 if ":" in ip else socket.AF_INET

        class Server(http.server.ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self.server = Server((ip, port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={
            "poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


# ---------------------------------------------------------------------------------------------
# TLS: a throwaway CA and certificates (openssl CLI), openssl s_client, raw TLS exchanges

OPENSSL = "/usr/bin/openssl"


def _openssl(args, timeout=30, input=None):
    r = subprocess.run([OPENSSL] + list(args), capture_output=True, text=True, timeout=timeout,
                       input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if r.returncode != 0:
        raise PeerError("openssl %s failed (%d): %s" % (" ".join(args[:2]), r.returncode,
                                                        r.stderr.strip()))
    return r


class TestCA:
    """A certificate authority made for one test run in `workdir` with the openssl CLI (P-256
    keys, two days). issue() signs server certificates for DNS names and IP addresses."""

    __test__ = False  # not a pytest class

    def __init__(self, workdir, cn="poolgate test CA"):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.cert = os.path.join(workdir, "ca.crt")
        self.key = os.path.join(workdir, "ca.key")
        self._serial = int.from_bytes(os.urandom(6), "big")
        _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
                  "-subj", "/CN=%s" % cn,
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                  "-addext", "subjectKeyIdentifier=hash"])

    def issue(self, name, dns=(), ips=(), cn=None):
        """Signs a fresh key for `dns` names and `ips`; writes <name>.crt and <name>.key in the
        CA's directory (replacing them atomically if they exist) and returns (cert, key)."""
        crt, key = os.path.join(self.dir, name + ".crt"), os.path.join(self.dir, name + ".key")
        tmp = os.path.join(self.dir, ".%s.%d" % (name, os.getpid()))
        san = ",".join(["DNS:%s" % d for d in dns] + ["IP:%s" % i for i in ips])
        ext = tmp + ".ext"
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid\nsubjectAltName=%s\n" % san)
        self._serial += 1
        try:
            _openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", tmp + ".key", "-out", tmp + ".csr",
                      "-subj", "/CN=%s" % (cn or (list(dns) + list(ips))[0])])
            _openssl(["x509", "-req", "-in", tmp + ".csr", "-CA", self.cert, "-CAkey", self.key,
                      "-set_serial", str(self._serial), "-days", "2", "-extfile", ext,
                      "-out", tmp + ".crt"])
            # The key first: a reload that reads between the two renames sees a new key with
            # the old certificate at worst, a mismatch poolgate must refuse, not serve.
            os.replace(tmp + ".key", key)
            os.replace(tmp + ".crt", crt)
        finally:
            for x in (ext, tmp + ".csr", tmp + ".key", tmp + ".crt"):
                try:
                    os.unlink(x)
                except FileNotFoundError:
                    pass
        return crt, key


def cert_fingerprint(pem):
    """SHA-256 fingerprint ("AB:CD:...") of a PEM certificate given as a path or as text."""
    if "-----BEGIN" not in pem:
        with open(pem) as f:
            pem = f.read()
    r = _openssl(["x509", "-noout", "-fingerprint", "-sha256"], input=pem)
    return r.stdout.strip().split("=", 1)[1]


class SClient:
    """One `openssl s_client` run: rc, output, the peer certificate (PEM) and what it says about
    protocol, cipher and ALPN."""

    def __init__(self, rc, output):
        self.rc, self.output = rc, output
        b, e = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
        i = output.find(b)
        self.cert = output[i:output.find(e, i) + len(e)] + "\n" if i >= 0 else None

    def field(self, name):
        for line in self.output.splitlines():
            line = line.strip()
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
        return None

    @property
    def fingerprint(self):
        return cert_fingerprint(self.cert) if self.cert else None

    def _new_line(self):
        """("TLSv1.3", "TLS_AES_256_GCM_SHA384") from "New, TLSv1.3, Cipher is ...", or None."""
        for line in self.output.splitlines():
            if line.startswith("New, "):
                head, _, cipher = line.partition(", Cipher is ")
                return head[5:].strip(), cipher.strip()
        return None

    @property
    def handshake_ok(self):
        """A session was established (a cipher negotiated) and a certificate was sent."""
        n = self._new_line()
        return self.cert is not None and n is not None and n[1] not in ("", "(NONE)")

    @property
    def protocol(self):
        """The negotiated version: the session's "Protocol :" line (absent for TLS 1.3 when no
        ticket came before s_client quit), else the "New, <version>" line."""
        p = self.field("Protocol  :")
        if p:
            return p
        n = self._new_line()
        return n[0] if n else None

    @property
    def alpn(self):
        return self.field("ALPN protocol:")

    def __repr__(self):
        return "<s_client rc=%d %s>" % (self.rc, self.output[-1500:])


def s_client(port, host="127.0.0.1", servername=None, args=(), ca=None, timeout=10):
    """Runs `openssl s_client` against host:port with stdin closed (it says Q-uit at once)."""
    cmd = [OPENSSL, "s_client", "-connect", "%s:%d" % (host, port)]
    if servername:
        cmd += ["-servername", servername]
    else:
        cmd += ["-noservername"]
    if ca:
        cmd += ["-CAfile", ca]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return SClient(r.returncode, r.stdout + r.stderr)


def tls_client_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def tls_connect(port, ca, host="127.0.0.1", timeout=5.0, servername=None):
    """A TLS socket to host:port verified against `ca`."""
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        s = tls_client_context(ca).wrap_socket(raw, server_hostname=servername or host)
    except BaseException:
        raw.close()
        raise
    s.settimeout(timeout)
    return s


def read_until_close(s, timeout, limit=1 << 20):
    """(bytes read, closed) : reads until the peer closes, `timeout` seconds or `limit` bytes."""
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return data, False
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def parse_head(data):
    """(status, {lower-case header: value}, body) of the first HTTP response in `data`."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError("not an HTTP response: %r" % data[:200])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(parts[1]), headers, body


def raw_exchange(port, ca, request, timeout=5.0):
    """Sends `request` bytes over a fresh TLS connection and reads until the peer closes or
    `timeout`: (status, headers, body, closed)."""
    s = tls_connect(port, ca, timeout=timeout)
    try:
        s.sendall(request)
        data, closed = read_until_close(s, timeout)
    finally:
        s.close()
    if not data:
        return None, {}, b"", closed
    status, headers, body = parse_head(data)
    return status, headers, body, closed


# ---------------------------------------------------------------------------------------------
# A browser in front of JupyterHub (requests + websocket-client, imported when used)


AFFINITY_COOKIE = "poolgate_affinity"


def parse_affinity(value):
    """poolgate's affinity cookie value `v1.<instance-id>.<expiry>.<mac>` as
    {"id", "expiry", "mac"}, or None if it does not have that shape."""
    if not value or not value.startswith("v1."):
        return None
    parts = value[3:].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return {"id": parts[0], "expiry": int(parts[1]), "mac": parts[2]}


def mint_affinity(state_dir, instance_id, expiry):
    """An affinity cookie value signed the way poolgate signs: base64url (no padding) of
    HMAC-SHA256 over "v1.<id>.<expiry>" keyed with the 32-byte secret poolgate keeps in
    state_dir/cookie_secret. Lets a test make a genuine but expired cookie."""
    import base64
    import hashlib
    import hmac
    with open(os.path.join(state_dir, "cookie_secret"), "rb") as f:
        secret = f.read()
    signed = "v1.%s.%d" % (instance_id, expiry)
    mac = hmac.new(secret, signed.encode(), hashlib.sha256).digest()
    return "%s.%s" % (signed, base64.urlsafe_b64encode(mac).decode().rstrip("="))


class HubBrowser:
    """What a browser does with JupyterHub 3 at `base` (poolgate's https front door, or an
    instance directly): one cookie jar (requests.Session), the Referer JupyterHub's API wants
    with cookie auth, the X-XSRFToken notebook 6 wants on its API, websockets that carry the
    jar's cookies. Every call has a timeout."""

    def __init__(self, base, ca=None, timeout=30.0, cookie_name=AFFINITY_COOKIE):
        import requests
        self.requests = requests
        self.base = base.rstrip("/")
        self.ca = ca
        self.timeout = timeout
        self.cookie_name = cookie_name
        self.s = requests.Session()
        # Not the environment's proxies or CA bundle: REQUESTS_CA_BUNDLE would otherwise win
        # over Session.verify (requests merges a request's verify=None with the environment
        # first), and the test CA would never be used.
        self.s.trust_env = False
        self.verify = ca if ca else True

    def url(self, path):
        return self.base + path

    def request(self, method, path, api=None, **kw):
        """requests.Response; `api` (default: path under /hub/api/ or /user/.../api/) adds the
        Referer and X-XSRFToken headers a page of the same origin would send."""
        headers = dict(kw.pop("headers", None) or {})
        if api is None:
            api = "/api/" in path
        if api:
            headers.setdefault("Referer", self.base + "/hub/")
            x = self.cookie("_xsrf")
            if x:
                headers.setdefault("X-XSRFToken", x)
        kw.setdefault("timeout", self.timeout)
        kw.setdefault("verify", self.verify)
        kw.setdefault("allow_redirects", False)
        return self.s.request(method, self.url(path), headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # --- cookies

    def cookie(self, name):
        vals = [c.value for c in self.s.cookies if c.name == name]
        return vals[-1] if vals else None

    def affinity(self):
        """poolgate's affinity cookie in the jar, parsed (parse_affinity), or None."""
        return parse_affinity(self.cookie(self.cookie_name))

    def set_affinity(self, value):
        """Replaces poolgate's cookie in the jar with `value` (a forged one)."""
        for c in list(self.s.cookies):
            if c.name == self.cookie_name:
                self.s.cookies.clear(c.domain, c.path, c.name)
        host = self.base.split("://", 1)[1].rsplit(":", 1)[0]
        self.s.cookies.set(self.cookie_name, value, domain=host, path="/")

    def cookie_header(self, path):
        req = self.requests.Request("GET", self.url(path)).prepare()
        req.prepare_cookies(self.s.cookies)
        return req.headers.get("Cookie", "")

    # --- JupyterHub

    def login(self, user, password="any", probe=None):
        """POST /hub/login (dummy authenticator: any password); returns the 302 response.
        JupyterHub 3.0's login form carries no _xsrf field (tornado's xsrf_cookies is off in
        3.0; 4.1 added it), so none is sent. `probe`: a unique query string value that the
        serving hub's log will show (JupyterHub.log_count)."""
        path = "/hub/login" + ("?probe=%s" % probe if probe else "")
        r = self.post(path, data={"username": user, "password": password}, api=False)
        assert r.status_code == 302, "login %s: %d %s" % (user, r.status_code, r.text[:300])
        assert self.cookie("jupyterhub-hub-login"), "login %s set no hub cookie" % user
        return r

    def user_model(self, user):
        r = self.get("/hub/api/users/%s" % user)
        assert r.status_code == 200, "GET user %s: %d %s" % (user, r.status_code, r.text[:300])
        return r.json()

    def server_running(self, user):
        m = self.user_model(user)
        return "" in m.get("servers", {}) and m["servers"][""].get("ready")

    def spawn(self, user, timeout=60.0):
        """Starts the user's default server and reads the spawn progress stream while it starts.
        Returns [(arrival monotonic time, event dict)] in order; the stream's end time is the
        `end` attribute of the returned list."""
        result = {}

        def start():
            try:
                result["r"] = self.post("/hub/api/users/%s/server" % user, timeout=timeout)
            except Exception as e:  # noqa: BLE001 - reported below
                result["r"] = e

        t = threading.Thread(target=start, daemon=True)
        t.start()
        events = None
        deadline = time.monotonic() + timeout
        try:
            while events is None and time.monotonic() < deadline:
                status, events = self.event_stream("/hub/api/users/%s/server/progress" % user,
                                                   timeout=deadline - time.monotonic())
                if status == 400:  # "not starting" yet: the POST has not reached the hub
                    events = None
                    time.sleep(0.05)
                    continue
                assert status == 200, "progress stream: %d" % status
        finally:
            t.join(max(0.1, deadline - time.monotonic()))
        r = result.get("r")
        assert not isinstance(r, Exception) and r is not None, "spawn POST: %r" % (r,)
        assert r.status_code in (201, 202), "spawn %s: %d %s" % (user, r.status_code,
                                                               r.text[:300])
        assert events, "no progress stream within %.0fs" % timeout
        return events

    def event_stream(self, path, timeout=60.0):
        """GET `path` as text/event-stream over its own http.client connection (carrying the
        jar's cookies), reading each piece as it arrives. Returns (status, events) where events
        is a list of (arrival time, parsed data) with an `end` attribute (time the stream
        ended); events is None for a non-200 status."""
        import http.client as hc
        import urllib.parse
        u = urllib.parse.urlsplit(self.base)
        if u.scheme == "https":
            c = hc.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                   context=ssl.create_default_context(cafile=self.ca))
        else:
            c = hc.HTTPConnection(u.hostname, u.port, timeout=timeout)
        try:
            c.request("GET", path, headers={"Cookie": self.cookie_header(path),
                                            "Referer": self.base + "/hub/",
                                            "Accept": "text/event-stream",
                                            "Accept-Encoding": "identity"})
            r = c.getresponse()
            if r.status != 200:
                r.read()
                return r.status, None
            assert r.getheader("Content-Type", "").startswith("text/event-stream"), \
                r.getheaders()
            events = _Events()
            buf = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                piece = r.read1(65536)
                now = time.monotonic()
                if not piece:
                    break
                buf += piece
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    for line in block.split(b"\n"):
                        if line.startswith(b"data:"):
                            events.append((now, json.loads(line[5:].strip())))
            events.end = time.monotonic()
            return 200, events
        finally:
            c.close()

    def open_ui(self, user):
        """GET /user/<user>/tree through the OAuth dance with the hub: sets the single-user
        server's cookie and notebook's _xsrf cookie, as opening the page in a browser does."""
        r = self.request("GET", "/user/%s/tree" % user, allow_redirects=True, api=False)
        assert r.status_code == 200 and r.url.endswith("/user/%s/tree" % user), \
            "open /user/%s/tree: %d %s" % (user, r.status_code, r.url)
        assert self.cookie("_xsrf"), "no _xsrf cookie from the notebook page"
        return r

    def stop_server(self, user, timeout=30.0):
        r = self.delete("/hub/api/users/%s/server" % user)
        assert r.status_code in (202, 204, 400), "stop %s: %d %s" % (user, r.status_code,
                                                                   r.text[:300])
        poll(lambda: not self.user_model(user).get("servers"), timeout, 0.2,
             "%s's server to stop" % user)

    def new_kernel(self, user):
        r = self.post("/user/%s/api/kernels" % user, json={"name": "python3"})
        assert r.status_code == 201, "new kernel: %d %s" % (r.status_code, r.text[:300])
        return r.json()["id"]

    def new_terminal(self, user):
        r = self.post("/user/%s/api/terminals" % user)
        assert r.status_code == 200, "new terminal: %d %s" % (r.status_code, r.text[:300])
        return r.json()["name"]

    def websocket(self, path, timeout=None):
        import websocket
        ws_url = ("wss" if self.base.startswith("https") else "ws") + self.base[
            self.base.index("://"):] + path
        opts = {"cookie": self.cookie_header(path.split("?")[0]), "origin": self.base,
                "timeout": timeout or self.timeout}
        if self.base.startswith("https"):
            opts["sslopt"] = {"ca_certs": self.ca} if self.ca else {}
        return websocket.create_connection(ws_url, **opts)

    def kernel(self, user, kernel_id):
        import uuid
        return KernelChannel(self.websocket("/user/%s/api/kernels/%s/channels?session_id=%s"
                                            % (user, kernel_id, uuid.uuid4().hex)), user)

    def terminal(self, user, name):
        return TerminalChannel(self.websocket("/user/%s/terminals/websocket/%s" % (user, name)))


class _Events(list):
    end = None


class KernelChannel:
    """A kernel's websocket (notebook 6 multiplexes the channels over one socket, each message
    naming its channel): execute() sends an execute_request on the shell channel and returns
    the text/plain of its execute_result."""

    def __init__(self, ws, user):
        import uuid
        self.ws, self.user, self.session = ws, user, uuid.uuid4().hex

    def execute(self, code, timeout=30.0):
        import uuid
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.user, "session": self.session,
                       "msg_type": "execute_request", "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            m = json.loads(self.ws.recv())
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            seen.append(m["msg_type"])
            if m["msg_type"] == "execute_result":
                return m["content"]["data"]["text/plain"]
            if m["msg_type"] == "error":
                raise AssertionError("kernel error: %r" % m["content"])
        raise TimeoutError("no execute_result for %r within %.0fs (saw %r)" % (code, timeout,
                                                                              seen))

    def close(self):
        self.ws.close()


class TerminalChannel:
    """A terminado websocket: ["stdin", text] in, ["stdout", text] out."""

    def __init__(self, ws):
        self.ws = ws
        self.out = ""

    def run(self, line):
        self.ws.send(json.dumps(["stdin", line + "\r"]))

    def wait_for(self, needle, timeout=15.0):
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("terminal never printed %r; got %r" % (needle,
                                                                          self.out[-500:]))
            self.ws.settimeout(left)
            m = json.loads(self.ws.recv())
            if m[0] == "stdout":
                self.out += m[1]
        return self.out

    def close(self):
        self.ws.close()
