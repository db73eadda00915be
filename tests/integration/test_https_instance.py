"""The http check against a real JupyterHub that serves https with a self-signed certificate (the
DSVM default): the explicit no-verify switch, verification against a CA file, verification that
must fail, and a plain-http check pointed at a TLS port."""

import os
import subprocess

import pytest

import pool as P
from conftest import SLACK

IP = "127.0.0.4"
PORTS = dict(http_port=8400, hub_port=8481, api_port=8401)
HEALTH = {"interval_ms": 500, "timeout_ms": 400, "rise": 2, "fall": 2, "jitter_pct": 0,
          "checks": ["http"]}


@pytest.fixture(scope="module")
def https_hub(peers, tmp_path_factory):
    d = tmp_path_factory.mktemp("https-hub")
    cert, key = str(d / "hub.crt"), str(d / "hub.key")
    # A self-signed certificate for the instance's address, as a DSVM makes for itself.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=dsvm-https", "-addext", "subjectAltName=IP:%s" % IP],
                   check=True, capture_output=True, timeout=30)
    hub = P.JupyterHub(IP, str(d / "hub"), ssl_cert=cert, ssl_key=key, **PORTS)
    hub.start()
    try:
        yield hub
    finally:
        hub.kill()


def entry(id, **kw):
    d = {"id": id, "address": IP, "ssh_port": 22, "http_port": PORTS["http_port"]}
    d.update(kw)
    return d


def test_https_instance_checks(https_hub, make_poolgate):
    g = make_poolgate([
        entry("noverify", http_tls=True, http_tls_verify=False),
        entry("cafile", http_tls=True, http_ca_file=https_hub.ssl_cert),
        entry("verify", http_tls=True),
        entry("plain", http_tls=False),
    ], health=HEALTH)
    s = g.wait_for(lambda s: all(i["state"] != "unknown" for i in s["instances"]), 5 + SLACK)
    by_id = {i["id"]: i for i in s["instances"]}

    for ok in ("noverify", "cafile"):
        i = by_id[ok]
        assert i["http_scheme"] == "https"
        assert i["state"] == "up", "%s: %r" % (ok, i)
        assert i["checks"]["http"]["ok"] is True and i["checks"]["http"]["status"] == 200

    # Verification against the system CAs must refuse a self-signed certificate, and say why.
    v = by_id["verify"]
    assert v["state"] == "down"
    err = v["checks"]["http"]["error"]
    assert "certificate verify failed" in err and "self-signed" in err, err

    # Plain HTTP to a TLS port is not a 2xx: the instance is down with a parse error.
    p = by_id["plain"]
    assert p["state"] == "down"
    assert p["checks"]["http"]["ok"] is False
    assert p["checks"]["http"]["error"], p


def test_https_instance_goes_down_and_up(https_hub, make_poolgate):
    g = make_poolgate([entry("noverify", http_tls=True, http_tls_verify=False)], health=HEALTH)
    g.wait_for(lambda s: g.instance("noverify", s)["state"] == "up", 5 + SLACK)
    https_hub.kill()
    try:
        s = g.wait_for(lambda s: g.instance("noverify", s)["state"] == "down", 3 + SLACK)
        assert g.instance("noverify", s)["checks"]["http"]["ok"] is False
    finally:
        https_hub.start()
    g.wait_for(lambda s: g.instance("noverify", s)["state"] == "up", 3 + SLACK)
