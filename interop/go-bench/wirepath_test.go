package kcp

// kcpx addition, copied into a scratch copy of kcp-go 5.6.1 by
// interop/bench-kcpgo.sh: kcp-go's own send and receive datagram paths, measured
// the way kcpx's benches/wire.rs measures its own (MTU 1400, AES-128, FEC 10/3,
// MB/s of KCP payload bytes).

import (
	"crypto/aes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

const wireMTU = 1400

var wireKCPBytes = wireMTU - cryptHeaderSize - fecHeaderSizePlus2

// wireEncode is UDPSession.output without the copy into the tx queue.
func wireEncode(enc *fecEncoder, nonce Entropy, block BlockCrypt, buf []byte) [][]byte {
	ecc := enc.encode(buf)
	nonce.Fill(buf[:nonceSize])
	binary.LittleEndian.PutUint32(buf[nonceSize:], crc32.ChecksumIEEE(buf[cryptHeaderSize:]))
	block.Encrypt(buf, buf)
	for k := range ecc {
		nonce.Fill(ecc[k][:nonceSize])
		binary.LittleEndian.PutUint32(ecc[k][nonceSize:], crc32.ChecksumIEEE(ecc[k][cryptHeaderSize:]))
		block.Encrypt(ecc[k], ecc[k])
	}
	return ecc
}

func wireSetup() (*fecEncoder, Entropy, BlockCrypt, []byte) {
	block, _ := NewAESBlockCrypt(pass[:16])
	nonce := new(nonceAES128)
	nonce.Init()
	payload := make([]byte, wireKCPBytes)
	for i := range payload {
		payload[i] = byte(uint32(i) * 2654435761 >> 24)
	}
	return newFECEncoder(10, 3, cryptHeaderSize), nonce, block, payload
}

func BenchmarkWireEncodePath(b *testing.B) {
	enc, nonce, block, payload := wireSetup()
	buf := make([]byte, wireMTU)
	b.SetBytes(int64(wireKCPBytes))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(buf[cryptHeaderSize+fecHeaderSizePlus2:], payload)
		wireEncode(enc, nonce, block, buf)
	}
}

// BenchmarkAES128EncryptOnly: kcp-go's CFB encryption alone, 1400 bytes.
func BenchmarkAES128EncryptOnly(b *testing.B) {
	block, _ := NewAESBlockCrypt(pass[:16])
	buf := make([]byte, wireMTU)
	b.SetBytes(wireMTU)
	for i := 0; i < b.N; i++ {
		block.Encrypt(buf, buf)
	}
}

func wireDecode(b *testing.B, loseEvery int) {
	enc, nonce, block, payload := wireSetup()
	var sealed [][]byte
	for g := 0; g < 1024; g++ {
		for d := 0; d < 10; d++ {
			buf := make([]byte, wireMTU)
			copy(buf[cryptHeaderSize+fecHeaderSizePlus2:], payload)
			ecc := wireEncode(enc, nonce, block, buf)
			sealed = append(sealed, buf)
			for _, p := range ecc {
				sealed = append(sealed, append([]byte(nil), p...))
			}
		}
	}
	dec := newFECDecoder(10, 3)
	scratch := make([]byte, wireMTU)
	b.SetBytes(int64(10 * wireKCPBytes / 13))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(sealed)
		if loseEvery > 0 && k%loseEvery == 5 {
			continue
		}
		copy(scratch, sealed[k])
		block.Decrypt(scratch, scratch)
		if crc32.ChecksumIEEE(scratch[cryptHeaderSize:]) != binary.LittleEndian.Uint32(scratch[nonceSize:]) {
			b.Fatal("checksum")
		}
		for _, r := range dec.decode(fecPacket(scratch[cryptHeaderSize:])) {
			xmitBuf.Put(r)
		}
	}
}

func BenchmarkWireDecodePathNoLoss(b *testing.B)    { wireDecode(b, 0) }
func BenchmarkWireDecodePathLoss1of13(b *testing.B) { wireDecode(b, 13) }

var _ = aes.BlockSize
