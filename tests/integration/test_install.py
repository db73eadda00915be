"""scripts/install into a temporary root (never the machine's own /etc), and the systemd units in
examples/ checked by systemd-analyze."""

import json
import os
import re
import shutil
import stat
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTALL = os.path.join(REPO, "scripts", "install")
ANALYZE = "/usr/bin/systemd-analyze"
UNITS = ("poolgate.service", "poolgate-root.service")


@pytest.fixture
def build_dir(poolgate_bin):
    """The build directory of the binary under test (scripts/install --build-dir)."""
    d = os.path.dirname(os.path.dirname(os.path.abspath(poolgate_bin)))
    if not os.access(os.path.join(d, "ctl", "poolgatectl"), os.X_OK):
        pytest.skip("no poolgatectl beside %s" % poolgate_bin)
    return d


def install(root, build_dir, *args):
    return subprocess.run([INSTALL, "--root", str(root), "--build-dir", build_dir] + list(args),
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def snapshot(root):
    """{relative path: (mode, uid, gid, size)} of everything under root."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size)
    return out


def test_dry_run_changes_nothing(tmp_path, build_dir):
    root = tmp_path / "root"
    r = install(root, build_dir, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert not root.exists(), "--dry-run created %s" % root
    out = r.stdout
    assert re.search(r"would run: useradd --system .* --prefix %s poolgate" % re.escape(str(root)),
                     out), out
    assert "would run: install -D -m 0755 %s/proxy/poolgate %s/usr/local/bin/poolgate" % (
        build_dir, root) in out, out
    assert "would write %s/etc/poolgate/poolgate.json" % root in out
    assert "/etc/systemd/system/poolgate.service" in out


def test_install_into_root_is_idempotent(tmp_path, build_dir, poolgate_bin):
    root = tmp_path / "root"
    r = install(root, build_dir, "--prefix", "/opt/pg")
    assert r.returncode == 0, r.stdout + r.stderr
    # The user, in the root's own account database.
    with open(root / "etc" / "passwd") as f:
        line = [l for l in f if l.startswith("poolgate:")]
    assert len(line) == 1, line
    _, _, uid, gid, _, home, shell = line[0].strip().split(":")
    uid, gid = int(uid), int(gid)
    assert (home, shell) == ("/var/lib/poolgate", "/usr/sbin/nologin")
    # Programs, state_dir, config skeleton, unit.
    for prog in ("poolgate", "poolgatectl"):
        st = os.stat(root / "opt" / "pg" / "bin" / prog)
        assert stat.S_IMODE(st.st_mode) == 0o755
    st = os.stat(root / "var" / "lib" / "poolgate")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o700)
    conf = root / "etc" / "poolgate" / "poolgate.json"
    st = os.stat(conf)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, gid, 0o640)
    with open(conf) as f:
        cfg = json.load(f)
    assert "user" not in cfg and cfg["state_dir"] == "/var/lib/poolgate"
    r2 = subprocess.run([poolgate_bin, "--check-config", str(conf)], capture_output=True,
                        text=True, timeout=10)
    assert r2.returncode == 0, r2.stderr
    with open(root / "etc" / "systemd" / "system" / "poolgate.service") as f:
        unit = f.read()
    assert "ExecStart=/opt/pg/bin/poolgate -c /etc/poolgate/poolgate.json" in unit
    assert "User=poolgate" in unit
    assert os.path.exists(root / "opt" / "pg" / "share" / "doc" / "poolgate" / "security.md")

    # A second run changes nothing, and an operator's config is never overwritten.
    with open(conf, "w") as f:
        f.write('{"instances": []}\n')
    before = snapshot(root)
    r = install(root, build_dir, "--prefix", "/opt/pg")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "exists: kept as it is" in r.stdout
    assert "user poolgate exists" in r.stdout
    assert " <- " not in r.stdout, r.stdout
    assert snapshot(root) == before
    with open(conf) as f:
        assert f.read() == '{"instances": []}\n'


def test_install_root_drop_and_no_systemd(tmp_path, build_dir, poolgate_bin):
    root = tmp_path / "root"
    r = install(root, build_dir, "--root-drop", "--no-systemd")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists(root / "etc" / "systemd")
    with open(root / "etc" / "poolgate" / "poolgate.json") as f:
        assert json.load(f)["user"] == "poolgate"
    r = install(tmp_path / "root2", build_dir, "--root-drop")
    with open(tmp_path / "root2" / "etc" / "systemd" / "system" / "poolgate.service") as f:
        unit = f.read()
    assert "User=" not in unit
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_CHOWN" in unit


@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies(tmp_path, poolgate_bin, name):
    """systemd-analyze verify on the unit (its ExecStart pointed at the built binary: verify
    wants an executable there), and the offline security score docs/security.md quotes."""
    if not os.access(ANALYZE, os.X_OK):
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    with open(os.path.join(REPO, "examples", name)) as f:
        text = f.read().replace("/usr/local/bin/poolgate", os.path.abspath(poolgate_bin))
    unit = tmp_path / name
    unit.write_text(text)
    r = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    r = subprocess.run([ANALYZE, "security", "--offline=yes", str(unit)], capture_output=True,
                       text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    limit = {"poolgate.service": 2.0, "poolgate-root.service": 3.0}[name]
    assert float(m.group(1)) <= limit, r.stdout
