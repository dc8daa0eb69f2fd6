#ifndef KCPX_HPP
#define KCPX_HPP

/*
 * kcpx — kcpx.hpp: a header-only C++17 layer over kcpx.h.
 *
 * Owners instead of pointers: `kcpx::config`, `kcpx::listener`,
 * `kcpx::session` (accepted or dialed) and `kcpx::conn` (the sans-IO
 * connection) free what they hold when they are destroyed, move but never
 * copy, and an empty (default-made or moved-from) owner answers
 * `errc::null` instead of crashing. kcpx.h's one ownership rule that a C
 * program can break — `kcpx_listener_close` frees the listener's sessions,
 * after which their pointers must not be used — is kept by a lifeline the
 * listener shares with the sessions it hands out: once the listener is
 * gone, its sessions answer `errc::closed` and their destructors free
 * nothing, in whichever order the owners die.
 *
 * No exceptions: every call that can fail returns `kcpx::result<T>` (a
 * value or a `std::error_code` of `kcpx::category()`, compared with
 * `kcpx::errc`) or `kcpx::status` (`result<void>`). It compiles with
 * -fno-exceptions -fno-rtti. Buffers are `kcpx::const_bytes` and
 * `kcpx::bytes`, views made from a pointer and a length, std::string_view,
 * std::string, std::vector, std::array, byte arrays, or std::span (C++20).
 *
 * docs/cpp.md is the guide; kcpx.h documents every call this header wraps
 * (units, return codes, threading). Link with -lkcpx as for C.
 */

#include "kcpx.h"

#include <array>
#include <initializer_list>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__has_include)
#if __has_include(<version>)
#include <version>
#endif
#endif
#if defined(__cpp_lib_span)
#include <span>
#endif

namespace kcpx {

/* The package version this header belongs to (that of kcpx.h). */
inline constexpr int version_major = KCPX_VERSION_MAJOR;
inline constexpr int version_minor = KCPX_VERSION_MINOR;
inline constexpr int version_patch = KCPX_VERSION_PATCH;

/* ---------------------------------------------------------------- errors */

/* kcpx.h's KCPX_ERR_* codes (same values; kcpx.h says what each means). */
enum class errc : int {
	null = KCPX_ERR_NULL,
	invalid = KCPX_ERR_INVALID,
	again = KCPX_ERR_AGAIN,
	buffer_too_small = KCPX_ERR_BUFFER_TOO_SMALL,
	too_large = KCPX_ERR_TOO_LARGE,
	key = KCPX_ERR_KEY,
	fec = KCPX_ERR_FEC,
	mtu = KCPX_ERR_MTU,
	checksum = KCPX_ERR_CHECKSUM,
	short_datagram = KCPX_ERR_SHORT,
	kcp = KCPX_ERR_KCP,
	random = KCPX_ERR_RANDOM,
	internal = KCPX_ERR_INTERNAL,
	closed = KCPX_ERR_CLOSED,
	io = KCPX_ERR_IO,
	addr = KCPX_ERR_ADDR,
};

namespace detail {

class category_impl final : public std::error_category {
public:
	const char *name() const noexcept override { return "kcpx"; }
	std::string message(int code) const override { return kcpx_strerror(code); }
	/* The portable conditions a few codes stand for, so that
	 * `ec == std::errc::resource_unavailable_try_again` holds for AGAIN. */
	std::error_condition default_error_condition(int code) const noexcept override
	{
		switch (code) {
		case KCPX_ERR_AGAIN: return std::errc::resource_unavailable_try_again;
		case KCPX_ERR_INVALID: return std::errc::invalid_argument;
		case KCPX_ERR_TOO_LARGE: return std::errc::message_size;
		case KCPX_ERR_BUFFER_TOO_SMALL: return std::errc::no_buffer_space;
		default: return std::error_condition(code, *this);
		}
	}
};

}  // namespace detail

/* The category of kcpx's codes: name "kcpx", messages from kcpx_strerror. */
inline const std::error_category &category() noexcept
{
	static const detail::category_impl instance;
	return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return std::error_code(static_cast<int>(e), category()); }

/* kcpx_strerror: a static English description of a KCPX_* code. */
inline const char *strerror(int code) noexcept { return kcpx_strerror(code); }

}  // namespace kcpx

namespace std {
template <>
struct is_error_code_enum<kcpx::errc> : true_type {};
}  // namespace std

namespace kcpx {

namespace detail {

[[noreturn]] inline void bad_access(const std::error_code &e) noexcept
{
	std::fprintf(stderr, "kcpx::result: value() of an error: %s\n", kcpx_strerror(e.value()));
	std::abort();
}

}  // namespace detail

/*
 * A value or an error, without exceptions. `ok()` (or `if (r)`) says
 * which; `error()` is the code (empty when ok); `value()`, `*r` and
 * `r->` give the value and abort the program when there is none
 * (check first, or use `value_or`). T must be default-constructible.
 */
template <class T>
class [[nodiscard]] result {
	static_assert(std::is_default_constructible_v<T>, "kcpx::result<T> needs a default-constructible T");

public:
	result(const T &v) : value_(v) {}
	result(T &&v) noexcept(std::is_nothrow_move_constructible_v<T>) : value_(std::move(v)) {}
	result(std::error_code e) noexcept : error_(e) {}
	result(errc e) noexcept : error_(make_error_code(e)) {}

	bool ok() const noexcept { return !error_; }
	explicit operator bool() const noexcept { return ok(); }
	const std::error_code &error() const noexcept { return error_; }

	T &value() & noexcept
	{
		if (!ok()) detail::bad_access(error_);
		return value_;
	}
	const T &value() const & noexcept
	{
		if (!ok()) detail::bad_access(error_);
		return value_;
	}
	T &&value() && noexcept
	{
		if (!ok()) detail::bad_access(error_);
		return std::move(value_);
	}
	template <class U>
	T value_or(U &&fallback) &&
	{
		return ok() ? std::move(value_) : static_cast<T>(std::forward<U>(fallback));
	}
	template <class U>
	T value_or(U &&fallback) const &
	{
		return ok() ? value_ : static_cast<T>(std::forward<U>(fallback));
	}
	T &operator*() & noexcept { return value(); }
	const T &operator*() const & noexcept { return value(); }
	T &&operator*() && noexcept { return std::move(*this).value(); }
	T *operator->() noexcept { return &value(); }
	const T *operator->() const noexcept { return &value(); }

private:
	T value_{};
	std::error_code error_{};
};

/* Success or an error. */
template <>
class [[nodiscard]] result<void> {
public:
	result() noexcept = default;
	result(std::error_code e) noexcept : error_(e) {}
	result(errc e) noexcept : error_(make_error_code(e)) {}

	bool ok() const noexcept { return !error_; }
	explicit operator bool() const noexcept { return ok(); }
	const std::error_code &error() const noexcept { return error_; }

private:
	std::error_code error_{};
};

using status = result<void>;

namespace detail {

inline std::error_code code(int rc) noexcept { return std::error_code(rc, category()); }

inline status to_status(int rc) noexcept
{
	if (rc < 0) return code(rc);
	return {};
}

inline result<std::size_t> to_size(int rc) noexcept
{
	if (rc < 0) return code(rc);
	return static_cast<std::size_t>(rc);
}

}  // namespace detail

/* ------------------------------------------------------------- buffers */

namespace detail {

template <class T>
inline constexpr bool is_byte_v = std::is_same_v<std::remove_cv_t<T>, char> ||
				  std::is_same_v<std::remove_cv_t<T>, signed char> ||
				  std::is_same_v<std::remove_cv_t<T>, unsigned char> ||
				  std::is_same_v<std::remove_cv_t<T>, std::byte>;

template <class C, class = void>
struct contiguous : std::false_type {};
template <class C>
struct contiguous<C, std::void_t<decltype(std::declval<C &>().data()), decltype(std::declval<C &>().size())>>
    : std::bool_constant<std::is_pointer_v<decltype(std::declval<C &>().data())> &&
			 is_byte_v<std::remove_pointer_t<decltype(std::declval<C &>().data())>>> {};

/* Elements writable through C's data(). */
template <class C, class = void>
struct writable : std::false_type {};
template <class C>
struct writable<C, std::enable_if_t<contiguous<C>::value>>
    : std::bool_constant<!std::is_const_v<std::remove_pointer_t<decltype(std::declval<C &>().data())>>> {};

}  // namespace detail

class bytes;

/*
 * A read-only view of bytes (the std::span<const std::byte> of C++17):
 * from a pointer and a length, std::string_view, std::string,
 * std::vector and std::array of a byte type (char, unsigned char,
 * std::uint8_t, std::byte), a byte array other than char (a char array
 * may be a string literal: say std::string_view), or std::span (C++20).
 * It never owns what it views.
 */
class const_bytes {
public:
	constexpr const_bytes() noexcept = default;
	const_bytes(const void *data, std::size_t size) noexcept
	    : data_(static_cast<const std::uint8_t *>(data)), size_(size)
	{
	}
	const_bytes(std::string_view s) noexcept : const_bytes(s.data(), s.size()) {}
	template <class C, std::enable_if_t<detail::contiguous<const C>::value, int> = 0>
	const_bytes(const C &c) noexcept : const_bytes(c.data(), c.size())
	{
	}
	template <class T, std::size_t N,
		  std::enable_if_t<detail::is_byte_v<T> && !std::is_same_v<std::remove_cv_t<T>, char>, int> = 0>
	const_bytes(T (&array)[N]) noexcept : const_bytes(array, N)
	{
	}
	inline const_bytes(bytes b) noexcept;

	const std::uint8_t *data() const noexcept { return data_; }
	std::size_t size() const noexcept { return size_; }
	bool empty() const noexcept { return size_ == 0; }
	const std::uint8_t *begin() const noexcept { return data_; }
	const std::uint8_t *end() const noexcept { return data_ + size_; }
	std::uint8_t operator[](std::size_t i) const noexcept { return data_[i]; }
	/* The first `n` bytes (all of them if fewer). */
	const_bytes first(std::size_t n) const noexcept { return {data_, n < size_ ? n : size_}; }
	/* The bytes from `offset` on (none past the end). */
	const_bytes subspan(std::size_t offset) const noexcept
	{
		return offset < size_ ? const_bytes(data_ + offset, size_ - offset) : const_bytes();
	}
	std::string_view as_string_view() const noexcept
	{
		return {reinterpret_cast<const char *>(data_), size_};
	}

private:
	const std::uint8_t *data_ = nullptr;
	std::size_t size_ = 0;
};

/*
 * A writable view of bytes: from a pointer and a length, std::string,
 * std::vector and std::array of a byte type, a byte array (char too), or
 * std::span (C++20). It never owns what it views.
 */
class bytes {
public:
	constexpr bytes() noexcept = default;
	bytes(void *data, std::size_t size) noexcept : data_(static_cast<std::uint8_t *>(data)), size_(size) {}
	template <class C, std::enable_if_t<detail::writable<C>::value, int> = 0>
	bytes(C &c) noexcept : bytes(c.data(), c.size())
	{
	}
	template <class T, std::size_t N, std::enable_if_t<detail::is_byte_v<T> && !std::is_const_v<T>, int> = 0>
	bytes(T (&array)[N]) noexcept : bytes(array, N)
	{
	}
#if defined(__cpp_lib_span)
	template <class T, std::size_t E, std::enable_if_t<detail::is_byte_v<T> && !std::is_const_v<T>, int> = 0>
	bytes(std::span<T, E> s) noexcept : bytes(s.data(), s.size())
	{
	}
#endif

	std::uint8_t *data() const noexcept { return data_; }
	std::size_t size() const noexcept { return size_; }
	bool empty() const noexcept { return size_ == 0; }
	std::uint8_t *begin() const noexcept { return data_; }
	std::uint8_t *end() const noexcept { return data_ + size_; }
	std::uint8_t &operator[](std::size_t i) const noexcept { return data_[i]; }
	bytes first(std::size_t n) const noexcept { return {data_, n < size_ ? n : size_}; }
	bytes subspan(std::size_t offset) const noexcept
	{
		return offset < size_ ? bytes(data_ + offset, size_ - offset) : bytes();
	}

private:
	std::uint8_t *data_ = nullptr;
	std::size_t size_ = 0;
};

inline const_bytes::const_bytes(bytes b) noexcept : const_bytes(b.data(), b.size()) {}

/* --------------------------------------------------------------- misc */

/* kcp-go's SNMP counters of one connection or session (kcpx.h: kcpx_stats). */
using stats = kcpx_stats;
/* A listener's counters, or a dialed session's socket's (kcpx_listener_counters). */
using listener_counters = kcpx_listener_counters;

/* kcpx_now_ms: the monotonic millisecond clock listeners and sessions run on. */
inline std::uint32_t now_ms() noexcept { return kcpx_now_ms(); }

/* kcpx_key_from_password: kcptun's PBKDF2 key (16, 24 or 32 bytes for AES). */
inline status key_from_password(std::string_view password, bytes key) noexcept
{
	return detail::to_status(kcpx_key_from_password(reinterpret_cast<const std::uint8_t *>(password.data()),
							password.size(), key.data(), key.size()));
}

/* The same into an array of N bytes. */
template <std::size_t N = 32>
result<std::array<std::uint8_t, N>> key_from_password(std::string_view password) noexcept
{
	std::array<std::uint8_t, N> key{};
	if (status s = key_from_password(password, bytes(key)); !s) return s.error();
	return key;
}

/*
 * kcpx_token_make: a connect token for the secure wire (a backend's call):
 * client `client_id`, valid `valid_s` seconds, for 1 to 8 numeric "ip:port"
 * server addresses, sealed with the servers' 32-byte token key. Sessions do
 * not speak the secure wire yet (docs/secure-wire.md, section 15).
 */
inline result<std::array<std::uint8_t, KCPX_TOKEN_LEN>> make_token(const_bytes token_key, std::uint64_t client_id,
								   std::uint32_t valid_s,
								   std::initializer_list<const char *> server_addrs) noexcept
{
	std::array<std::uint8_t, KCPX_TOKEN_LEN> out{};
	int rc = kcpx_token_make(token_key.data(), token_key.size(), client_id, valid_s, server_addrs.begin(),
				 server_addrs.size(), out.data(), out.size());
	if (rc < 0) return detail::code(rc);
	return out;
}

/* ------------------------------------------------------------- config */

/*
 * Settings for new listeners, dialed sessions and connections, which keep
 * their own copy (so a config may die first). Move-only.
 */
class config {
public:
	/* An empty config (every setter answers errc::null); use create(). */
	config() noexcept = default;
	/* kcp-go's defaults (kcpx_config_new). */
	static result<config> create() noexcept
	{
		kcpx_config *c = kcpx_config_new();
		if (c == nullptr) return std::make_error_code(std::errc::not_enough_memory);
		return config(c);
	}
	config(const config &) = delete;
	config &operator=(const config &) = delete;
	config(config &&o) noexcept : raw_(std::exchange(o.raw_, nullptr)) {}
	config &operator=(config &&o) noexcept
	{
		if (this != &o) {
			kcpx_config_free(raw_);
			raw_ = std::exchange(o.raw_, nullptr);
		}
		return *this;
	}
	~config() { kcpx_config_free(raw_); }

	explicit operator bool() const noexcept { return raw_ != nullptr; }
	/* The C handle, still owned by this config. */
	const kcpx_config *get() const noexcept { return raw_; }
	kcpx_config *get() noexcept { return raw_; }

	status set_fec(int data_shards, int parity_shards) noexcept
	{
		return detail::to_status(kcpx_config_set_fec(raw_, data_shards, parity_shards));
	}
	/* `method` nullptr: no crypto header at all; "none": kcp-go's none cipher. */
	status set_crypt(const char *method, const_bytes key = {}) noexcept
	{
		return detail::to_status(kcpx_config_set_crypt(raw_, method, key.data(), key.size()));
	}
	status set_nodelay(int nodelay, int interval, int resend, int nc) noexcept
	{
		return detail::to_status(kcpx_config_set_nodelay(raw_, nodelay, interval, resend, nc));
	}
	status set_window(int sndwnd, int rcvwnd) noexcept
	{
		return detail::to_status(kcpx_config_set_window(raw_, sndwnd, rcvwnd));
	}
	status set_mtu(int mtu) noexcept { return detail::to_status(kcpx_config_set_mtu(raw_, mtu)); }
	status set_stream(bool on) noexcept { return detail::to_status(kcpx_config_set_stream(raw_, on ? 1 : 0)); }
	/* Each connection's or session's send rate, bytes per second (0: no cap)
	 * in bursts of `burst` bytes (0: 64 datagrams); kcp-go's SetRateLimit. */
	status set_rate_limit(std::uint32_t bytes_per_sec, std::uint32_t burst = 0) noexcept
	{
		return detail::to_status(kcpx_config_set_rate_limit(raw_, bytes_per_sec, burst));
	}
	status set_active_window(std::uint32_t ms) noexcept
	{
		return detail::to_status(kcpx_config_set_active_window(raw_, ms));
	}
	status set_dead_link_time(std::uint32_t ms) noexcept
	{
		return detail::to_status(kcpx_config_set_dead_link_time(raw_, ms));
	}
	status set_idle_timeout(std::uint32_t ms) noexcept
	{
		return detail::to_status(kcpx_config_set_idle_timeout(raw_, ms));
	}
	status set_limits(int backlog, int max_sessions) noexcept
	{
		return detail::to_status(kcpx_config_set_limits(raw_, backlog, max_sessions));
	}
	status set_memory_limits(std::size_t session_bytes, std::size_t listener_bytes) noexcept
	{
		return detail::to_status(kcpx_config_set_memory_limits(raw_, session_bytes, listener_bytes));
	}
	status set_sockbuf(int bytes) noexcept { return detail::to_status(kcpx_config_set_sockbuf(raw_, bytes)); }
	status set_reuseport(bool on) noexcept
	{
		return detail::to_status(kcpx_config_set_reuseport(raw_, on ? 1 : 0));
	}
	status set_offload(bool on) noexcept { return detail::to_status(kcpx_config_set_offload(raw_, on ? 1 : 0)); }
	status set_coalesce(std::uint32_t us) noexcept { return detail::to_status(kcpx_config_set_coalesce(raw_, us)); }
	status set_flush(bool on_send, bool on_input) noexcept
	{
		return detail::to_status(kcpx_config_set_flush(raw_, on_send ? 1 : 0, on_input ? 1 : 0));
	}
	/* What kcpx_conn_new would refuse, as a code. */
	status validate() const noexcept { return detail::to_status(kcpx_config_validate(raw_)); }

private:
	explicit config(kcpx_config *c) noexcept : raw_(c) {}
	kcpx_config *raw_ = nullptr;
};

/* kcpx_conv_of: the conversation id of a datagram made with `cfg`'s FEC and
 * crypto settings (errc::again for an FEC parity datagram). */
inline result<std::uint32_t> conv_of(const config &cfg, const_bytes datagram) noexcept
{
	std::uint32_t conv = 0;
	int rc = kcpx_conv_of(cfg.get(), datagram.data(), datagram.size(), &conv);
	if (rc < 0) return detail::code(rc);
	return conv;
}

/* ---------------------------------------------------- events, sessions */

enum class event_kind : int {
	accept = KCPX_EVENT_ACCEPT,
	readable = KCPX_EVENT_READABLE,
	writable = KCPX_EVENT_WRITABLE,
	closed = KCPX_EVENT_CLOSED,
	datagram = KCPX_EVENT_DATAGRAM,
};

enum class close_reason : int {
	none = 0,
	local = KCPX_CLOSE_LOCAL,
	idle = KCPX_CLOSE_IDLE,
	dead_link = KCPX_CLOSE_DEAD_LINK,
	replaced = KCPX_CLOSE_REPLACED,
	listener = KCPX_CLOSE_LISTENER,
	evicted = KCPX_CLOSE_EVICTED,
};

namespace detail {

/* What a listener shares with the sessions it hands out: its handle while it
 * is open, nullptr once kcpx_listener_close freed it and them. */
struct lifeline {
	kcpx_listener *listener = nullptr;
};

}  // namespace detail

class listener;
struct event;

/*
 * One session, accepted from a listener or dialed. Move-only; destroying
 * it closes it (kcpx_session_close: an accepted session never blocks, a
 * dialed one lingers up to KCPX_DIAL_CLOSE_LINGER_MS for its queued data;
 * close_linger() chooses). An accepted session whose listener is gone
 * answers errc::closed (conv() 0) and frees nothing: the listener freed it.
 * A listener and its sessions are driven by one thread at a time.
 */
class session {
public:
	/* An empty session (every call answers errc::null). */
	session() noexcept = default;
	session(const session &) = delete;
	session &operator=(const session &) = delete;
	session(session &&o) noexcept : raw_(std::exchange(o.raw_, nullptr)), life_(std::move(o.life_)) {}
	session &operator=(session &&o) noexcept
	{
		if (this != &o) {
			close();
			raw_ = std::exchange(o.raw_, nullptr);
			life_ = std::move(o.life_);
		}
		return *this;
	}
	~session() { close(); }

	/* kcpx_dial: a session to `addr` ("1.2.3.4:4000", "[::1]:4000") from its
	 * own UDP socket. errc::addr, errc::io (errno says why), or the config's code. */
	static result<session> dial(std::string_view addr, const config &cfg)
	{
		const std::string a(addr);
		int err = 0;
		kcpx_session *s = kcpx_dial(a.c_str(), cfg.get(), &err);
		if (s == nullptr) return detail::code(err != 0 ? err : KCPX_ERR_INTERNAL);
		return session(s, nullptr);
	}

	/* Holds a session (that its listener has not freed). */
	explicit operator bool() const noexcept { return live() != nullptr; }
	/* Dialed (true) or accepted from a listener (false); false when empty. */
	bool dialed() const noexcept { return raw_ != nullptr && life_ == nullptr; }
	/* The C handle (still owned here), nullptr when empty or freed by its
	 * listener: what kcpx::event::handle names. */
	kcpx_session *get() const noexcept { return live(); }

	/* Bytes queued (stream mode: maybe fewer than given; errc::again when the
	 * queue is full: a writable event follows), errc::closed, errc::too_large. */
	result<std::size_t> send(const_bytes data) noexcept
	{
		return detail::to_size(fix(kcpx_session_send(live(), data.data(), data.size())));
	}
	/* Stream mode: as many bytes as fit; message mode: the next message, or
	 * errc::buffer_too_small (see peeksize). errc::again, errc::closed. */
	result<std::size_t> recv(bytes buf) noexcept
	{
		return detail::to_size(fix(kcpx_session_recv(live(), buf.data(), buf.size())));
	}
	/* The next message (stream mode: every byte ready) into `out`, resized to
	 * its length. When nothing waits it still asks kcpx_session_recv, whose
	 * AGAIN re-arms the edge-triggered readable event (peeksize's does not). */
	result<std::size_t> recv_message(std::vector<std::uint8_t> &out)
	{
		result<std::size_t> n = peeksize();
		if (!n) {
			std::uint8_t probe = 0;
			result<std::size_t> got = recv(bytes(&probe, 1));
			out.assign(got ? 1 : 0, probe);
			return got;
		}
		out.resize(*n);
		result<std::size_t> got = recv(bytes(out));
		out.resize(got ? *got : 0);
		return got;
	}
	result<std::size_t> peeksize() const noexcept { return detail::to_size(fix(kcpx_session_peeksize(live()))); }
	/* One unreliable message (at most datagram_max() bytes; errc::again when
	 * a rate limit has no room for it now). */
	result<std::size_t> send_datagram(const_bytes data) noexcept
	{
		return detail::to_size(fix(kcpx_session_send_datagram(live(), data.data(), data.size())));
	}
	/* The oldest unreliable message received (a 1,500-byte buffer holds any). */
	result<std::size_t> recv_datagram(bytes buf) noexcept
	{
		return detail::to_size(fix(kcpx_session_recv_datagram(live(), buf.data(), buf.size())));
	}
	result<std::size_t> datagram_max() const noexcept
	{
		return detail::to_size(fix(kcpx_session_datagram_max(live())));
	}
	status flush() noexcept { return detail::to_status(fix(kcpx_session_flush(live()))); }
	/* This session's send cap from now on, in place of its config's (see
	 * config::set_rate_limit): a game server's per-client bandwidth. */
	status set_rate_limit(std::uint32_t bytes_per_sec, std::uint32_t burst = 0) noexcept
	{
		return detail::to_status(fix(kcpx_session_set_rate_limit(live(), bytes_per_sec, burst)));
	}
	result<kcpx_stats> stats() const noexcept
	{
		kcpx_stats out{};
		if (int rc = fix(kcpx_session_stats(live(), &out)); rc < 0) return detail::code(rc);
		return out;
	}
	/* Smoothed round-trip time in ms. */
	result<std::uint32_t> rtt() const noexcept
	{
		int rc = fix(kcpx_session_rtt(live()));
		if (rc < 0) return detail::code(rc);
		return static_cast<std::uint32_t>(rc);
	}
	/* "ip:port" or "[ip6]:port". */
	result<std::string> remote_addr() const
	{
		char buf[64];
		int rc = fix(kcpx_session_remote_addr(live(), buf, sizeof buf));
		if (rc < 0) return detail::code(rc);
		return std::string(buf, static_cast<std::size_t>(rc));
	}
	/* The conversation id; 0 when empty or freed by its listener. */
	std::uint32_t conv() const noexcept { return kcpx_session_conv(live()); }
	/* The caller's pointer (kcpx_session_set_user / _user). */
	void set_user(void *user) noexcept { kcpx_session_set_user(live(), user); }
	void *user() const noexcept { return kcpx_session_user(live()); }

	/* Dialed sessions only (errc::invalid for an accepted one: its listener
	 * does this). kcpx.h: kcpx_session_fd, _update, _check, _wait,
	 * _socket_stats. */
	result<int> fd() const noexcept
	{
		int rc = fix(kcpx_session_fd(live()));
		if (rc < 0) return detail::code(rc);
		return rc;
	}
	/* Datagrams read. */
	result<std::size_t> update(std::uint32_t now = now_ms()) noexcept
	{
		return detail::to_size(fix(kcpx_session_update(live(), now)));
	}
	std::uint32_t check(std::uint32_t now = now_ms()) noexcept { return kcpx_session_check(live(), now); }
	/* true when there is something to do, false after the timeout. */
	result<bool> wait(int timeout_ms) noexcept
	{
		int rc = fix(kcpx_session_wait(live(), timeout_ms));
		if (rc < 0) return detail::code(rc);
		return rc == 1;
	}
	/* The next event of a dialed session (none for an accepted one: poll
	 * its listener). Defined after kcpx::event. */
	inline std::optional<event> poll_event() noexcept;
	result<listener_counters> socket_stats() const noexcept
	{
		kcpx_listener_counters out{};
		if (int rc = fix(kcpx_session_socket_stats(live(), &out)); rc < 0) return detail::code(rc);
		return out;
	}

	/* Closes and frees it now (what the destructor does); empty afterwards. */
	void close() noexcept
	{
		if (kcpx_session *s = live()) kcpx_session_close(s);
		raw_ = nullptr;
		life_.reset();
	}
	/* close() with a dialed session's linger chosen (kcpx_session_close_linger). */
	void close_linger(std::uint32_t linger_ms) noexcept
	{
		if (kcpx_session *s = live()) kcpx_session_close_linger(s, linger_ms);
		raw_ = nullptr;
		life_.reset();
	}

private:
	friend class listener;
	session(kcpx_session *s, std::shared_ptr<detail::lifeline> life) noexcept : raw_(s), life_(std::move(life)) {}
	/* Accepted from a listener that is gone (which freed it). */
	bool orphaned() const noexcept { return life_ != nullptr && life_->listener == nullptr; }
	/* The handle if it may be used: nullptr when empty or orphaned. */
	kcpx_session *live() const noexcept { return orphaned() ? nullptr : raw_; }
	/* kcpx's answer for a NULL handle is errc::null; an orphan's is errc::closed. */
	int fix(int rc) const noexcept { return rc == KCPX_ERR_NULL && orphaned() ? KCPX_ERR_CLOSED : rc; }

	kcpx_session *raw_ = nullptr;
	std::shared_ptr<detail::lifeline> life_;  // empty for a dialed session
};

/*
 * Something that happened to a session. `handle` names the session (compare
 * with session::get(), or read the pointer given to set_user with user());
 * for event_kind::accept, `accepted` owns the new session: move it out, or
 * it is closed with the event.
 */
struct event {
	event_kind kind = event_kind::readable;
	close_reason reason = close_reason::none;
	kcpx_session *handle = nullptr;
	session accepted;

	/* kcpx_session_user of the session it happened to. */
	void *user() const noexcept { return kcpx_session_user(handle); }
};

inline std::optional<event> session::poll_event() noexcept
{
	kcpx_event ev{};
	if (kcpx_session_poll_event(live(), &ev) != 1) return std::nullopt;
	event out;
	out.kind = static_cast<event_kind>(ev.kind);
	out.reason = static_cast<close_reason>(ev.reason);
	out.handle = ev.session;
	return std::optional<event>(std::move(out));
}

/* ------------------------------------------------------------ listener */

/*
 * Many sessions on one UDP socket. Move-only; destroying it closes it
 * (kcpx_listener_close: each of its sessions flushes once and is freed;
 * their kcpx::session owners then answer errc::closed).
 */
class listener {
public:
	/* An empty listener (every call answers errc::null). */
	listener() noexcept = default;
	listener(const listener &) = delete;
	listener &operator=(const listener &) = delete;
	listener(listener &&o) noexcept = default;
	listener &operator=(listener &&o) noexcept
	{
		if (this != &o) {
			close();
			life_ = std::move(o.life_);
		}
		return *this;
	}
	~listener() { close(); }

	/* kcpx_listen on `addr` ("127.0.0.1:4000", "[::1]:0": port 0 picks one).
	 * errc::addr, errc::io (errno says why), or the config's code. */
	static result<listener> listen(std::string_view addr, const config &cfg)
	{
		const std::string a(addr);
		int err = 0;
		kcpx_listener *l = kcpx_listen(a.c_str(), cfg.get(), &err);
		if (l == nullptr) return detail::code(err != 0 ? err : KCPX_ERR_INTERNAL);
		listener out;
		out.life_ = std::make_shared<detail::lifeline>();
		out.life_->listener = l;
		return result<listener>(std::move(out));
	}

	explicit operator bool() const noexcept { return raw() != nullptr; }
	/* The C handle, still owned here. */
	kcpx_listener *get() const noexcept { return raw(); }

	result<std::uint16_t> local_port() const noexcept
	{
		int rc = kcpx_listener_local_port(raw());
		if (rc < 0) return detail::code(rc);
		return static_cast<std::uint16_t>(rc);
	}
	/* The UDP socket for a poll/epoll loop: readable means update(); block
	 * at most until check()'s time. Do not read, write or close it. */
	result<int> fd() const noexcept
	{
		int rc = kcpx_listener_fd(raw());
		if (rc < 0) return detail::code(rc);
		return rc;
	}
	/* Never blocks; the datagrams read. */
	result<std::size_t> update(std::uint32_t now = now_ms()) noexcept
	{
		return detail::to_size(kcpx_listener_update(raw(), now));
	}
	/* When update() is due next, on the clock of `now`; writes what sends queued. */
	std::uint32_t check(std::uint32_t now = now_ms()) noexcept { return kcpx_listener_check(raw(), now); }
	/* Blocks up to `timeout_ms` for a datagram or a timer, then updates. */
	result<std::size_t> wait(int timeout_ms) noexcept
	{
		return detail::to_size(kcpx_listener_wait(raw(), timeout_ms));
	}
	status flush() noexcept { return detail::to_status(kcpx_listener_flush(raw())); }
	/* The next event of its sessions; an accept event owns the new session. */
	std::optional<event> poll_event() noexcept
	{
		kcpx_event ev{};
		if (kcpx_listener_poll_event(raw(), &ev) != 1) return std::nullopt;
		event out;
		out.kind = static_cast<event_kind>(ev.kind);
		out.reason = static_cast<close_reason>(ev.reason);
		out.handle = ev.session;
		if (out.kind == event_kind::accept) out.accepted = session(ev.session, life_);
		return std::optional<event>(std::move(out));
	}
	/* The next new session not handed out yet (kcpx_accept). */
	std::optional<session> accept() noexcept
	{
		kcpx_session *s = kcpx_accept(raw());
		if (s == nullptr) return std::nullopt;
		return session(s, life_);
	}
	result<listener_counters> stats() const noexcept
	{
		kcpx_listener_counters out{};
		if (int rc = kcpx_listener_stats(raw(), &out); rc < 0) return detail::code(rc);
		return out;
	}

	/* Closes it now (what the destructor does), freeing its sessions. */
	void close() noexcept
	{
		if (life_ != nullptr && life_->listener != nullptr) {
			kcpx_listener_close(life_->listener);
			life_->listener = nullptr;
		}
		life_.reset();
	}

private:
	kcpx_listener *raw() const noexcept { return life_ != nullptr ? life_->listener : nullptr; }
	std::shared_ptr<detail::lifeline> life_;
};

/* ---------------------------------------------------------------- conn */

/*
 * One connection, sans-IO (kcpx_conn_*): the caller owns the UDP socket and
 * the clock; `output` receives each datagram to send, during update(),
 * flush() and send_datagram(). Move-only; the callback stays where it is
 * when the conn moves. The callback may call this conn's other functions
 * but must not destroy or move-assign it; it must not throw (kcpx's C code
 * is below it: an exception terminates the program).
 */
class conn {
public:
	using output_fn = std::function<void(const_bytes datagram)>;

	/* An empty conn (every call answers errc::null). */
	conn() noexcept = default;
	conn(const conn &) = delete;
	conn &operator=(const conn &) = delete;
	conn(conn &&) noexcept = default;
	conn &operator=(conn &&o) noexcept
	{
		if (this != &o) {
			reset();
			state_ = std::move(o.state_);
		}
		return *this;
	}
	~conn() { reset(); }

	/* kcpx_conn_new for conversation `conv` with a copy of `cfg`; the config's
	 * code (kcpx_config_validate) when refused. */
	static result<conn> create(std::uint32_t conv, const config &cfg, output_fn output)
	{
		if (!output) return errc::null;
		if (status s = cfg.validate(); !s) return s.error();
		conn c;
		c.state_ = std::make_unique<state>();
		c.state_->output = std::move(output);
		c.state_->raw = kcpx_conn_new(conv, cfg.get(), &conn::trampoline, c.state_.get());
		if (c.state_->raw == nullptr) return errc::internal;
		return result<conn>(std::move(c));
	}

	explicit operator bool() const noexcept { return raw() != nullptr; }
	kcpx_conn *get() const noexcept { return raw(); }

	/* One received UDP datagram: errc::checksum, errc::short_datagram, errc::kcp. */
	status input(const_bytes datagram) noexcept
	{
		return detail::to_status(kcpx_conn_input(raw(), datagram.data(), datagram.size()));
	}
	/* All of it queued (the queue is unbounded: throttle with waitsnd()). */
	result<std::size_t> send(const_bytes data) noexcept
	{
		return detail::to_size(kcpx_conn_send(raw(), data.data(), data.size()));
	}
	result<std::size_t> recv(bytes buf) noexcept { return detail::to_size(kcpx_conn_recv(raw(), buf.data(), buf.size())); }
	result<std::size_t> peeksize() const noexcept { return detail::to_size(kcpx_conn_peeksize(raw())); }
	result<std::size_t> waitsnd() const noexcept { return detail::to_size(kcpx_conn_waitsnd(raw())); }
	result<std::size_t> send_datagram(const_bytes data) noexcept
	{
		return detail::to_size(kcpx_conn_send_datagram(raw(), data.data(), data.size()));
	}
	result<std::size_t> recv_datagram(bytes buf) noexcept
	{
		return detail::to_size(kcpx_conn_recv_datagram(raw(), buf.data(), buf.size()));
	}
	result<std::size_t> datagram_max() const noexcept { return detail::to_size(kcpx_conn_datagram_max(raw())); }
	/* This connection's send cap from now on (see config::set_rate_limit). */
	status set_rate_limit(std::uint32_t bytes_per_sec, std::uint32_t burst = 0) noexcept
	{
		return detail::to_status(kcpx_conn_set_rate_limit(raw(), bytes_per_sec, burst));
	}
	/* Advances the clock (ms, any origin, wrapping) and sends what is due. */
	void update(std::uint32_t now) noexcept { kcpx_conn_update(raw(), now); }
	void flush() noexcept { kcpx_conn_flush(raw()); }
	std::uint32_t check(std::uint32_t now) const noexcept { return kcpx_conn_check(raw(), now); }
	result<kcpx_stats> stats() const noexcept
	{
		kcpx_stats out{};
		if (int rc = kcpx_conn_stats(raw(), &out); rc < 0) return detail::code(rc);
		return out;
	}

	/* Frees it now (what the destructor does). */
	void reset() noexcept
	{
		if (state_ != nullptr) kcpx_conn_free(state_->raw);
		state_.reset();
	}

private:
	struct state {
		kcpx_conn *raw = nullptr;
		output_fn output;
	};
	static int trampoline(const std::uint8_t *datagram, std::size_t len, void *user) noexcept
	{
		static_cast<state *>(user)->output(const_bytes(datagram, len));
		return 0;
	}
	kcpx_conn *raw() const noexcept { return state_ != nullptr ? state_->raw : nullptr; }
	std::unique_ptr<state> state_;
};

}  // namespace kcpx

#endif /* KCPX_HPP */
