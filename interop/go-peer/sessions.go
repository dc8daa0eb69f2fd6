// Session modes of go-peer: many kcp-go clients at once, and a client restarted
// on the same local port (kcp-go's sn == 0 session replacement).
//
//	go-peer clients -addr A -n 100 -bytes 262144 [options]
//	go-peer restart -addr A -lport P [-gap D] -bytes N [options]
//
// clients: -n sessions at once, each from its own UDP socket on an ephemeral port
// (as kcp.DialWithOptions makes them, so one server session per client address),
// each with a random conv. Session i writes -bytes of random data seeded -seed+i in
// -msgsize writes, reads the echo back and checks it byte for byte; with -drop its
// socket drops that share of outgoing datagrams with a PRNG seeded -seed+i. Prints
// one JSON object: sessions, sessions_ok, sessions_failed, bytes (echoed and
// checked, all sessions), elapsed_ms, dropped_datagrams, the first errors and
// kcp.DefaultSnmp's counters. Exits 1 when a session failed or -timeout passed.
//
// restart: a client on 127.0.0.1:P (-lport; 0 picks a free port) echoes -bytes
// (seed -seed), lingers (-linger), closes its session and its socket; after -gap a
// new client on the same 127.0.0.1:P with a new random conv echoes -bytes (seed
// -seed+1). The server still holds the first session for that address: it must
// replace it when the new conv arrives with sn == 0. Prints one JSON object with
// both convs, the port, and whether each echo matched; exits 1 unless both did.
//
// Every session of these modes gets its own cipher object: kcp-go's ciphers keep
// per-object scratch buffers and are not safe for concurrent use.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"sync"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

var (
	sessionsN   int
	restartPort int
	restartGap  time.Duration
)

// sessionFlags adds the flags of the session modes to fs.
func sessionFlags(fs *flag.FlagSet) {
	fs.IntVar(&sessionsN, "n", 100, "clients: concurrent sessions")
	fs.IntVar(&restartPort, "lport", 0, "restart: local UDP port of both clients (0: a free one)")
	fs.DurationVar(&restartGap, "gap", 0, "restart: pause between the first client's close and the second's start")
}

// lockedBlock serialises a cipher shared by goroutines: kcp-go 5.6.1's ciphers
// encrypt through a scratch buffer inside the cipher object, and a Listener
// passes its one cipher to every session, whose outputs run concurrently (kcp-go
// issue #183). Unlocked, concurrent sessions corrupt each other's datagrams,
// which their peer then rejects as checksum errors.
type lockedBlock struct {
	mu sync.Mutex
	b  kcp.BlockCrypt
}

func (l *lockedBlock) Encrypt(dst, src []byte) {
	l.mu.Lock()
	l.b.Encrypt(dst, src)
	l.mu.Unlock()
}

func (l *lockedBlock) Decrypt(dst, src []byte) {
	l.mu.Lock()
	l.b.Decrypt(dst, src)
	l.mu.Unlock()
}

// shareable returns a cipher that sessions of one listener may share.
func shareable(b kcp.BlockCrypt) kcp.BlockCrypt {
	if b == nil {
		return nil
	}
	return &lockedBlock{b: b}
}

// sockBuf is the receive and send buffer size asked for every socket, kcptun's
// default -sockbuf (the kernel caps it at net.core.rmem_max / wmem_max). With
// the default ~208 KiB, a server with 100 sessions overflows its receive buffer
// at every burst of their send windows.
const sockBuf = 4 << 20

func bigBuffers(c net.PacketConn) {
	if u, ok := c.(*net.UDPConn); ok {
		u.SetReadBuffer(sockBuf)
		u.SetWriteBuffer(sockBuf)
	}
}

// dial opens a kcp-go client session to o.addr from a new UDP socket bound to
// local, with its own cipher object and its own drop PRNG (seed). Closing the
// session leaves the socket open: close conn too.
func (o *options) dial(local string, seed int64) (*kcp.UDPSession, *lossyConn, error) {
	raddr, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return nil, nil, err
	}
	withSeed := *o
	withSeed.seed = seed
	block, conn, err := withSeed.socket(local)
	if err != nil {
		return nil, nil, err
	}
	s, err := kcp.NewConn2(raddr, block, o.ds, o.ps, conn)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	o.configure(s)
	return s, conn, nil
}

// echo writes payload to s in -msgsize writes while reading as many bytes back,
// and fails unless they are the same bytes by deadline.
func (o *options) echo(s *kcp.UDPSession, payload []byte, deadline time.Time) error {
	s.SetDeadline(deadline)
	writeErr := make(chan error, 1)
	go func() {
		for off := 0; off < len(payload); off += o.msgSize {
			end := off + o.msgSize
			if end > len(payload) {
				end = len(payload)
			}
			if _, err := s.Write(payload[off:end]); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	got := make([]byte, len(payload))
	_, err := io.ReadFull(s, got)
	if err == nil {
		err = <-writeErr
	}
	if err == nil && string(got) != string(payload) {
		err = errors.New("echo differs from what was sent")
	}
	return err
}

func seeded(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// localFor is the wildcard address of o.addr's family, port 0.
func (o *options) localFor() string {
	if raddr, err := net.ResolveUDPAddr("udp", o.addr); err == nil && raddr.IP.To4() == nil {
		return "[::]:0"
	}
	return "0.0.0.0:0"
}

func printJSON(v interface{}) {
	out, _ := json.Marshal(v)
	fmt.Println(string(out))
}

type clientsReport struct {
	Mode     string    `json:"mode"`
	OK       bool      `json:"ok"`
	Sessions int       `json:"sessions"`
	Good     int       `json:"sessions_ok"`
	Failed   int       `json:"sessions_failed"`
	Bytes    int64     `json:"bytes"`
	Millis   int64     `json:"elapsed_ms"`
	Dropped  uint64    `json:"dropped_datagrams"`
	Errors   []string  `json:"errors,omitempty"`
	Snmp     *kcp.Snmp `json:"snmp"`
}

// clients runs -n echo sessions at once.
func clients(o *options) error {
	if sessionsN < 1 {
		return fmt.Errorf("-n must be at least 1")
	}
	start := time.Now()
	deadline := start.Add(o.timeout)
	var mu sync.Mutex
	errs := make([]error, sessionsN)
	finished := make([]bool, sessionsN)
	var dropped uint64
	var wg sync.WaitGroup
	for i := 0; i < sessionsN; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			seed := o.seed + int64(i)
			s, conn, err := o.dial(o.localFor(), seed)
			if err == nil {
				err = o.echo(s, seeded(seed, o.bytes), deadline)
				// kcp-go has no FIN: stay so that late retransmissions get ACKed.
				time.Sleep(o.linger)
				s.Close()
				conn.Close()
			}
			mu.Lock()
			errs[i], finished[i] = err, true
			if conn != nil {
				dropped += conn.droppedCount()
			}
			mu.Unlock()
		}(i)
	}
	// The sessions' deadlines end their reads and writes, so all finish within
	// -timeout + -linger; this guard only catches a stuck close.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(o.timeout + o.linger + 5*time.Second):
	}
	r := clientsReport{Mode: "clients", Sessions: sessionsN, Millis: time.Since(start).Milliseconds()}
	mu.Lock()
	r.Dropped = dropped
	for i := range errs {
		err := errs[i]
		if !finished[i] {
			err = errors.New("still running after -timeout")
		}
		if err == nil {
			r.Good++
			r.Bytes += int64(o.bytes)
			continue
		}
		r.Failed++
		if len(r.Errors) < 5 {
			r.Errors = append(r.Errors, fmt.Sprintf("session %d: %v", i, err))
		}
	}
	mu.Unlock()
	r.OK = r.Failed == 0
	r.Snmp = kcp.DefaultSnmp.Copy()
	printJSON(r)
	if !r.OK {
		os.Exit(1)
	}
	return nil
}

type restartReport struct {
	Mode    string    `json:"mode"`
	OK      bool      `json:"ok"`
	Port    int       `json:"port"`
	Conv1   uint32    `json:"conv1"`
	Conv2   uint32    `json:"conv2"`
	OK1     bool      `json:"first_ok"`
	OK2     bool      `json:"second_ok"`
	Error   string    `json:"error,omitempty"`
	Bytes   int       `json:"bytes"`
	Millis  int64     `json:"elapsed_ms"`
	Dropped uint64    `json:"dropped_datagrams"`
	Snmp    *kcp.Snmp `json:"snmp"`
}

// restart echoes from one local port twice, with two sessions of different convs.
func restart(o *options) error {
	start := time.Now()
	deadline := start.Add(o.timeout)
	r := restartReport{Mode: "restart", Port: restartPort}
	if r.Port == 0 {
		probe, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		r.Port = probe.LocalAddr().(*net.UDPAddr).Port
		probe.Close()
	}
	local := fmt.Sprintf("127.0.0.1:%d", r.Port)
	var errs []string
	for round := 0; round < 2; round++ {
		if round == 1 {
			time.Sleep(restartGap)
		}
		seed := o.seed + int64(round)
		s, conn, err := o.dial(local, seed)
		if err != nil {
			return fmt.Errorf("client %d on %s: %v", round+1, local, err)
		}
		conv := s.GetConv()
		err = o.echo(s, seeded(seed, o.bytes), deadline)
		time.Sleep(o.linger)
		s.Close()
		conn.Close() // ends the session's read loop; the port is free again
		r.Dropped += conn.droppedCount()
		if round == 0 {
			r.Conv1, r.OK1 = conv, err == nil
		} else {
			r.Conv2, r.OK2 = conv, err == nil
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("client %d (conv %08x): %v", round+1, conv, err))
		} else {
			r.Bytes += o.bytes
		}
	}
	if r.Conv1 == r.Conv2 {
		errs = append(errs, "both clients drew the same conv")
	}
	r.OK = len(errs) == 0
	if !r.OK {
		r.Error = fmt.Sprint(errs)
	}
	r.Millis = time.Since(start).Milliseconds()
	r.Snmp = kcp.DefaultSnmp.Copy()
	printJSON(r)
	if !r.OK {
		os.Exit(1)
	}
	return nil
}
