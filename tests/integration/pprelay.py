"""A PROXY protocol sender, as an L4 balancer in front of poolgate would be: it connects to
poolgate from a chosen source address, writes a PROXY header (v1 or v2, or a deliberately
broken one) and relays bytes both ways.

Two uses:
- as ssh's ProxyCommand (stdin/stdout are the ssh client's connection):
      pprelay.py --connect 127.0.0.1:2222 --bind 127.0.0.77 --header v2 --client 203.0.113.9:4242
- in-process for curl: Relay(listen on a local port, each accepted connection relayed with a
  header), so real curl goes through it.
Header builders (v1(), v2(), crc32c()) follow HAProxy's proxy-protocol.txt.
"""

import argparse
import ipaddress
import os
import select
import socket
import struct
import sys
import threading

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def split_hostport(s):
    host, port = s.rsplit(":", 1)
    return host.strip("[]"), int(port)


def same_family(client_host, server_host):
    """The server address in the client's family (an IPv4 one mapped into IPv6)."""
    if ":" in client_host and ":" not in server_host:
        return "::ffff:" + server_host
    return server_host


def v1(client, server):
    (ch, cp), (sh, sp) = split_hostport(client), split_hostport(server)
    sh = same_family(ch, sh)
    fam = "TCP6" if ":" in ch else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, ch, sh, cp, sp)).encode()


def tlv(t, value):
    return bytes([t]) + struct.pack(">H", len(value)) + value


def v2(client=None, server=None, local=False, tlvs=b"", crc=False):
    """A v2 header: PROXY with TCP over IPv4/IPv6 addresses, or LOCAL (no addresses)."""
    if local:
        block, cmd, fam = b"", 0x20, 0x00
    else:
        (ch, cp), (sh, sp) = split_hostport(client), split_hostport(server)
        c, s = ipaddress.ip_address(ch), ipaddress.ip_address(same_family(ch, sh))
        fam = 0x21 if c.version == 6 else 0x11
        block = c.packed + s.packed + struct.pack(">HH", cp, sp)
        cmd = 0x21
    block += tlvs
    if crc:
        block += tlv(0x03, b"\0\0\0\0")
    hdr = SIG + bytes([cmd, fam]) + struct.pack(">H", len(block)) + block
    if crc:
        hdr = hdr[:-4] + struct.pack(">I", crc32c(hdr))
    return hdr


def header(kind, client, server):
    """kind: v1, v2 (with TLVs and a CRC32C), v2-local, v1-unknown, bad-v1, bad-v2, none."""
    return {
        "v1": lambda: v1(client, server),
        "v1-unknown": lambda: b"PROXY UNKNOWN\r\n",
        "v2": lambda: v2(client, server, tlvs=tlv(0x05, b"lb-conn-1") + tlv(0x04, b"\0\0"),
                         crc=True),
        "v2-local": lambda: v2(local=True),
        "bad-v1": lambda: b"PROXY TCP4 203.0.113.009 10.0.0.1 1 2\r\n",
        "bad-v2": lambda: v2(client, server, crc=True)[:-1] + b"\x00",
        "none": lambda: b"",
    }[kind]()


def connect(target, bind=None, timeout=10):
    host, port = split_hostport(target)
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if bind:
        s.bind((bind, 0))
    s.connect((host, port))
    s.settimeout(None)
    return s


def pump(a_in, a_out, sock, limit_s=600):
    """Relays fd a_in -> sock and sock -> fd a_out until both directions are done."""
    open_in, open_out = True, True
    while open_in or open_out:
        rl = ([a_in] if open_in else []) + ([sock] if open_out else [])
        r, _, _ = select.select(rl, [], [], limit_s)
        if not r:
            return
        if a_in in r:
            data = os.read(a_in, 65536)
            if data:
                sock.sendall(data)
            else:
                open_in = False
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        if sock in r:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if data:
                os.write(a_out, data)
            else:
                return


class Relay:
    """Listens on 127.0.0.1:<port>; each connection is relayed to target from `bind` with the
    header kind (for curl). close() stops it."""

    def __init__(self, target, bind, kind, client, server=None):
        self.target, self.bind, self.kind, self.client = target, bind, kind, client
        self.server = server or "%s:%d" % split_hostport(target)
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            up = connect(self.target, self.bind)
            up.sendall(header(self.kind, self.client, self.server))
            _relay_sockets(c, up)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.ls.close()


def _relay_sockets(a, b, limit_s=120):
    socks = [a, b]
    done = set()
    while len(done) < 2:
        r, _, _ = select.select([s for s in socks if s not in done], [], [], limit_s)
        if not r:
            break
        for s in r:
            other = b if s is a else a
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                other.sendall(data)
            else:
                done.add(s)
                try:
                    other.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
    a.close()
    b.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True)
    ap.add_argument("--bind")
    ap.add_argument("--header", default="v1")
    ap.add_argument("--client", default="203.0.113.9:4242")
    args = ap.parse_args()
    s = connect(args.connect, args.bind)
    s.sendall(header(args.header, args.client, args.connect))
    pump(sys.stdin.fileno(), sys.stdout.fileno(), s)


if __name__ == "__main__":
    main()
