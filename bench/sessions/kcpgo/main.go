// Command kcpgo-bench is the kcp-go 5.6.1 side of bench/sessions/run.sh: the
// same command line, protocol and output as bench/sessions/kcpx_bench.rs
// (read its documentation). Built by run.sh from Debian's
// golang-github-xtaci-kcp-dev in GOPATH mode, as interop/build-go-peer.sh does.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

var (
	addr  = flag.String("addr", "127.0.0.1:29950", "address")
	plain = flag.Bool("plain", false, "no FEC, no cipher")
	echo  = flag.Bool("echo", false, "bulk: echo instead of sink")
	nbyte = flag.Int64("bytes", 0, "bulk: bytes")
	n     = flag.Int("n", 1, "sessions")
	hold  = flag.Float64("hold", 0, "idle: seconds to stay quiet")
	rate  = flag.Float64("rate", 20, "active: records per second per session")
	secs  = flag.Float64("secs", 10, "active: seconds measured")
	stats = flag.String("stats", "", "server: ignored (kcp-go has no syscall counters)")
)

const sockBuf = 4 << 20

// lockedBlock: kcp-go 5.6.1's listener shares one cipher object, whose
// scratch buffer its sessions would race on (kcp-go issue #183).
type lockedBlock struct {
	mu sync.Mutex
	b  kcp.BlockCrypt
}

func (l *lockedBlock) Encrypt(dst, src []byte) { l.mu.Lock(); l.b.Encrypt(dst, src); l.mu.Unlock() }
func (l *lockedBlock) Decrypt(dst, src []byte) { l.mu.Lock(); l.b.Decrypt(dst, src); l.mu.Unlock() }

func block(shared bool) (kcp.BlockCrypt, int, int) {
	if *plain {
		return nil, 0, 0
	}
	key := make([]byte, 16)
	for i := range key {
		key[i] = 0x42
	}
	b, err := kcp.NewAESBlockCrypt(key)
	if err != nil {
		panic(err)
	}
	if shared {
		return &lockedBlock{b: b}, 10, 3
	}
	return b, 10, 3
}

func configure(s *kcp.UDPSession, wnd int) {
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(wnd, wnd)
	s.SetStreamMode(true)
	s.SetWriteDelay(false)
}

func cpu() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	t := func(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }
	return t(ru.Utime) + t(ru.Stime)
}

func server() {
	b, ds, ps := block(true)
	l, err := kcp.ListenWithOptions(*addr, b, ds, ps)
	if err != nil {
		panic(err)
	}
	l.SetReadBuffer(sockBuf)
	l.SetWriteBuffer(sockBuf)
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			panic(err)
		}
		configure(s, 1024)
		go func(s *kcp.UDPSession) {
			defer s.Close()
			var h [8]byte
			if _, err := io.ReadFull(s, h[:]); err != nil {
				return
			}
			total := int64(binary.LittleEndian.Uint64(h[:]))
			buf := make([]byte, 65536)
			if total == 0 {
				io.CopyBuffer(s, s, buf)
				return
			}
			var got int64
			for got < total {
				k, err := s.Read(buf)
				if err != nil {
					return
				}
				got += int64(k)
			}
			s.Write([]byte("K"))
			io.Copy(io.Discard, s)
		}(s)
	}
}

func dial(wnd int) *kcp.UDPSession {
	b, ds, ps := block(false)
	s, err := kcp.DialWithOptions(*addr, b, ds, ps)
	if err != nil {
		panic(err)
	}
	s.SetReadBuffer(sockBuf)
	s.SetWriteBuffer(sockBuf)
	configure(s, wnd)
	return s
}

func bulk() {
	start := time.Now()
	s := dial(1024)
	var h [8]byte
	if !*echo {
		binary.LittleEndian.PutUint64(h[:], uint64(*nbyte))
	}
	go func() {
		s.Write(h[:])
		chunk := make([]byte, 65536)
		for i := range chunk {
			chunk[i] = 0x5a
		}
		for sent := int64(0); sent < *nbyte; {
			k := int64(len(chunk))
			if *nbyte-sent < k {
				k = *nbyte - sent
			}
			w, err := s.Write(chunk[:k])
			if err != nil {
				panic(err)
			}
			sent += int64(w)
		}
	}()
	want := int64(1)
	if *echo {
		want = *nbyte
	}
	buf := make([]byte, 65536)
	for got := int64(0); got < want; {
		k, err := s.Read(buf)
		if err != nil {
			panic(err)
		}
		got += int64(k)
	}
	fmt.Printf("secs=%.3f cpu=%.3f bytes=%d\n", time.Since(start).Seconds(), cpu(), *nbyte)
	os.Exit(0)
}

func idle() {
	start := time.Now()
	sessions := make([]*kcp.UDPSession, *n)
	var done int64
	var wg sync.WaitGroup
	for i := range sessions {
		s := dial(128)
		sessions[i] = s
		wg.Add(1)
		go func(s *kcp.UDPSession) {
			defer wg.Done()
			msg := make([]byte, 8+64)
			s.Write(msg)
			buf := make([]byte, 64)
			if _, err := io.ReadFull(s, buf); err != nil {
				panic(err)
			}
			atomic.AddInt64(&done, 1)
		}(s)
	}
	wg.Wait()
	fmt.Printf("ready n=%d secs=%.3f\n", *n, time.Since(start).Seconds())
	time.Sleep(time.Duration(*hold * float64(time.Second)))
	fmt.Printf("cpu=%.3f\n", cpu())
}

func active() {
	origin := time.Now()
	warm := 2 * time.Second
	end := warm + time.Duration(*secs*float64(time.Second))
	period := time.Duration(float64(time.Second) / *rate)
	var mu sync.Mutex
	var rtts []float64
	var sent int64
	var wg sync.WaitGroup
	cpu0 := cpu()
	for i := 0; i < *n; i++ {
		s := dial(128)
		s.Write(make([]byte, 8))
		phase := period * time.Duration(i) / time.Duration(*n)
		wg.Add(1)
		go func(s *kcp.UDPSession) {
			buf := make([]byte, 64)
			for {
				if _, err := io.ReadFull(s, buf); err != nil {
					return
				}
				t := time.Duration(binary.LittleEndian.Uint64(buf))
				if t >= warm {
					rtt := time.Since(origin) - t
					mu.Lock()
					rtts = append(rtts, float64(rtt)/1e6)
					mu.Unlock()
				}
			}
		}(s)
		go func(s *kcp.UDPSession) {
			defer wg.Done()
			time.Sleep(phase)
			tick := time.NewTicker(period)
			defer tick.Stop()
			rec := make([]byte, 64)
			for range tick.C {
				now := time.Since(origin)
				if now >= end {
					return
				}
				binary.LittleEndian.PutUint64(rec, uint64(now))
				s.Write(rec)
				atomic.AddInt64(&sent, 1)
			}
		}(s)
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	sort.Float64s(rtts)
	pct := func(p float64) float64 {
		if len(rtts) == 0 {
			return 0
		}
		i := int(float64(len(rtts)) * p)
		if i >= len(rtts) {
			i = len(rtts) - 1
		}
		return rtts[i]
	}
	fmt.Printf("n=%d sent=%d echoed=%d p50_ms=%.2f p99_ms=%.2f cpu=%.3f\n", *n, sent, len(rtts), pct(0.5), pct(0.99), cpu()-cpu0)
	mu.Unlock()
	os.Exit(0)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kcpgo-bench server|bulk|idle|active [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	flag.CommandLine.Parse(os.Args[2:])
	_ = net.IPv4len
	switch mode {
	case "server":
		server()
	case "bulk":
		bulk()
	case "idle":
		idle()
	case "active":
		active()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
}
