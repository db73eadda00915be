"""The local demo behind scripts/demo: a real pool of two instances (sshd + JupyterHub on
127.0.0.2 and 127.0.0.3) and poolgate in front of it, in the foreground, until Ctrl-C.

    /usr/bin/python3 tests/integration/demo.py [--bin PATH] [--admin 127.0.0.1:9090]
        [--https 127.0.0.1:8443] [--http 127.0.0.1:8080] [--dir .demo]

Browsers reach JupyterHub through poolgate at https://127.0.0.1:8443/ (a self-signed certificate
that poolgate makes in its state_dir on first start); http://127.0.0.1:8080/ redirects there.
Ports differ from the integration tests' (sshd 2122, JupyterHub 8100, hub 8181, proxy API 8101)
so the demo and the test suite can run at the same time. Everything started here is stopped on
Ctrl-C (SIGINT), SIGTERM or any error.
"""

import argparse
import json
import os
import pwd
import secrets
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pool as P  # noqa: E402

DEMO_SPECS = [
    dict(id="demo-1", ip="127.0.0.2", ssh_port=2122, http_port=8100, hub_port=8181, api_port=8101,
         labels={"zone": "a"}),
    dict(id="demo-2", ip="127.0.0.3", ssh_port=2122, http_port=8100, hub_port=8181, api_port=8101,
         labels={"zone": "b"}),
]


class Stop(Exception):
    pass


def on_signal(signum, frame):
    raise Stop(signal.Signals(signum).name)


def say(msg):
    print("demo: " + msg, flush=True)


def setup_ssh(d, pool, user):
    """The SSH side of the demo: a user with a key, the pool user CA the demo sshd trust, and
    the instances' host keys for poolgate. Returns (the `ssh` config object, the key's path)."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", user], check=True, timeout=30)
        # Not locked ("!"), or sshd without PAM refuses it whatever the key.
        subprocess.run(["usermod", "-p", "*", user], check=True, timeout=30)
    key = os.path.join(d, "id_" + user)
    ca = os.path.join(d, "pool_user_ca")
    for path, comment in ((key, user + "@poolgate-demo"), (ca, "poolgate demo user CA")):
        if not os.path.exists(path):
            subprocess.run([P.SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment,
                            "-f", path], check=True, timeout=30)
    homes = os.path.join(d, "homes")
    os.makedirs(os.path.join(homes, user), exist_ok=True)
    with open(key + ".pub") as f, open(os.path.join(homes, user, "authorized_keys"), "w") as out:
        out.write(f.read())
    with open(ca + ".pub") as f:
        ca_line = f.read()
    kh = os.path.join(d, "instances_known_hosts")
    with open(kh, "w") as f:
        for inst in pool:
            inst.sshd.trust_user_ca(ca_line)
            f.write(inst.sshd.host_key_line() + "\n")
    return ({"front_auth": {"authorized_keys": os.path.join(homes, "%u", "authorized_keys")},
             "upstream_auth": {"mode": "certificate", "ca_key": ca},
             "known_hosts": kh}, key)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=P.poolgate_bin(), help="poolgate binary")
    ap.add_argument("--admin", default="127.0.0.1:9090", help="admin listen address")
    ap.add_argument("--https", default="127.0.0.1:8443", help="https listen address (browsers)")
    ap.add_argument("--http", default="127.0.0.1:8080",
                    help="plain http listen address (redirects to https)")
    ap.add_argument("--ssh", default="127.0.0.1:2222", help="ssh listen address (users' ssh)")
    ap.add_argument("--ssh-user", default="pgdemo",
                    help="the demo's ssh user (created with useradd if missing)")
    ap.add_argument("--dir", default=os.path.join(P.REPO, ".demo"), help="demo state directory")
    args = ap.parse_args()

    if not os.access(args.bin, os.X_OK):
        say("poolgate binary not found at %s (build: meson setup build && ninja -C build)"
            % args.bin)
        return 1
    missing = P.missing_peers()
    if missing:
        say("cannot run: " + "; ".join("%s: %s" % m for m in missing))
        return 1
    busy = ["%s:%d" % (s["ip"], port) for s in DEMO_SPECS
            for port in (s["ssh_port"], s["http_port"], s["hub_port"], s["api_port"])
            if P.port_open(s["ip"], port, 0.3)]
    admin_host, admin_port = args.admin.rsplit(":", 1)
    for listen in (args.admin, args.https, args.http, args.ssh):
        host, port = listen.rsplit(":", 1)
        if P.port_open(host, int(port), 0.3):
            busy.append(listen)
    if busy:
        say("ports already in use: %s (another demo still running? `ss -ltnp`)" % ", ".join(busy))
        return 1

    d = os.path.abspath(args.dir)
    os.makedirs(os.path.join(d, "state"), exist_ok=True)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    pool = P.Pool(os.path.join(d, "pool"), DEMO_SPECS)
    gate = None
    rc = 0
    try:
        say("starting sshd and JupyterHub on 127.0.0.2 and 127.0.0.3 (logs in %s/pool)" % d)
        pool.start()
        ssh_cfg, ssh_key = setup_ssh(d, pool, args.ssh_user)
        cfg_path = os.path.join(d, "poolgate.json")
        disc_path = os.path.join(d, "instances.json")
        if not os.path.exists(disc_path):
            with open(disc_path, "w") as f:
                json.dump({"instances": []}, f, indent=2)
        # The admin API's token: made once, readable by root only (poolgate refuses it otherwise).
        token_path = os.path.join(d, "admin.token")
        if not os.path.exists(token_path):
            fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        cfg = {
            # No tls.certificates: poolgate makes a self-signed certificate in state_dir/tls
            # on first start and serves it from then on.
            "listen": {"admin": [args.admin], "https": [args.https], "http": [args.http],
                       "ssh": [args.ssh]},
            "ssh": ssh_cfg,
            "state_dir": os.path.join(d, "state"),
            "log": {"level": "info", "format": "text"},
            "instances": [inst.config() for inst in pool],
            "discovery": {"file": disc_path, "poll_ms": 1000},
            # poolgate's defaults, spelled out: a dead instance shows within about 6 s.
            "health": {"interval_ms": 2000, "timeout_ms": 1000, "rise": 2, "fall": 3,
                       "jitter_pct": 10, "checks": ["tcp", "ssh", "http"],
                       "http_path": "/hub/health",
                       # The load probe logs in as the demo user with a pool-CA certificate,
                       # which the demo instances trust (docs/placement.md).
                       "load": {"enabled": True, "user": args.ssh_user, "auth": "certificate",
                                "interval_ms": 5000, "timeout_ms": 3000}},
            "admin": {"token_file": token_path},
        }
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
        r = subprocess.run([args.bin, "--check-config", cfg_path], capture_output=True,
                           text=True, timeout=20)
        if r.returncode != 0:
            say("poolgate rejected the demo config %s: %s" % (cfg_path, r.stderr.strip()))
            return 1

        # Its own session: Ctrl-C reaches only this script, which stops poolgate with SIGTERM
        # and then the pool, in that order. Its log goes to this terminal.
        gate = subprocess.Popen([args.bin, "-c", cfg_path], stdin=subprocess.DEVNULL,
                                start_new_session=True)
        P.poll(lambda: gate.poll() is None and
               P.http_get(admin_host, int(admin_port), "/healthz", 1.0)[0] == 200
               or gate.poll() is not None, 15, 0.1, "poolgate /healthz")
        if gate.poll() is not None:
            say("poolgate exited with %d at startup" % gate.returncode)
            return 1
        base = "http://%s" % args.admin
        https_host, https_port = args.https.rsplit(":", 1)
        # The certificate may still be in the making (key generation off the loop): wait for
        # the https listener before telling anyone to open it.
        P.poll(lambda: P.port_open(https_host, int(https_port), 0.3) or gate.poll() is not None,
               15, 0.1, "poolgate https listener")
        print("""
==============================================================================
 poolgate demo is running (pid %d). Ctrl-C stops everything.

 open https://%s/ (self-signed certificate)
   log in with any user name and password (JupyterHub's dummy authenticator)
   http://%s/ redirects there; your user stays on one instance (see /status)

   curl %s/status      instances, states, checks (JSON)
   curl %s/readyz      200 when an instance is up
   curl %s/metrics     Prometheus metrics
   curl %s/healthz     200 while poolgate runs
   %s/                 the dashboard (open it in a browser)

 build/ctl/poolgatectl status                       the pool as a table
 build/ctl/poolgatectl --token-file %s drain demo-1
   new users go to demo-2; undrain, maint, pins, move USER ID, unpin USER, reload

 ssh -i %s -p %s %s@%s 'hostname -I; echo $SSH_CONNECTION'
   lands on the same instance every time (scp, sftp, -L, -A work too)

 Instances (real sshd + JupyterHub):
%s
 Certificate: %s/state/tls/selfsigned.crt
 Config:     %s   (edit, then: kill -HUP %d)
 Discovery:  %s   (add instances here at runtime)
 Try:        kill %d   (demo-1's sshd, or: pkill -f 'sshd.*127.0.0.2')
             and watch demo-1 go down on /status within about 6 s
==============================================================================
""" % (gate.pid, args.https, args.http, base, base, base, base, base, token_path,
            ssh_key, args.ssh.rsplit(":", 1)[1], args.ssh_user, args.ssh.rsplit(":", 1)[0],
            "\n".join("   %s  %s  ssh -p %d, JupyterHub http://%s:%d/"
                      % (i.id, i.ip, i.ssh_port, i.ip, i.http_port) for i in pool),
            d, cfg_path, gate.pid, disc_path, pool[0].sshd.proc.pid), flush=True)
        # Foreground until a signal or poolgate's own exit. The pool is not restarted.
        while gate.poll() is None:
            time.sleep(0.2)
        say("poolgate exited with %d" % gate.returncode)
        rc = gate.returncode or 0
    except Stop as e:
        say("%s: stopping" % e)
    except (P.PeerError, TimeoutError) as e:
        say("failed: %s" % e)
        rc = 1
    finally:
        # A second Ctrl-C must not interrupt the cleanup (it is bounded: about 10 s at worst).
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if gate is not None and gate.poll() is None:
            gate.send_signal(signal.SIGTERM)
            try:
                code = gate.wait(timeout=10)
                say("poolgate stopped (exit %d)" % code)
                if code != 0:
                    rc = code
            except subprocess.TimeoutExpired:
                say("poolgate ignored SIGTERM for 10 s; killing it")
                P.kill_tree(gate)
                rc = 1
        pool.stop()
        say("sshd and JupyterHub stopped")
    return rc


if __name__ == "__main__":
    sys.exit(main())
