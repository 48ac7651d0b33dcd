// Package sealstream encrypts a stream of any length with AES-256-GCM in
// fixed-size chunks, so files of a person's export (uploads, generated
// images, whole packages) are encrypted at rest without ever being held in
// memory.
//
// One GCM seal over a whole file would need the whole file in memory to
// authenticate before releasing plaintext; naive chunking lets an attacker
// with write access to the store drop, reorder or truncate chunks unnoticed.
// This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár
// 2015), as used by Tink's streaming AEAD and age: each chunk is sealed with
// a nonce made of a random per-stream prefix, the chunk's index and a flag
// marking the last chunk. Reordering changes the index, truncation loses
// the flagged last chunk, appending follows it; all three fail to open.
//
// Format: "STWS1" || 7-byte nonce prefix || chunks. A chunk is up to
// ChunkSize plaintext bytes sealed (ciphertext + 16-byte tag); every chunk
// but the last is full, and the last one (possibly empty) has the flag set.
//
// Keys are 32 random bytes per stream, wrapped by the caller's master key
// (keyring.Keyring.Seal): a leaked stream key exposes one file, and key
// rotation rewraps 32 bytes rather than re-encrypting gigabytes.
package sealstream

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ChunkSize is the plaintext size of every chunk but the last.
const ChunkSize = 64 << 10

// KeySize is the size of a stream key.
const KeySize = 32

const (
	magic      = "STWS1"
	prefixSize = 7
	tagSize    = 16
	headerSize = len(magic) + prefixSize
)

// ErrCorrupt means the stream was altered, truncated, or sealed under
// another key or associated data.
var ErrCorrupt = errors.New("sealstream: stream is corrupt or was tampered with")

// NewKey returns a fresh random stream key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("sealstream: key: %w", err)
	}
	return k, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("sealstream: key must be %d bytes, got %d", KeySize, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealstream: %w", err)
	}
	return cipher.NewGCM(b)
}

func nonce(prefix []byte, index uint32, last bool) []byte {
	n := make([]byte, 12)
	copy(n, prefix)
	binary.BigEndian.PutUint32(n[prefixSize:], index)
	if last {
		n[11] = 1
	}
	return n
}

// Writer seals what is written to it onto an underlying writer. Close
// seals the last chunk; without it the stream does not open.
type Writer struct {
	w      io.Writer
	aead   cipher.AEAD
	aad    []byte
	prefix []byte
	index  uint32
	buf    []byte // pending plaintext, < ChunkSize after each Write
	out    []byte
	err    error
	closed bool
}

// NewWriter writes the header to w and returns a Writer sealing under key
// with aad bound to every chunk (e.g. the file's identity, so a stream
// cannot be passed off as another).
func NewWriter(w io.Writer, key, aad []byte) (*Writer, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	prefix := make([]byte, prefixSize)
	if _, err := rand.Read(prefix); err != nil {
		return nil, fmt.Errorf("sealstream: nonce: %w", err)
	}
	if _, err := io.WriteString(w, magic); err != nil {
		return nil, err
	}
	if _, err := w.Write(prefix); err != nil {
		return nil, err
	}
	return &Writer{w: w, aead: aead, aad: append([]byte(nil), aad...), prefix: prefix,
		buf: make([]byte, 0, ChunkSize), out: make([]byte, 0, ChunkSize+tagSize)}, nil
}

// Write buffers p and seals every full chunk. A chunk is sealed only once
// more data follows it, so the last chunk can carry the flag.
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	if sw.closed {
		return 0, errors.New("sealstream: write after close")
	}
	n := 0
	for len(p) > 0 {
		if len(sw.buf) == ChunkSize {
			if err := sw.seal(false); err != nil {
				return n, err
			}
		}
		k := copy(sw.buf[len(sw.buf):ChunkSize], p)
		sw.buf = sw.buf[:len(sw.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

func (sw *Writer) seal(last bool) error {
	if sw.index == ^uint32(0) {
		sw.err = errors.New("sealstream: stream too long")
		return sw.err
	}
	sw.out = sw.aead.Seal(sw.out[:0], nonce(sw.prefix, sw.index, last), sw.buf, sw.aad)
	sw.index++
	sw.buf = sw.buf[:0]
	if _, err := sw.w.Write(sw.out); err != nil {
		sw.err = err
		return err
	}
	return nil
}

// Close seals the last chunk. It does not close the underlying writer.
func (sw *Writer) Close() error {
	if sw.closed {
		return sw.err
	}
	sw.closed = true
	if sw.err != nil {
		return sw.err
	}
	return sw.seal(true)
}

// Reader opens a stream sealed by Writer, releasing plaintext chunk by
// chunk as each authenticates. A reader of a tampered stream gets
// ErrCorrupt, possibly after the chunks before the damage; a consumer that
// must not act on partial data (a download) reads to io.EOF before
// committing to anything.
type Reader struct {
	r      io.Reader
	aead   cipher.AEAD
	aad    []byte
	prefix []byte
	index  uint32
	in     []byte // the next chunk's ciphertext; one byte more to see the end
	plain  []byte
	pos    int
	done   bool
	err    error
}

// NewReader reads the header from r and returns a Reader opening under key
// and aad.
func NewReader(r io.Reader, key, aad []byte) (*Reader, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	h := make([]byte, headerSize)
	if _, err := io.ReadFull(r, h); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrCorrupt
		}
		return nil, err
	}
	if string(h[:len(magic)]) != magic {
		return nil, ErrCorrupt
	}
	return &Reader{r: r, aead: aead, aad: append([]byte(nil), aad...), prefix: h[len(magic):],
		in: make([]byte, 0, ChunkSize+tagSize+1)}, nil
}

// Read returns authenticated plaintext.
func (sr *Reader) Read(p []byte) (int, error) {
	for sr.pos == len(sr.plain) {
		if sr.err != nil {
			return 0, sr.err
		}
		if sr.done {
			return 0, io.EOF
		}
		sr.next()
	}
	n := copy(p, sr.plain[sr.pos:])
	sr.pos += n
	return n, nil
}

// next opens the next chunk. It reads one byte past a full chunk: if the
// stream ends there, that chunk is the last one and must carry the flag.
func (sr *Reader) next() {
	full := ChunkSize + tagSize
	// sr.in may hold the byte read past the previous chunk.
	for len(sr.in) < full+1 {
		n, err := sr.r.Read(sr.in[len(sr.in) : full+1])
		sr.in = sr.in[:len(sr.in)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			sr.err = err
			return
		}
	}
	last := len(sr.in) <= full
	chunk := sr.in
	if !last {
		chunk = sr.in[:full]
	}
	if len(chunk) < tagSize {
		sr.err = ErrCorrupt
		return
	}
	plain, err := sr.aead.Open(sr.plain[:0], nonce(sr.prefix, sr.index, last), chunk, sr.aad)
	if err != nil {
		sr.err = ErrCorrupt
		return
	}
	sr.plain, sr.pos = plain, 0
	sr.index++
	if last {
		sr.done = true
		sr.in = sr.in[:0]
		return
	}
	// Keep the byte read past this chunk for the next one.
	extra := sr.in[full]
	sr.in = append(sr.in[:0], extra)
}

// Overhead is how many bytes sealing n plaintext bytes adds.
func Overhead(n int64) int64 {
	// Every chunk is full but the last, which may be empty only when the
	// whole stream is.
	chunks := max(1, (n+ChunkSize-1)/ChunkSize)
	return int64(headerSize) + chunks*tagSize
}
