/*
 * examples/c/kcpx_echo_server.c on kcpx.hpp, the C++ layer over kcpx.h: an
 * echo server for many clients (kcpx or kcp-go), one listener, an epoll
 * loop on its socket and its timer, an echo buffer per session. The owners
 * close what they hold; nothing here frees by hand.
 *
 * usage: echo_server IP:PORT [--crypt NAME] [--password P]
 *                    [--fec DS PS] [--message] [--idle MS]
 *   IP:PORT  "127.0.0.1:4000", "[::1]:4000"; port 0 picks a free one
 *
 * Prints "listening on PORT", serves until SIGTERM or SIGINT, then prints
 * one line of JSON with the listener's counters and exits 0 (as the C one).
 *
 * Build it against an installed kcpx (the rpath tells the loader where
 * libkcpx.so.1 is; without it the program does not start):
 *     g++ -std=c++17 echo_server.cpp -o echo_server $(pkg-config --cflags --libs kcpx) \
 *        -Wl,-rpath,"$(pkg-config --variable=libdir kcpx)"
 * or from a checkout after `cargo build --release`, whose libkcpx.so has the
 * SONAME libkcpx.so.1, a name that only an install or this link provides:
 *     ln -sf libkcpx.so target/release/libkcpx.so.1
 *     g++ -std=c++17 examples/cpp/echo_server.cpp -Iinclude -Ltarget/release -lkcpx \
 *        -Wl,-rpath,"$PWD/target/release" -o echo_server
 */
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "kcpx.hpp"

namespace {

/* The command line: the settings both ends must agree on (those of the C
 * examples' example_config.h: nodelay 1,10,2,1, windows 1024, stream mode,
 * key = kcptun's PBKDF2 of a password). */
struct options {
	const char *addr = nullptr;
	const char *crypt = nullptr;
	const char *password = "kcpx-interop";
	int ds = 0, ps = 0;
	bool message_mode = false;
	std::uint32_t idle_ms = 0;
};

bool parse(int argc, char **argv, options &o)
{
	if (argc < 2) return false;
	o.addr = argv[1];
	for (int i = 2; i < argc; i++) {
		const std::string_view a = argv[i];
		const bool more = i + 1 < argc;
		if (a == "--crypt" && more) o.crypt = argv[++i];
		else if (a == "--password" && more) o.password = argv[++i];
		else if (a == "--fec" && i + 2 < argc) {
			o.ds = std::atoi(argv[++i]);
			o.ps = std::atoi(argv[++i]);
		} else if (a == "--message") o.message_mode = true;
		else if (a == "--idle" && more) o.idle_ms = static_cast<std::uint32_t>(std::atoi(argv[++i]));
		else return false;
	}
	return true;
}

/* The key length kcptun gives each -crypt method: a prefix of its 32-byte
 * PBKDF2 key (0 for "none" and unknown names, which set_crypt judges). */
std::size_t key_len(const char *crypt)
{
	static const struct {
		std::string_view name;
		std::size_t len;
	} table[] = {
	    {"aes-128", 16}, {"aes-192", 24}, {"aes-256", 32}, {"aes", 32},	 {"salsa20", 32},
	    {"blowfish", 32}, {"twofish", 32}, {"cast5", 16},	 {"3des", 24}, {"tea", 16},
	    {"xtea", 16},    {"sm4", 16},     {"xor", 32},
	};
	for (const auto &m : table)
		if (crypt != nullptr && m.name == crypt) return m.len;
	return 0;
}

kcpx::result<kcpx::config> make_config(const options &o)
{
	kcpx::result<kcpx::config> made = kcpx::config::create();
	if (!made) return made;
	kcpx::config &cfg = *made;
	auto key = kcpx::key_from_password<32>(o.password);
	if (!key) return key.error();
	const kcpx::const_bytes k = kcpx::const_bytes(*key).first(key_len(o.crypt));
	for (kcpx::status s : {cfg.set_crypt(o.crypt, k), cfg.set_fec(o.ds, o.ps), cfg.set_nodelay(1, 10, 2, 1),
			       cfg.set_window(1024, 1024), cfg.set_stream(!o.message_mode),
			       cfg.set_idle_timeout(o.idle_ms), cfg.validate()})
		if (!s) return s.error();
	return made;
}

/* What a session has received and not yet echoed. */
struct echo {
	explicit echo(kcpx::session s) : session(std::move(s)) {}
	kcpx::session session;
	std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(64 * 1024);
	std::size_t len = 0, off = 0;
	unsigned long long echoed = 0;
};

volatile std::sig_atomic_t stop;

extern "C" void on_signal(int) { stop = 1; }

/* Echoes what the session has, until it must wait (for data or for room). */
void pump(echo &e)
{
	for (;;) {
		if (e.off < e.len) {
			kcpx::result<std::size_t> n = e.session.send(kcpx::const_bytes(e.buf).subspan(e.off).first(e.len - e.off));
			if (!n) return; /* errc::again: a writable event follows */
			e.off += *n;
			e.echoed += *n;
			if (e.off < e.len) return; /* a short write: writable follows too */
		}
		e.off = e.len = 0;
		kcpx::result<std::size_t> n = e.session.recv(kcpx::bytes(e.buf));
		if (n.error() == kcpx::errc::buffer_too_small) { /* message mode: a message over 64 KiB */
			std::fprintf(stderr, "message larger than the echo buffer: dropped session\n");
			return;
		}
		if (!n || *n == 0) return; /* errc::again (readable follows) or closed */
		e.len = *n;
	}
}

}  // namespace

int main(int argc, char **argv)
{
	options o;
	if (!parse(argc, argv, o)) {
		std::fprintf(stderr, "usage: echo_server IP:PORT [--crypt NAME] [--password P] "
				     "[--fec DS PS] [--message] [--idle MS]\n");
		return 2;
	}
	kcpx::result<kcpx::config> cfg = make_config(o);
	if (!cfg) {
		std::fprintf(stderr, "configuration refused: %s\n", cfg.error().message().c_str());
		return 1;
	}
	kcpx::result<kcpx::listener> listening = kcpx::listener::listen(o.addr, *cfg);
	if (!listening) {
		std::fprintf(stderr, "listen %s: %s\n", o.addr, listening.error().message().c_str());
		return 1;
	}
	kcpx::listener l = std::move(listening).value();
	/* The sessions alive, by handle; erasing one closes it. */
	std::map<kcpx_session *, std::unique_ptr<echo>> alive;
	unsigned long long sessions = 0;

	std::signal(SIGTERM, on_signal);
	std::signal(SIGINT, on_signal);
	const int ep = epoll_create1(0);
	epoll_event want{};
	want.events = EPOLLIN;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l.fd().value_or(-1), &want) != 0) {
		std::perror("epoll");
		return 1;
	}
	std::printf("listening on %u\n", static_cast<unsigned>(l.local_port().value_or(0)));
	std::fflush(stdout);
	while (!stop) {
		const std::uint32_t now = kcpx::now_ms();
		const int timeout = static_cast<int>(l.check(now) - now);
		epoll_event got[8];
		if (epoll_wait(ep, got, 8, timeout) < 0 && errno != EINTR) break;
		if (!l.update()) break;
		while (std::optional<kcpx::event> ev = l.poll_event()) {
			auto *e = static_cast<echo *>(ev->user());
			switch (ev->kind) {
			case kcpx::event_kind::accept: {
				auto fresh = std::make_unique<echo>(std::move(ev->accepted));
				fresh->session.set_user(fresh.get());
				pump(*fresh);
				alive[ev->handle] = std::move(fresh);
				sessions++;
				break;
			}
			case kcpx::event_kind::readable:
			case kcpx::event_kind::writable:
				if (e != nullptr) pump(*e);
				break;
			case kcpx::event_kind::closed:
				alive.erase(ev->handle); /* closes and frees it */
				break;
			case kcpx::event_kind::datagram: /* this server echoes the stream only */
				break;
			}
		}
	}
	close(ep);
	const kcpx::listener_counters c = l.stats().value();
	std::printf("{\"sessions\":%llu,\"passive_opens\":%llu,\"curr_estab\":%llu,\"in_pkts\":%llu,"
		    "\"in_errs\":%llu,\"in_csum_errors\":%llu,\"kcp_in_errors\":%llu,\"replaced\":%llu,"
		    "\"dropped_unknown\":%llu,\"recv_syscalls\":%llu,\"send_syscalls\":%llu}\n",
		    sessions, static_cast<unsigned long long>(c.passive_opens),
		    static_cast<unsigned long long>(c.curr_estab), static_cast<unsigned long long>(c.in_pkts),
		    static_cast<unsigned long long>(c.in_errs), static_cast<unsigned long long>(c.in_csum_errors),
		    static_cast<unsigned long long>(c.kcp_in_errors), static_cast<unsigned long long>(c.replaced),
		    static_cast<unsigned long long>(c.dropped_unknown),
		    static_cast<unsigned long long>(c.recv_syscalls),
		    static_cast<unsigned long long>(c.send_syscalls));
	if (c.passive_opens == 0 && c.in_csum_errors > 0)
		std::fprintf(stderr, "echo_server: hint: in_csum_errors %llu: the peer uses another key (--password) "
				     "or cipher (--crypt) (see docs/troubleshooting.md)\n",
			     static_cast<unsigned long long>(c.in_csum_errors));
	alive.clear(); /* each flushes what it queued */
	return 0;      /* then the listener closes */
}
