#!/usr/bin/env python3
"""An independent check of tests/data/secure/, written from docs/secure-wire.md alone
(no kcpx code): Python's hmac/hashlib and the `cryptography` package (X25519,
AES-256-GCM, ChaCha20-Poly1305; XChaCha20 through HChaCha20 below) recompute every
value of the handshakes, tokens, key schedule and sealed datagrams from the recorded
seeds and compare. Run by hand: `python3 tests/kat/secure_check.py` (prints what it
checked; exits 1 on a mismatch). Needs `pip install cryptography`."""

import hashlib
import hmac
import ipaddress
import os
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "secure")
PSK = b"kcpx1 test vector pre-shared key"
TOKEN_KEY = bytes([0x7B]) * 32
checked = 0


def records(name):
    text = open(os.path.join(DATA, name)).read()
    out = []
    for block in text.split("\n\n"):
        lines = [l for l in block.strip().split("\n") if l and not l.startswith("#")]
        if lines:
            out.append(dict(l.split(": ", 1) for l in lines))
    return out


def same(what, got, want):
    global checked
    if got != want:
        print(f"MISMATCH {what}:\n  got  {got.hex() if isinstance(got, bytes) else got}\n  want {want.hex() if isinstance(want, bytes) else want}")
        sys.exit(1)
    checked += 1


def H(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def extract(salt, ikm):
    return H(salt, ikm)


def expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = H(prk, t, info, bytes([i]))
        out += t
        i += 1
    return out[:n]


class Seeded:
    """SeededEntropy (spec section 13)."""

    def __init__(self, seed):
        self.s = struct.pack(">Q", seed) + bytes(24)
        self.i = 0
        self.buf = b""

    def take(self, n):
        while len(self.buf) < n:
            self.buf += hashlib.sha256(b"kcpx1 seeded" + self.s + struct.pack(">Q", self.i)).digest()
            self.i += 1
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def x25519_public(scalar):
    k = X25519PrivateKey.from_private_bytes(scalar)
    return k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def x25519(scalar, public):
    return X25519PrivateKey.from_private_bytes(scalar).exchange(X25519PublicKey.from_public_bytes(public))


def addr19(text):
    host, port = text.rsplit(":", 1)
    ip = ipaddress.ip_address(host.strip("[]"))
    body = bytes([4]) + ip.packed + bytes(12) if ip.version == 4 else bytes([6]) + ip.packed
    return body + struct.pack(">H", int(port))


def hchacha20(key, nonce16):
    def rotl(v, c):
        return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))

    def qr(s, a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)

    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        qr(s, 0, 4, 8, 12); qr(s, 1, 5, 9, 13); qr(s, 2, 6, 10, 14); qr(s, 3, 7, 11, 15)
        qr(s, 0, 5, 10, 15); qr(s, 1, 6, 11, 12); qr(s, 2, 7, 8, 13); qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_seal(key, nonce24, aad, plain):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(bytes(4) + nonce24[16:], plain, aad)


def make_token(seed, client_id, now, valid_s, servers):
    """The blob of spec section 6, from the backend's seeded draws."""
    e = Seeded(seed)
    c2s, s2c, nonce = e.take(32), e.take(32), e.take(24)
    expires = now + valid_s
    public = bytes([1]) + struct.pack(">Q", expires) + nonce
    addrs = b"".join(addr19(a) for a in servers).ljust(8 * 19, b"\0")
    private = struct.pack(">Q", client_id) + bytes([len(servers)]) + addrs + c2s + s2c
    sealed = public + xchacha_seal(TOKEN_KEY, nonce, b"kcpx1 token" + public, private)
    blob = bytes([1]) + struct.pack(">QQ", client_id, expires) + c2s + s2c + struct.pack(">H", len(sealed)) + sealed
    return blob, c2s, s2c, sealed


def aead(alg, key):
    return AESGCM(key) if alg == 1 else ChaCha20Poly1305(key)


def gen_keys(secret):
    return expand(secret, b"kcpx1 key", 32), expand(secret, b"kcpx1 iv", 12)


def open_datagram(alg, secret, d, pn):
    key, iv = gen_keys(secret)
    nonce = iv[:4] + bytes(a ^ b for a, b in zip(iv[4:], struct.pack(">Q", pn)))
    return aead(alg, key).decrypt(nonce, d[13:], d[:13])


ALG = {"aes-256-gcm": 1, "chacha20-poly1305": 2}

for r in records("keys.txt"):
    cs, th, dh = (bytes.fromhex(r[k]) for k in ("cs", "th", "dh"))
    prk = extract(th, cs + dh)
    c2s = expand(prk, b"kcpx1 c2s", 32)
    same("secret_c2s_0", c2s.hex(), r["secret_c2s_0"])
    same("secret_s2c_0", expand(prk, b"kcpx1 s2c", 32).hex(), r["secret_s2c_0"])
    same("confirm", H(expand(prk, b"kcpx1 confirm", 32), th).hex(), r["confirm"])
    k0, iv0 = gen_keys(c2s)
    same("key/iv 0", (k0 + iv0).hex(), r["key_c2s_0"] + r["iv_c2s_0"])
    same("secret 1", expand(c2s, b"kcpx1 ku", 32).hex(), r["secret_c2s_1"])
    pc = extract(b"kcpx1 credential", cs)
    same("hello mac", H(expand(pc, b"kcpx1 hello", 32), th)[:16].hex(), r["hello_mac_of_th"])
    same("challenge mac", H(expand(pc, b"kcpx1 challenge", 32), th)[:16].hex(), r["challenge_mac_of_th"])

last = {}
for r in records("packets.txt"):
    alg, secret, pn = ALG[r["aead"]], bytes.fromhex(r["secret"]), int(r["pn"])
    d = bytes.fromhex(r["datagram"])
    g = pn >> 22
    for _ in range(g):
        secret = expand(secret, b"kcpx1 ku", 32)
    same("short header", d[:13], bytes([0x40 | (g & 1)]) + bytes.fromhex(r["cid"]) + struct.pack(">I", pn & 0xFFFFFFFF))
    same("frames", open_datagram(alg, secret, d, pn).hex(), r["frames"])

for r in records("token.txt"):
    blob, *_ = make_token(int(r["seed"]), int(r["client_id"]), int(r["now_unix_s"]), int(r["valid_s"]), r["servers"].split(" "))
    same("token blob", blob.hex(), r["blob"])

for r in records("handshake.txt"):
    kind, alg = r["credential"], ALG[r["aead"]]
    now_ms, now_s = int(r["now_ms"]), int(r["now_unix_s"])
    ce = Seeded(int(r["client_seed"]))
    if kind == "psk":
        cs, token = PSK, b""
    else:
        _, c2s_k, s2c_k, token = make_token(int(r["client_seed"]) + 500, 99, now_s, 60, [r["server_addr"]])
        cs = c2s_k + s2c_k
    cr, cscalar = ce.take(32), ce.take(32)
    pc = extract(b"kcpx1 credential", cs)
    k_hello, k_challenge = expand(pc, b"kcpx1 hello", 32), expand(pc, b"kcpx1 challenge", 32)
    body = cr + x25519_public(cscalar) + bytes([0b11, alg, 1 if kind == "psk" else 2]) + struct.pack(">H", len(token)) + token
    body = body.ljust(1168 - 6, b"\0")
    hello = b"\xc0kcpx\x01" + body + bytes(16)
    hello += H(k_hello, hello)[:16]
    same("client hello", hello.hex(), r["client_hello"])

    se = Seeded(int(r["server_seed"]))
    cookie_secret = se.take(32)
    w = now_ms // 10_000
    cookie = bytes([w & 0xFF]) + H(cookie_secret, b"kcpx1 cookie", struct.pack(">Q", w), addr19(r["client_addr"]), cr, x25519_public(cscalar))[:15]
    challenge = b"\xc1kcpx\x01" + cr + cookie
    challenge += H(k_challenge, challenge)[:16]
    same("challenge", challenge.hex(), r["challenge"])

    echo = b"\xc2kcpx\x01" + body + cookie
    echo += H(k_hello, echo)[:16]
    same("client echo", echo.hex(), r["client_echo"])

    sscalar, sr, cid = se.take(32), se.take(32), se.take(8)
    sh = b"\xc3kcpx\x01" + cid + sr + x25519_public(sscalar) + bytes([alg])
    th = hashlib.sha256(b"kcpx1 transcript" + echo[6:1168] + sh[6:79]).digest()
    dh = x25519(sscalar, x25519_public(cscalar))
    same("dh both ways", dh, x25519(cscalar, x25519_public(sscalar)))
    prk = extract(th, cs + dh)
    sh += H(expand(prk, b"kcpx1 confirm", 32), th)
    same("server hello", sh.hex(), r["server_hello"])
    same("cid", cid.hex(), r["cid"])
    up = open_datagram(alg, expand(prk, b"kcpx1 c2s", 32), bytes.fromhex(r["client_datagram"]), 0)
    same("client datagram", up, b"\x01first client datagram")
    down = open_datagram(alg, expand(prk, b"kcpx1 s2c", 32), bytes.fromhex(r["server_datagram"]), 0)
    same("server datagram", down, b"\x02\x00\x00\x00\x01")

print(f"secure vectors: {checked} values recomputed from docs/secure-wire.md, all equal")
