package reedsolomon

// kcpx addition, copied into a scratch copy of klauspost/reedsolomon 1.9.13 (the
// codec kcp-go's FEC encoder calls) by interop/bench-kcpgo.sh: Encode alone, 10
// data + 3 parity shards of 1400 bytes, MB/s of data shards, as kcpx's
// benches/wire.rs counts its "Reed-Solomon 10+3 encode" rows. Inside the package
// so that AVX-512 can be turned off (withAVX512 is unexported).

import "testing"

func rsEncode(b *testing.B, opts ...Option) {
	codec, err := New(10, 3, opts...)
	if err != nil {
		b.Fatal(err)
	}
	shards := make([][]byte, 13)
	for i := range shards {
		shards[i] = make([]byte, 1400)
		for j := range shards[i] {
			shards[i][j] = byte(uint32(i*1400+j) * 2654435761 >> 24)
		}
	}
	b.SetBytes(10 * 1400)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := codec.Encode(shards); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReedSolomonEncode10x3: default options, as kcp-go uses it (AVX-512
// where the CPU has AVX-512F and AVX-512BW, else AVX2).
func BenchmarkReedSolomonEncode10x3(b *testing.B) { rsEncode(b) }

// BenchmarkReedSolomonEncode10x3AVX2: AVX-512 off, so AVX2 where the CPU has it.
func BenchmarkReedSolomonEncode10x3AVX2(b *testing.B) { rsEncode(b, withAVX512(false)) }
