#!/usr/bin/env python3
"""kcpx sessions from Python with ctypes: a listener and a dialer over real
UDP on 127.0.0.1, with FEC 10/3 and AES-128 (kcp-go's wire format, so either
side could as well be a kcp-go program). The dialer sends 1 MiB in stream
mode; the listener echoes it; the dialer checks every byte.

    python3 kcpx_sessions.py [path/to/libkcpx.so]

The library is the argument, else $KCPX_LIB, else libkcpx.so.1 from the
system library path. Exits 0 when the echo came back intact. Only the
standard library is needed.
"""
import ctypes
import os
import random
import sys

C = ctypes
KCPX_ERR_AGAIN = -3
KCPX_EVENT_ACCEPT, KCPX_EVENT_READABLE, KCPX_EVENT_WRITABLE, KCPX_EVENT_CLOSED = 1, 2, 3, 4


class Event(C.Structure):
    _fields_ = [("kind", C.c_int), ("session", C.c_void_p), ("reason", C.c_int)]


def load(path):
    lib = C.CDLL(path)
    proto = {
        "kcpx_config_new": (C.c_void_p, []),
        "kcpx_config_free": (None, [C.c_void_p]),
        "kcpx_config_set_fec": (C.c_int, [C.c_void_p, C.c_int, C.c_int]),
        "kcpx_config_set_crypt": (C.c_int, [C.c_void_p, C.c_char_p, C.c_char_p, C.c_size_t]),
        "kcpx_config_set_nodelay": (C.c_int, [C.c_void_p] + [C.c_int] * 4),
        "kcpx_config_set_window": (C.c_int, [C.c_void_p, C.c_int, C.c_int]),
        "kcpx_config_set_stream": (C.c_int, [C.c_void_p, C.c_int]),
        "kcpx_strerror": (C.c_char_p, [C.c_int]),
        "kcpx_listen": (C.c_void_p, [C.c_char_p, C.c_void_p, C.POINTER(C.c_int)]),
        "kcpx_listener_local_port": (C.c_int, [C.c_void_p]),
        "kcpx_listener_wait": (C.c_int, [C.c_void_p, C.c_int]),
        "kcpx_listener_poll_event": (C.c_int, [C.c_void_p, C.POINTER(Event)]),
        "kcpx_listener_close": (None, [C.c_void_p]),
        "kcpx_dial": (C.c_void_p, [C.c_char_p, C.c_void_p, C.POINTER(C.c_int)]),
        "kcpx_session_update": (C.c_int, [C.c_void_p, C.c_uint32]),
        "kcpx_now_ms": (C.c_uint32, []),
        "kcpx_session_send": (C.c_int, [C.c_void_p, C.c_char_p, C.c_size_t]),
        "kcpx_session_recv": (C.c_int, [C.c_void_p, C.c_char_p, C.c_size_t]),
        "kcpx_session_close": (None, [C.c_void_p]),
    }
    for name, (restype, argtypes) in proto.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def config(lib):
    cfg = lib.kcpx_config_new()
    key = bytes(range(16))
    for rc in (lib.kcpx_config_set_fec(cfg, 10, 3),
               lib.kcpx_config_set_crypt(cfg, b"aes-128", key, len(key)),
               lib.kcpx_config_set_nodelay(cfg, 1, 10, 2, 1),
               lib.kcpx_config_set_window(cfg, 1024, 1024),
               lib.kcpx_config_set_stream(cfg, 1)):
        if rc != 0:
            raise RuntimeError(lib.kcpx_strerror(rc).decode())
    return cfg


def check(lib, handle, err, what):
    if not handle:
        raise RuntimeError(f"{what}: {lib.kcpx_strerror(err.value).decode()}")
    return handle


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KCPX_LIB", "libkcpx.so.1")
    try:
        lib = load(path)
    except OSError as e:
        print(f"kcpx_sessions: cannot load {path}: {e}\n"
              "Pass the library's path: python3 kcpx_sessions.py /some/prefix/lib/libkcpx.so\n"
              "  (or KCPX_LIB=/path/to/libkcpx.so; after `cargo build --release` it is\n"
              "  target/release/libkcpx.so), or install kcpx into a directory the loader searches.",
              file=sys.stderr)
        return 2
    cfg = config(lib)
    err = C.c_int(0)
    listener = check(lib, lib.kcpx_listen(b"127.0.0.1:0", cfg, C.byref(err)), err, "kcpx_listen")
    port = lib.kcpx_listener_local_port(listener)
    dialer = check(lib, lib.kcpx_dial(f"127.0.0.1:{port}".encode(), cfg, C.byref(err)), err, "kcpx_dial")
    lib.kcpx_config_free(cfg)  # both keep a copy

    data = random.Random(7).randbytes(1 << 20)
    sent, echo, pending = 0, bytearray(), {}
    buf = C.create_string_buffer(65536)
    ev = Event()
    for _ in range(20000):
        if sent < len(data):  # the send queue is bounded: KCPX_ERR_AGAIN means later
            n = lib.kcpx_session_send(dialer, data[sent:sent + 65536], min(65536, len(data) - sent))
            sent += max(n, 0)
        lib.kcpx_session_update(dialer, lib.kcpx_now_ms())
        lib.kcpx_listener_wait(listener, 2)
        while lib.kcpx_listener_poll_event(listener, C.byref(ev)) == 1:
            if ev.kind == KCPX_EVENT_ACCEPT:
                pending[ev.session] = b""
            elif ev.kind == KCPX_EVENT_CLOSED:
                lib.kcpx_session_close(ev.session)
                pending.pop(ev.session, None)
        for s in pending:  # echo what each session received
            while True:
                if pending[s]:
                    n = lib.kcpx_session_send(s, pending[s], len(pending[s]))
                    if n < 0:
                        break
                    pending[s] = pending[s][n:]
                    continue
                n = lib.kcpx_session_recv(s, buf, len(buf))
                if n <= 0:
                    break
                pending[s] = buf.raw[:n]
        while (n := lib.kcpx_session_recv(dialer, buf, len(buf))) > 0:
            echo += buf.raw[:n]
        if len(echo) >= len(data):
            break
    lib.kcpx_session_close(dialer)
    lib.kcpx_listener_close(listener)  # closes the accepted session too
    if bytes(echo) != data:
        print(f"kcpx_sessions: {len(echo)} of {len(data)} bytes echoed, intact: {data.startswith(bytes(echo))}",
              file=sys.stderr)
        return 1
    print(f"kcpx_sessions: {len(echo)} bytes echoed byte-exact through a kcpx listener via {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
