// Command go-peer is a real kcp-go (5.6.1, Debian's golang-github-xtaci-kcp-dev)
// peer for kcpx's interoperability tests. Build it with ../build-go-peer.sh.
//
//	go-peer server -addr 127.0.0.1:29900 [options]   echo every session's bytes back
//	go-peer client -addr 127.0.0.1:29900 [options]   send -bytes, check the echo
//	go-peer kat -out DIR                             write known-answer test files
//	go-peer clients -addr A -n N [options]           N client sessions at once (sessions.go)
//	go-peer restart -addr A -lport P [options]       a client restarted on one port (sessions.go)
//
// server and client print one JSON object on exit with kcp.DefaultSnmp's counters
// (and, for the client, whether the echo matched). Options common to both:
//
//	-crypt METHOD   any kcptun -crypt name: none aes-128 aes-192 aes-256 salsa20 blowfish
//	                twofish cast5 3des tea xtea sm4 xor (empty: no cipher, no crypto header)
//	-key HEX        raw key (default: kcptun's PBKDF2 of -password, as long as kcptun makes it)
//	-ds N -ps N                           FEC shards (0 = off)
//	-mtu N -nodelay N -interval MS -resend N -nc N -sndwnd N -rcvwnd N -stream
//	-drop PCT -seed N                     drop PCT% of outgoing datagrams (seeded PRNG)
//	-linger D                             client: stay D after the echo so late retransmissions get ACKed
package main

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
	"golang.org/x/crypto/pbkdf2"
)

type options struct {
	addr                          string
	crypt, key, password          string
	ds, ps                        int
	mtu                           int
	nodelay, interval, resend, nc int
	sndwnd, rcvwnd                int
	stream                        bool
	drop                          float64
	seed                          int64
	bytes, msgSize                int
	timeout, linger               time.Duration
	out                           string
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go-peer server|client|clients|restart|kat [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	var o options
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:29900", "listen address (server) or server address (client)")
	fs.StringVar(&o.crypt, "crypt", "", "kcptun -crypt name (none, aes-128, ..., sm4, xor), empty for no cipher")
	fs.StringVar(&o.key, "key", "", "key as hex (default: PBKDF2 of -password as kcptun)")
	fs.StringVar(&o.password, "password", "kcpx-interop", "password for the default key")
	fs.IntVar(&o.ds, "ds", 0, "FEC data shards")
	fs.IntVar(&o.ps, "ps", 0, "FEC parity shards")
	fs.IntVar(&o.mtu, "mtu", 1400, "MTU including crypto and FEC headers")
	fs.IntVar(&o.nodelay, "nodelay", 1, "KCP nodelay")
	fs.IntVar(&o.interval, "interval", 10, "KCP interval (ms)")
	fs.IntVar(&o.resend, "resend", 2, "KCP fast resend")
	fs.IntVar(&o.nc, "nc", 1, "KCP no congestion control")
	fs.IntVar(&o.sndwnd, "sndwnd", 128, "send window (segments)")
	fs.IntVar(&o.rcvwnd, "rcvwnd", 512, "receive window (segments)")
	fs.BoolVar(&o.stream, "stream", false, "stream mode")
	fs.Float64Var(&o.drop, "drop", 0, "percentage of outgoing datagrams to drop")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the drop PRNG and of the client's payload")
	fs.IntVar(&o.bytes, "bytes", 1<<20, "client: bytes to send and expect back")
	fs.IntVar(&o.msgSize, "msgsize", 1024, "client: bytes per Write")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up (client) or stop (server) after this long")
	fs.DurationVar(&o.linger, "linger", 500*time.Millisecond, "client: keep the session (and its ACKs) alive this long after the echo")
	fs.StringVar(&o.out, "out", "tests/data/kcpgo", "kat: output directory")
	sessionFlags(fs)
	fs.Parse(os.Args[2:])

	var err error
	switch mode {
	case "server":
		err = server(&o)
	case "client":
		err = client(&o)
	case "kat":
		err = writeKAT(o.out)
	case "clients":
		err = clients(&o)
	case "restart":
		err = restart(&o)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-peer:", err)
		os.Exit(1)
	}
}

// kcptunKey derives a key as kcptun does: PBKDF2-HMAC-SHA1, salt "kcp-go", 4096 rounds.
func kcptunKey(password string, n int) []byte {
	return pbkdf2.Key([]byte(password), []byte("kcp-go"), 4096, n, sha1.New)
}

// kcptunKeyLen is the key length kcptun gives each -crypt method: a prefix of
// its 32-byte PBKDF2 key.
var kcptunKeyLen = map[string]int{
	"none": 0, "aes-128": 16, "aes-192": 24, "aes-256": 32, "salsa20": 32, "blowfish": 32,
	"twofish": 32, "cast5": 16, "3des": 24, "tea": 16, "xtea": 16, "sm4": 16, "xor": 32,
}

// cryptMethods lists every method in kcptun's order.
var cryptMethods = []string{"aes-128", "aes-192", "aes-256", "salsa20", "blowfish", "twofish", "cast5", "3des", "tea", "xtea", "sm4", "xor", "none"}

// constructors maps kcptun's -crypt names to kcp-go's BlockCrypt constructors.
var constructors = map[string]func([]byte) (kcp.BlockCrypt, error){
	"none": kcp.NewNoneBlockCrypt, "aes-128": kcp.NewAESBlockCrypt, "aes-192": kcp.NewAESBlockCrypt,
	"aes-256": kcp.NewAESBlockCrypt, "salsa20": kcp.NewSalsa20BlockCrypt, "blowfish": kcp.NewBlowfishBlockCrypt,
	"twofish": kcp.NewTwofishBlockCrypt, "cast5": kcp.NewCast5BlockCrypt, "3des": kcp.NewTripleDESBlockCrypt,
	"tea": kcp.NewTEABlockCrypt, "xtea": kcp.NewXTEABlockCrypt, "sm4": kcp.NewSM4BlockCrypt,
	"xor": kcp.NewSimpleXORBlockCrypt,
}

// blockCrypt returns kcp-go's BlockCrypt for a kcptun method name and raw key
// (nil for the empty name: no cipher).
func blockCrypt(method string, key []byte) (kcp.BlockCrypt, error) {
	if method == "" {
		return nil, nil
	}
	newCrypt, ok := constructors[method]
	if !ok {
		return nil, fmt.Errorf("unknown -crypt %q", method)
	}
	// kcp-go's AES would pick its variant from the key length and its salsa20
	// zero-pads short keys: hold both to the name's length.
	if (strings.HasPrefix(method, "aes") || method == "salsa20") && len(key) != kcptunKeyLen[method] {
		return nil, fmt.Errorf("%s needs a %d-byte key, got %d", method, kcptunKeyLen[method], len(key))
	}
	return newCrypt(key)
}

func (o *options) block() (kcp.BlockCrypt, error) {
	if o.key != "" {
		key, err := hex.DecodeString(o.key)
		if err != nil {
			return nil, fmt.Errorf("-key: %v", err)
		}
		return blockCrypt(o.crypt, key)
	}
	return blockCrypt(o.crypt, kcptunKey(o.password, 32)[:kcptunKeyLen[o.crypt]])
}

func (o *options) configure(s *kcp.UDPSession) {
	s.SetStreamMode(o.stream)
	s.SetNoDelay(o.nodelay, o.interval, o.resend, o.nc)
	s.SetWindowSize(o.sndwnd, o.rcvwnd)
	s.SetMtu(o.mtu)
}

// lossyConn drops a seeded-random share of outgoing datagrams.
type lossyConn struct {
	net.PacketConn
	mu      sync.Mutex
	rng     *rand.Rand
	percent float64
	dropped uint64
}

func newLossyConn(c net.PacketConn, percent float64, seed int64) *lossyConn {
	return &lossyConn{PacketConn: c, rng: rand.New(rand.NewSource(seed)), percent: percent}
}

func (c *lossyConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	drop := c.rng.Float64()*100 < c.percent
	if drop {
		c.dropped++
	}
	c.mu.Unlock()
	if drop {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *lossyConn) droppedCount() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

type report struct {
	Mode    string    `json:"mode"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Bytes   int       `json:"bytes"`
	Millis  int64     `json:"elapsed_ms"`
	Dropped uint64    `json:"dropped_datagrams"`
	Snmp    *kcp.Snmp `json:"snmp"`
}

func printReport(r report) {
	r.Snmp = kcp.DefaultSnmp.Copy()
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

// socket returns the configured cipher and a lossy UDP socket bound to local.
func (o *options) socket(local string) (kcp.BlockCrypt, *lossyConn, error) {
	block, err := o.block()
	if err != nil {
		return nil, nil, err
	}
	udp, err := net.ListenPacket("udp", local)
	if err != nil {
		return nil, nil, err
	}
	bigBuffers(udp)
	return block, newLossyConn(udp, o.drop, o.seed), nil
}

func server(o *options) error {
	block, conn, err := o.socket(o.addr)
	if err != nil {
		return err
	}
	listener, err := kcp.ServeConn(shareable(block), o.ds, o.ps, conn)
	if err != nil {
		return err
	}
	start := time.Now()
	var echoed int64
	go func() {
		for {
			s, err := listener.AcceptKCP()
			if err != nil {
				return
			}
			o.configure(s)
			go func() {
				defer s.Close()
				buf := make([]byte, 65536)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						if _, werr := s.Write(buf[:n]); werr != nil {
							return
						}
						atomic.AddInt64(&echoed, int64(n))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-stop:
	case <-time.After(o.timeout):
	}
	listener.Close()
	printReport(report{Mode: "server", OK: true, Bytes: int(atomic.LoadInt64(&echoed)), Millis: time.Since(start).Milliseconds(), Dropped: conn.droppedCount()})
	return nil
}

func client(o *options) error {
	s, conn, err := o.dial("127.0.0.1:0", o.seed)
	if err != nil {
		return err
	}
	start := time.Now()
	err = o.echo(s, seeded(o.seed, o.bytes), start.Add(o.timeout))
	r := report{Mode: "client", Bytes: o.bytes, Millis: time.Since(start).Milliseconds()}
	if err != nil {
		r.Error = err.Error()
	}
	r.OK = err == nil
	// kcp-go has no FIN: stay a little so that retransmissions of the last
	// echoed segments (e.g. after our ACK was dropped) still get ACKed and the
	// server can see its send queue drain.
	time.Sleep(o.linger)
	r.Dropped = conn.droppedCount()
	s.Close()
	printReport(r)
	if err != nil {
		os.Exit(1)
	}
	return nil
}
