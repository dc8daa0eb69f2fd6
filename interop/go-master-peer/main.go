// Command go-master-peer is a kcp-go master (v5.6.72) peer for
// tests/interop_master.rs: AES-GCM (kcp-go's NewAESGCMCrypt) and the
// CFB ciphers, FEC, and out-of-band messages (SendOOB, SetOOBHandler).
// Build it with ../build-go-master-peer.sh against a master source tree
// (KCPGO_MASTER_SRC).
//
//	go-master-peer server -addr 127.0.0.1:29900 [options]  echo every session's bytes back (until -timeout or SIGTERM)
//	go-master-peer client -addr 127.0.0.1:29900 [options]  send -bytes, check the echo
//
// Options:
//
//	-crypt METHOD   aes-128-gcm aes-192-gcm aes-256-gcm (AEAD), aes-128 aes-192 aes-256 (CFB), or empty
//	-key HEX        raw key (16, 24 or 32 bytes; default 16/24/32 bytes of 0x42 as the method needs)
//	-ds N -ps N     FEC shards (0 = off)
//	-mtu N -bytes N -timeout D -linger D
//	-oob N -oob-interval D   send N out-of-band messages ("oob <i>") at that interval while the stream runs
//
// Output on stdout, one line each, on exit:
//
//	oob sent=N recv=M crc=XXXXXXXX   (CRC-32/IEEE of the received OOB payloads, concatenated in arrival order)
//	oob-msg HEX                      (server and client: each received OOB payload, in order, before the line above)
//	result ok|mismatch|timeout bytes=N   (client only)
//	snmp {json}                      kcp.DefaultSnmp's counters
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

type options struct {
	addr, crypt, key        string
	ds, ps, mtu, bytes, oob int
	timeout, linger, every  time.Duration
}

// oobLog records what the OOB handler received.
type oobLog struct {
	mu   sync.Mutex
	msgs [][]byte
	sent int
}

func (l *oobLog) handler(p []byte) {
	l.mu.Lock()
	l.msgs = append(l.msgs, append([]byte(nil), p...))
	l.mu.Unlock()
}

func (l *oobLog) print() {
	l.mu.Lock()
	defer l.mu.Unlock()
	crc := crc32.NewIEEE()
	for _, m := range l.msgs {
		fmt.Printf("oob-msg %s\n", hex.EncodeToString(m))
		crc.Write(m)
	}
	fmt.Printf("oob sent=%d recv=%d crc=%08x\n", l.sent, len(l.msgs), crc.Sum32())
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-master-peer: "+format+"\n", a...)
	os.Exit(1)
}

func block(o *options) kcp.BlockCrypt {
	if o.crypt == "" {
		return nil
	}
	size := map[string]int{"128": 16, "192": 24, "256": 32}[strings.Split(o.crypt, "-")[1]]
	key := bytes.Repeat([]byte{0x42}, size)
	if o.key != "" {
		var err error
		if key, err = hex.DecodeString(o.key); err != nil {
			die("bad -key: %v", err)
		}
	}
	var b kcp.BlockCrypt
	var err error
	if strings.HasSuffix(o.crypt, "-gcm") {
		b, err = kcp.NewAESGCMCrypt(key)
	} else if strings.HasPrefix(o.crypt, "aes-") {
		b, err = kcp.NewAESBlockCrypt(key)
	} else {
		die("unknown -crypt %q", o.crypt)
	}
	if err != nil {
		die("%s: %v", o.crypt, err)
	}
	return b
}

func tune(s *kcp.UDPSession, o *options, log *oobLog) {
	s.SetStreamMode(true)
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(256, 256)
	s.SetWriteDelay(false)
	s.SetACKNoDelay(true)
	if !s.SetMtu(o.mtu) {
		die("SetMtu(%d) refused", o.mtu)
	}
	if o.ds > 0 {
		if err := s.SetOOBHandler(log.handler); err != nil {
			die("SetOOBHandler: %v", err)
		}
	}
}

// sendOOB sends o.oob messages at o.every until done closes.
func sendOOB(s *kcp.UDPSession, o *options, log *oobLog, done <-chan struct{}) {
	for i := 0; i < o.oob; i++ {
		select {
		case <-done:
			return
		case <-time.After(o.every):
		}
		if err := s.SendOOB([]byte(fmt.Sprintf("oob %d", i))); err != nil {
			if errors.Is(err, io.ErrClosedPipe) { // the session closed meanwhile
				return
			}
			die("SendOOB: %v", err)
		}
		log.mu.Lock()
		log.sent++
		log.mu.Unlock()
	}
}

func server(o *options, log *oobLog) {
	l, err := kcp.ListenWithOptions(o.addr, block(o), o.ds, o.ps)
	if err != nil {
		die("listen: %v", err)
	}
	_ = l.SetReadBuffer(4 << 20)
	_ = l.SetWriteBuffer(4 << 20)
	fmt.Printf("listening %s\n", l.Addr())
	// Stop at the deadline or at SIGTERM, then print what was received.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		select {
		case <-stop:
		case <-time.After(o.timeout):
		}
		_ = l.Close()
	}()
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			return
		}
		tune(s, o, log)
		done := make(chan struct{})
		go sendOOB(s, o, log, done)
		go func() {
			defer close(done)
			_, _ = io.Copy(s, s)
		}()
	}
}

func client(o *options, log *oobLog) string {
	s, err := kcp.DialWithOptions(o.addr, block(o), o.ds, o.ps)
	if err != nil {
		die("dial: %v", err)
	}
	_ = s.SetReadBuffer(4 << 20)
	_ = s.SetWriteBuffer(4 << 20)
	tune(s, o, log)
	payload := make([]byte, o.bytes)
	rand.New(rand.NewSource(7)).Read(payload)
	done := make(chan struct{})
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		sendOOB(s, o, log, done)
	}()
	go func() {
		if _, err := s.Write(payload); err != nil {
			die("write: %v", err)
		}
	}()
	_ = s.SetReadDeadline(time.Now().Add(o.timeout))
	got := make([]byte, o.bytes)
	n, err := io.ReadFull(s, got)
	result := "ok"
	if err != nil {
		result = "timeout"
	} else if !bytes.Equal(got, payload) {
		result = "mismatch"
	}
	close(done)
	sender.Wait()
	time.Sleep(o.linger) // so that the last ACKs reach the other side
	_ = s.Close()
	return fmt.Sprintf("result %s bytes=%d", result, n)
}

func main() {
	if len(os.Args) < 2 {
		die("usage: go-master-peer server|client [flags]")
	}
	mode := os.Args[1]
	var o options
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:29900", "listen address (server) or server address (client)")
	fs.StringVar(&o.crypt, "crypt", "", "aes-128-gcm, aes-256-gcm, aes-128, ... or empty")
	fs.StringVar(&o.key, "key", "", "raw key as hex")
	fs.IntVar(&o.ds, "ds", 0, "FEC data shards")
	fs.IntVar(&o.ps, "ps", 0, "FEC parity shards")
	fs.IntVar(&o.mtu, "mtu", 1400, "MTU including crypto and FEC headers and the GCM tag")
	fs.IntVar(&o.bytes, "bytes", 4<<20, "client: bytes to send and expect back")
	fs.IntVar(&o.oob, "oob", 0, "out-of-band messages to send")
	fs.DurationVar(&o.every, "oob-interval", 50*time.Millisecond, "interval between OOB messages")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "server: lifetime; client: time to get the echo")
	fs.DurationVar(&o.linger, "linger", 300*time.Millisecond, "client: stay after the echo")
	_ = fs.Parse(os.Args[2:])
	log := &oobLog{}
	result := ""
	switch mode {
	case "server":
		server(&o, log)
	case "client":
		result = client(&o, log)
	default:
		die("unknown mode %q", mode)
	}
	log.print()
	if result != "" {
		fmt.Println(result)
	}
	snmp, _ := json.Marshal(kcp.DefaultSnmp.Copy())
	fmt.Printf("snmp %s\n", snmp)
}
