"""poolgate's TLS front door seen by openssl s_client and curl: protocol versions (TLS 1.1
refused), ALPN, SNI choosing among certificates, the self-signed default in state_dir, and the
plain-http listener's redirect to https."""

import os
import stat
import subprocess

import pool as P
from conftest import SLACK

UNREACHABLE = [{"id": "nowhere", "address": "127.0.0.9", "ssh_port": 2022, "http_port": 8000}]


def test_tls_versions_and_alpn(make_https_poolgate, certs, tmp_path):
    # Control: this openssl client does speak TLS 1.1 when a server accepts it (Debian's
    # default security level would refuse on the client side, and the test would pass for the
    # wrong reason).
    port = P.free_port()
    srv = subprocess.Popen([P.OPENSSL, "s_server", "-accept", "127.0.0.1:%d" % port,
                            "-cert", certs.pool[0], "-key", certs.pool[1], "-tls1_1",
                            "-cipher", "DEFAULT@SECLEVEL=0", "-www"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        P.poll(lambda: P.port_open("127.0.0.1", port), 5, 0.05, "openssl s_server")
        control = P.s_client(port, args=["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        assert control.handshake_ok and control.protocol == "TLSv1.1", control
    finally:
        P.kill_tree(srv)

    g = make_https_poolgate(UNREACHABLE)
    old = P.s_client(g.https_port, args=["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
    assert not old.handshake_ok, "TLS 1.1 accepted: %r" % old

    for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        sc = P.s_client(g.https_port, servername="pool.test", ca=certs.ca,
                        args=[flag, "-alpn", "http/1.1", "-verify_return_error"])
        assert sc.handshake_ok and sc.protocol == version, sc
        assert sc.alpn == "http/1.1", sc
        assert "Verify return code: 0 (ok)" in sc.output, sc
    assert g.alive()


def test_sni_picks_the_certificate(make_https_poolgate, certs):
    g = make_https_poolgate(UNREACHABLE)
    pool_fp, other_fp = P.cert_fingerprint(certs.pool[0]), P.cert_fingerprint(certs.other[0])
    for servername, want in (("other.test", other_fp), ("pool.test", pool_fp),
                             (None, pool_fp),               # no SNI: the first, the default
                             ("unknown.test", pool_fp)):    # no match: the default too
        sc = P.s_client(g.https_port, servername=servername, ca=certs.ca)
        assert sc.handshake_ok, (servername, sc)
        assert sc.fingerprint == want, "SNI %s got %s" % (servername, sc.cert)
    # The order decides the default.
    g2 = make_https_poolgate(UNREACHABLE, certificates=[certs.other, certs.pool])
    assert P.s_client(g2.https_port).fingerprint == other_fp
    assert P.s_client(g2.https_port, servername="pool.test").fingerprint == pool_fp


def test_self_signed_certificate_made_once(make_https_poolgate, certs):
    g = make_https_poolgate(UNREACHABLE, certificates=None)
    crt = os.path.join(g.state_dir, "tls", "selfsigned.crt")
    key = os.path.join(g.state_dir, "tls", "selfsigned.key")
    P.poll(lambda: P.s_client(g.https_port).handshake_ok, 10, 0.1, "a TLS handshake")
    assert os.path.isfile(crt) and os.path.isfile(key), os.listdir(g.state_dir)
    mode = stat.S_IMODE(os.stat(key).st_mode)
    assert mode & 0o077 == 0, "private key %s has mode %o" % (key, mode)
    fp = P.cert_fingerprint(crt)
    assert P.s_client(g.https_port).fingerprint == fp
    assert "self-signed" in g.log().lower() or "selfsigned" in g.log().lower(), g.log_tail()

    # A restart on the same state_dir serves the same certificate: it is made once.
    g.stop()
    g.start()
    P.poll(lambda: P.s_client(g.https_port).handshake_ok, 10, 0.1, "a TLS handshake")
    assert P.cert_fingerprint(crt) == fp
    assert P.s_client(g.https_port).fingerprint == fp


def curl(*args, timeout=10):
    """curl's CompletedProcess, stdout as bytes (-i output keeps its CRLFs)."""
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout)] + list(args),
                          capture_output=True, timeout=timeout + 5, stdin=subprocess.DEVNULL)


def test_http_redirects_to_https(pool, make_https_poolgate, certs):
    g = make_https_poolgate([i.config() for i in pool])
    r = curl("-i", "http://127.0.0.1:%d/hub/login?x=1" % g.http_port)
    assert r.returncode == 0, r.stderr
    status, headers, _ = P.parse_head(r.stdout)
    assert status == 301, r.stdout
    assert headers["location"] == "https://127.0.0.1:%d/hub/login?x=1" % g.https_port, r.stdout

    # The Host the browser used, without its port, and the https port.
    r = curl("-i", "-H", "Host: pool.test:%d" % g.http_port,
             "http://127.0.0.1:%d/user/alice/tree?a=b&c=%%2F" % g.http_port)
    status, headers, _ = P.parse_head(r.stdout)
    assert status == 301, r.stdout
    assert headers["location"] == "https://pool.test:%d/user/alice/tree?a=b&c=%%2F" % (
        g.https_port), r.stdout

    # Followed by curl to JupyterHub's login page, verified against the test CA.
    g.wait_for(P.all_up([i.id for i in pool]),
               P.first_round_budget(g.health, SLACK) + P.up_budget(g.health, SLACK))
    r = curl("-L", "--cacert", certs.ca, "-o", "/dev/null", "-w", "%{http_code} %{url_effective}",
             "http://127.0.0.1:%d/hub/login" % g.http_port)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "200 https://127.0.0.1:%d/hub/login" % g.https_port, r.stdout


def test_sighup_with_a_broken_certificate_keeps_the_old_one(make_https_poolgate, certs):
    cert, key = certs.authority.issue("broken", dns=["pool.test"], ips=["127.0.0.1"])
    old_fp = P.cert_fingerprint(cert)
    g = make_https_poolgate(UNREACHABLE, certificates=[(cert, key)])
    assert P.s_client(g.https_port).fingerprint == old_fp

    # A certificate whose key is not the configured key (the other half of the pair missing,
    # as when an operator copies one file of two), then a truncated certificate.
    other_cert, _ = certs.authority.issue("broken-other", dns=["pool.test"])
    with open(other_cert) as f:
        mismatched = f.read()
    for bad in (mismatched, mismatched[:len(mismatched) // 2]):
        P._atomic_write(cert, bad)
        mark = g.log_mark()
        g.reload()
        g.wait_log(lambda line: " error " in line and "/broken." in line, 5, mark,
                   "an error line naming the bad file")
        sc = P.s_client(g.https_port, servername="pool.test", ca=certs.ca)
        assert sc.handshake_ok and sc.fingerprint == old_fp, sc
        assert g.alive()

    # Repaired: the next SIGHUP serves the new pair.
    cert, key = certs.authority.issue("broken", dns=["pool.test"], ips=["127.0.0.1"])
    g.reload()
    new_fp = P.cert_fingerprint(cert)
    P.poll(lambda: P.s_client(g.https_port).fingerprint == new_fp, 5, 0.2,
           "the repaired certificate after SIGHUP")
