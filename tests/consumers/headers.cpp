// C++ consumer of the installed headers (built with g++ -Wall -Wextra
// -Werror and run by tests/packaging.rs): the extern "C" guards must give
// the functions C linkage, and the headers must compile as C++, kcpx.hpp
// (the C++ layer over kcpx.h) included.
#include "ikcp.h"
#include "kcpx.h"
#include "kcpx.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace {

// Datagrams one endpoint sent and the other has not received yet.
typedef std::vector<std::string> Wire;

extern "C" int output(const char *buf, int len, ikcpcb *, void *user)
{
	static_cast<Wire *>(user)->push_back(std::string(buf, static_cast<size_t>(len)));
	return 0;
}

void deliver(Wire &wire, ikcpcb *to)
{
	for (const std::string &d : wire)
		ikcp_input(to, d.data(), static_cast<long>(d.size()));
	wire.clear();
}

}  // namespace

int main()
{
	Wire a_to_b, b_to_a;
	ikcpcb *a = ikcp_create(7, &a_to_b);
	ikcpcb *b = ikcp_create(7, &b_to_a);
	ikcp_setoutput(a, output);
	ikcp_setoutput(b, output);
	const std::string message = "hello from C++";
	ikcp_send(a, message.data(), static_cast<int>(message.size()));
	std::string got;
	for (IUINT32 now = 0; now < 2000 && got.empty(); now += 10) {
		ikcp_update(a, now);
		ikcp_update(b, now);
		deliver(a_to_b, b);
		deliver(b_to_a, a);
		char buf[64];
		int n = ikcp_recv(b, buf, sizeof buf);
		if (n >= 0)
			got.assign(buf, static_cast<size_t>(n));
	}
	ikcp_release(a);
	ikcp_release(b);
	// kcpx.h from C++: C linkage, opaque handles, result codes.
	kcpx_config *cfg = kcpx_config_new();
	const bool kcpx_ok = cfg != nullptr && kcpx_config_set_fec(cfg, 10, 3) == KCPX_OK &&
			     kcpx_config_set_fec(cfg, 0, 3) == KCPX_ERR_FEC && kcpx_config_validate(cfg) == KCPX_OK;
	kcpx_config_free(cfg);
	// The same through kcpx.hpp's owner and error type.
	kcpx::result<kcpx::config> owned = kcpx::config::create();
	const bool hpp_ok = owned && owned->set_fec(10, 3).ok() && owned->set_fec(0, 3).error() == kcpx::errc::fec;
	std::printf("received \"%s\"; kcpx: %s; kcpx.hpp: %s\n", got.c_str(),
		    kcpx_strerror(kcpx_ok ? KCPX_OK : KCPX_ERR_INTERNAL), hpp_ok ? "ok" : "failed");
	return got == message && kcpx_ok && hpp_ok ? 0 : 1;
}
