package kcp

// kcp-go master's AES-GCM path (its aeadCrypt is a thin wrapper over Go's
// crypto/cipher GCM), measured as kcpx's `cipher aes-*-gcm` rows of
// benches/wire.rs: a 1500-byte datagram ([12-byte nonce][1472 bytes][16-byte
// tag]) sealed in place and opened in place, counted as 2 x 1500 bytes like
// kcp-go's benchCrypt. Only the standard library: it builds in Debian's
// kcp-go 5.6.1 tree, which has no GCM of its own. The nonce is a counter
// here (kcp-go master draws it from its entropy source: a little more work).

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"testing"
)

func benchGCM(b *testing.B, keyLen int) {
	block, err := aes.NewCipher(make([]byte, keyLen))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1500)
	n := aead.NonceSize()
	plain := data[n : len(data)-aead.Overhead()]
	b.ReportAllocs()
	b.SetBytes(int64(len(data) * 2))
	for i := 0; i < b.N; i++ {
		binary.LittleEndian.PutUint64(data[:8], uint64(i))
		aead.Seal(data[n:n], data[:n], plain, nil)
		if _, err := aead.Open(data[n:n], data[:n], data[n:], nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGCM128(b *testing.B) { benchGCM(b, 16) }
func BenchmarkGCM192(b *testing.B) { benchGCM(b, 24) }
func BenchmarkGCM256(b *testing.B) { benchGCM(b, 32) }
