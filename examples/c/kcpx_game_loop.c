/*
 * A game server's loop, written only against kcpx.h: unreliable state at
 * 20 Hz beside a reliable chat stream. One process holds the server (one
 * listener) and a few players (dialed sessions) so that it runs alone; a
 * real game splits them, the calls stay the same.
 *
 * Every 50 ms tick the server sends each player the world state as an
 * unreliable message (kcpx_session_send_datagram: never retransmitted, no
 * head-of-line blocking behind the chat), and each player sends its input
 * the same way. Every 500 ms each player says a chat line, reliably
 * (kcpx_session_send, message mode), and the server relays every line to
 * every player. One epoll loop waits on all sockets and the next tick or
 * timer, never spinning.
 *
 * usage: kcpx_game_loop 127.0.0.1:0 [--crypt NAME] [--fec DS PS] --message
 *                       [--timeout SECONDS]
 *   Four players play for --timeout seconds (default 60; 3 is plenty),
 *   then it prints one line of JSON and exits 0 when every chat line
 *   reached every player intact and in order.
 *
 * Build it against an installed kcpx (the rpath tells the loader where
 * libkcpx.so.1 is; without it the program does not start):
 *     cc kcpx_game_loop.c -o kcpx_game_loop $(pkg-config --cflags --libs kcpx) \
 *        -Wl,-rpath,"$(pkg-config --variable=libdir kcpx)"
 * or from a checkout after `cargo build --release`:
 *     ln -sf libkcpx.so target/release/libkcpx.so.1
 *     cc examples/c/kcpx_game_loop.c -Iinclude -Ltarget/release -lkcpx \
 *        -Wl,-rpath,"$PWD/target/release" -o kcpx_game_loop
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "example_config.h"

#define MAX_PLAYERS 4
#define TICK_MS 50
#define CHAT_EVERY 10 /* ticks */

struct state { /* what the server sends each tick, unreliably */
	uint32_t tick, players;
	int32_t x[MAX_PLAYERS], y[MAX_PLAYERS];
};

struct input { /* what a player sends each tick, unreliably */
	uint32_t player, tick;
	int32_t dx, dy;
};

struct player {
	kcpx_session *s;        /* the player's dialed session */
	kcpx_session *at_server; /* the server's session of this player, once accepted */
	uint32_t said, heard[MAX_PLAYERS]; /* lines said (the hello first); chat heard from each */
	unsigned long long states, last_tick, inputs;
	int bad;
};

static struct player players[MAX_PLAYERS];
static unsigned n_players;

/* The server's session of a player, by the user pointer set on accept. */
static struct player *owner(kcpx_session *s)
{
	return kcpx_session_user(s);
}

/* Server: takes the player's inputs (unreliable; the newest wins). */
static void server_inputs(kcpx_session *s, struct state *world)
{
	struct input in;
	int n;
	while ((n = kcpx_session_recv_datagram(s, &in, sizeof in)) >= 0) {
		if (n != (int)sizeof in || in.player >= n_players) continue; /* not ours */
		world->x[in.player] += in.dx;
		world->y[in.player] += in.dy;
		players[in.player].inputs++;
	}
}

/* Server: relays every chat line it reads from `s` to every player. A
 * player's first line names it: the session is then that player's. */
static void server_chat(kcpx_session *s)
{
	char line[256];
	int n;
	unsigned i, from, seq;
	while ((n = kcpx_session_recv(s, line, sizeof line - 1)) > 0) {
		line[n] = '\0';
		if (owner(s) == NULL && sscanf(line, "player %u says line %u", &from, &seq) == 2 &&
		    from < n_players && players[from].at_server == NULL) {
			kcpx_session_set_user(s, &players[from]);
			players[from].at_server = s;
			continue; /* the hello is not chat */
		}
		for (i = 0; i < n_players; i++)
			if (players[i].at_server != NULL && kcpx_session_send(players[i].at_server, line, (size_t)n) < 0)
				players[i].bad = 1; /* the send queue is 2 windows: never full here */
	}
}

static void server_events(kcpx_listener *l, struct state *world)
{
	kcpx_event ev;
	while (kcpx_listener_poll_event(l, &ev) == 1) {
		struct player *p = owner(ev.session);
		switch (ev.kind) {
		case KCPX_EVENT_ACCEPT:
			/* Each player's bandwidth cap: 64 KB/s, kcp-go's burst (ACKs never wait). */
			kcpx_session_set_rate_limit(ev.session, 64 * 1024, 0);
			server_chat(ev.session); /* user NULL until named */
			break;
		case KCPX_EVENT_READABLE: server_chat(ev.session); break;
		case KCPX_EVENT_DATAGRAM: server_inputs(ev.session, world); break;
		case KCPX_EVENT_CLOSED:
			if (p != NULL) p->at_server = NULL;
			kcpx_session_close(ev.session);
			break;
		}
	}
}

/* Player i: reads the world state and the relayed chat. */
static void player_reads(unsigned i)
{
	struct player *p = &players[i];
	struct state st;
	char line[256];
	int n;
	while ((n = kcpx_session_recv_datagram(p->s, &st, sizeof st)) >= 0) {
		if (n != (int)sizeof st) { p->bad = 1; continue; }
		if (st.tick > p->last_tick) p->last_tick = st.tick; /* late ones are stale: skip */
		p->states++;
	}
	while ((n = kcpx_session_recv(p->s, line, sizeof line - 1)) > 0) {
		unsigned from, seq;
		line[n] = '\0';
		if (sscanf(line, "player %u says line %u", &from, &seq) != 2 || from >= n_players ||
		    seq != players[i].heard[from] + 1) {
			p->bad = 1; /* reliable and in order: anything else is a bug */
			continue;
		}
		p->heard[from]++;
	}
}

static int add_fd(int ep, int fd)
{
	struct epoll_event want = {0};
	want.events = EPOLLIN;
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &want);
}

int main(int argc, char **argv)
{
	struct example_options o;
	struct epoll_event got[MAX_PLAYERS + 1];
	struct state world = {0};
	kcpx_config *cfg;
	kcpx_listener *l;
	char addr[64];
	int err = 0, ep, ok;
	unsigned i, j;
	uint32_t start, next_tick;
	unsigned long long states_sent = 0, lines = 0;

	if (example_parse(argc, argv, &o) != 0 || !o.message_mode) {
		fprintf(stderr, "usage: kcpx_game_loop IP:PORT [--crypt NAME] [--fec DS PS] --message "
				"[--timeout SECONDS]\n");
		return 2;
	}
	n_players = MAX_PLAYERS;
	if ((cfg = example_config(&o)) == NULL) return 1;
	l = kcpx_listen(o.addr, cfg, &err);
	if (l == NULL) {
		fprintf(stderr, "kcpx_listen %s: %s\n", o.addr, kcpx_strerror(err));
		return 1;
	}
	ep = epoll_create1(0);
	if (ep < 0 || add_fd(ep, kcpx_listener_fd(l)) != 0) {
		perror("epoll");
		return 1;
	}
	snprintf(addr, sizeof addr, "127.0.0.1:%d", kcpx_listener_local_port(l));
	for (i = 0; i < n_players; i++) {
		char hello[64];
		players[i].s = kcpx_dial(addr, cfg, &err);
		if (players[i].s == NULL || add_fd(ep, kcpx_session_fd(players[i].s)) != 0) {
			fprintf(stderr, "kcpx_dial %s: %s\n", addr, kcpx_strerror(err));
			return 1;
		}
		/* The first reliable message says who this is (line 0, not relayed;
		 * chat starts after the first half second, once all are named). */
		snprintf(hello, sizeof hello, "player %u says line %u", i, players[i].said++);
		kcpx_session_send(players[i].s, hello, strlen(hello));
	}
	kcpx_config_free(cfg); /* the listener and sessions keep copies */

	start = next_tick = kcpx_now_ms();
	while ((int32_t)(kcpx_now_ms() - start) < o.timeout_s * 1000) {
		uint32_t now = kcpx_now_ms(), wake = next_tick;
		int n;
		/* Sleep until the next tick or the earliest kcpx timer. */
		if ((int32_t)(kcpx_listener_check(l, now) - wake) < 0) wake = kcpx_listener_check(l, now);
		for (i = 0; i < n_players; i++) {
			uint32_t due = kcpx_session_check(players[i].s, now);
			if ((int32_t)(due - wake) < 0) wake = due;
		}
		n = epoll_wait(ep, got, MAX_PLAYERS + 1, (int32_t)(wake - now) > 0 ? (int)(wake - now) : 0);
		if (n < 0 && errno != EINTR) break;
		now = kcpx_now_ms();
		kcpx_listener_update(l, now);
		server_events(l, &world);
		for (i = 0; i < n_players; i++) {
			kcpx_session_update(players[i].s, now);
			player_reads(i);
		}
		if ((int32_t)(now - next_tick) < 0) continue;
		next_tick += TICK_MS;
		world.tick++;
		world.players = n_players;
		for (i = 0; i < n_players; i++) {
			struct input in = { i, world.tick, (int32_t)(i + 1), -1 };
			kcpx_session_send_datagram(players[i].s, &in, sizeof in);
			if (world.tick % CHAT_EVERY == 0) {
				char line[64];
				snprintf(line, sizeof line, "player %u says line %u", i, players[i].said++);
				if (kcpx_session_send(players[i].s, line, strlen(line)) > 0) lines++;
				else players[i].bad = 1;
			}
			if (players[i].at_server != NULL &&
			    kcpx_session_send_datagram(players[i].at_server, &world, sizeof world) == (int)sizeof world)
				states_sent++;
		}
	}
	/* Let the last chat lines arrive (reliable: they will). */
	for (j = 0; j < 200; j++) {
		uint32_t now = kcpx_now_ms();
		int all = 1;
		epoll_wait(ep, got, MAX_PLAYERS + 1, 10);
		kcpx_listener_update(l, now);
		server_events(l, &world);
		for (i = 0; i < n_players; i++) {
			kcpx_session_update(players[i].s, now);
			player_reads(i);
		}
		for (i = 0; i < n_players; i++)
			for (unsigned k = 0; k < n_players; k++) all &= players[i].heard[k] + 1 == players[k].said;
		if (all) break;
	}
	ok = 1;
	{
		unsigned long long states = 0, inputs = 0, heard = 0;
		for (i = 0; i < n_players; i++) {
			states += players[i].states;
			inputs += players[i].inputs;
			for (j = 0; j < n_players; j++) heard += players[i].heard[j];
			ok &= !players[i].bad;
			for (j = 0; j < n_players; j++) ok &= players[i].heard[j] + 1 == players[j].said;
		}
		printf("{\"ok\":%s,\"players\":%u,\"ticks\":%u,\"states_sent\":%llu,\"states_received\":%llu,"
		       "\"inputs_received\":%llu,\"chat_said\":%llu,\"chat_heard\":%llu}\n",
		       ok ? "true" : "false", n_players, world.tick, states_sent, states, inputs, lines, heard);
	}
	for (i = 0; i < n_players; i++) kcpx_session_close(players[i].s);
	kcpx_listener_close(l);
	return ok ? 0 : 1;
}
