#!/usr/bin/env python3
"""Use libkcpx (the ikcp C API) from Python with ctypes: two KCP endpoints
joined by in-memory output callbacks exchange a message and its echo.

    python3 kcp_echo.py [path/to/libkcpx.so]

The library is the argument, else $KCPX_LIB, else libkcpx.so.1 from the
system library path. Exits 0 when the echo came back intact. Copy it freely:
only the standard library is needed.
"""
import ctypes
import os
import sys

IUINT32 = ctypes.c_uint32  # IUINT32 is `unsigned int` on every platform kcpx builds for
# int output(const char *buf, int len, ikcpcb *kcp, void *user)
OUTPUT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_char), ctypes.c_int,
                          ctypes.c_void_p, ctypes.c_void_p)


def load(path):
    lib = ctypes.CDLL(path)
    proto = {
        "ikcp_create": (ctypes.c_void_p, [IUINT32, ctypes.c_void_p]),
        "ikcp_release": (None, [ctypes.c_void_p]),
        "ikcp_setoutput": (None, [ctypes.c_void_p, OUTPUT]),
        "ikcp_send": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]),
        "ikcp_recv": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]),
        "ikcp_input": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_long]),
        "ikcp_update": (None, [ctypes.c_void_p, IUINT32]),
        "ikcp_nodelay": (ctypes.c_int, [ctypes.c_void_p] + [ctypes.c_int] * 4),
    }
    for name, (restype, argtypes) in proto.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


class Endpoint:
    """One KCP session whose output callback appends datagrams to `wire`."""

    def __init__(self, lib, conv, wire):
        self.lib = lib
        self.kcp = lib.ikcp_create(conv, None)
        if not self.kcp:
            raise MemoryError("ikcp_create failed")

        def output(buf, length, kcp, user):
            wire.append(ctypes.string_at(buf, length))
            return 0

        self.output = OUTPUT(output)  # keep a reference: C holds the pointer
        lib.ikcp_setoutput(self.kcp, self.output)
        lib.ikcp_nodelay(self.kcp, 1, 10, 2, 1)

    def recv(self):
        buf = ctypes.create_string_buffer(4096)
        n = self.lib.ikcp_recv(self.kcp, buf, len(buf))
        return buf.raw[:n] if n >= 0 else None

    def close(self):
        self.lib.ikcp_release(self.kcp)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KCPX_LIB", "libkcpx.so.1")
    try:
        lib = load(path)
    except OSError as e:
        print(f"kcp_echo: cannot load {path}: {e}\n"
              "Pass the library's path: python3 kcp_echo.py /some/prefix/lib/libkcpx.so\n"
              "  (or KCPX_LIB=/path/to/libkcpx.so; after `cargo build --release` it is\n"
              "  target/release/libkcpx.so), or install kcpx into a directory the loader searches.",
              file=sys.stderr)
        return 2
    a_to_b, b_to_a = [], []
    a = Endpoint(lib, 0x11223344, a_to_b)
    b = Endpoint(lib, 0x11223344, b_to_a)
    message = b"hello from Python over kcpx"
    lib.ikcp_send(a.kcp, message, len(message))
    echo = None
    for now in range(0, 2000, 10):  # virtual clock, milliseconds
        lib.ikcp_update(a.kcp, now)
        lib.ikcp_update(b.kcp, now)
        for src, dst in ((a_to_b, b), (b_to_a, a)):
            for datagram in src:
                lib.ikcp_input(dst.kcp, datagram, len(datagram))
            src.clear()
        got = b.recv()
        if got is not None:
            lib.ikcp_send(b.kcp, got, len(got))
        echo = a.recv()
        if echo is not None:
            break
    a.close()
    b.close()
    if echo != message:
        print(f"kcp_echo: expected {message!r}, got {echo!r}", file=sys.stderr)
        return 1
    print(f"kcp_echo: {echo.decode()!r} echoed at t={now} ms via {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
