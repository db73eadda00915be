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
    """A real OpenSSH sshd on ip:port, root-run, with its own ed25519 host key in `workdir`."""

    def __init__(self, ip, port, workdir):
        self.ip, self.port, self.dir = ip, port, workdir
        os.makedirs(workdir, exist_ok=True)
        self.host_key = os.path.join(workdir, "ssh_host_ed25519_key")
        # The address in the file name puts it in sshd's command line, so an operator can
        # find one instance's sshd with `pkill -f 'sshd.*127.0.0.2'` (README, demo).
        self.config = os.path.join(workdir, "sshd_config-%s-%d" % (ip, port))
        self.log_path = os.path.join(workdir, "sshd.log")
        self.proc = None
        self.ident = None
        self.paused = False

    def _prepare(self):
        become_subreaper()
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        if not os.path.exists(self.host_key):
            subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C",
                            "poolgate-test-%s" % self.ip, "-f", self.host_key],
                           check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        with open(self.config, "w") as f:
            f.write("\n".join([
                "ListenAddress %s:%d" % ("[%s]" % self.ip if ":" in self.ip else self.ip,
                                         self.port),
                "HostKey %s" % self.host_key,
                "PidFile none",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "AuthorizedKeysFile %s" % os.path.join(self.dir, "authorized_keys"),
                "StrictModes no",
                "LogLevel VERBOSE",
                # Health probes open and drop connections all the time; keep preauth children short.
                "LoginGraceTime 15",
                "MaxStartups 200",
                "Subsystem sftp internal-sftp",
                "",
            ]))
        r = subprocess.run([SSHD, "-t", "-f", self.config], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise PeerError("sshd -t rejected %s: %s" % (self.config, r.stderr.strip()))

    def start(self, timeout=15.0):
        if self.running():
            return self
        self._prepare()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config],
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
                 binary=None, log_level="debug", extra=None):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.binary = binary or poolgate_bin()
        self.admin_host = "127.0.0.1"
        self.admin_port = admin_port or free_port(self.admin_host)
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
                       "https": [], "http": []},
            "state_dir": self.state_dir,
            "log": {"level": log_level, "format": "text"},
            "instances": list(instances),
            "health": self.health,
        }
        if discovery is not None:
            # discovery: list of instance dicts to write now, or True for an empty file.
            self.cfg["discovery"] = {"file": self.discovery_path, "poll_ms": 200}
            self.write_discovery([] if discovery is True else discovery)
        if extra:
            self.cfg.update(extra)
        self.proc = None
        self.exit_code = None

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
        self.write_config()
        self.log_file = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([self.binary, "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=self.log_file,
                                         stderr=self.log_file, start_new_session=True)
        finally:
            self.log_file.close()
        if wait:
            try:
                poll(self._healthy, timeout, 0.05, "poolgate /healthz on %s:%d"
                     % (self.admin_host, self.admin_port))
            except (TimeoutError, AssertionError) as e:
                raise AssertionError("%s\n--- poolgate log ---\n%s" % (e, self.log()))
        return self

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
