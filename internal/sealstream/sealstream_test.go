package sealstream_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/steward-privacy/steward/internal/sealstream"
)

func seal(t testing.TB, key, aad, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := sealstream.NewWriter(&buf, key, aad)
	if err != nil {
		t.Fatal(err)
	}
	// Odd-sized writes, so chunk boundaries fall inside writes.
	for rest := plain; len(rest) > 0; {
		n := min(len(rest), 10007)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func open(key, aad, sealed []byte) ([]byte, error) {
	r, err := sealstream.NewReader(bytes.NewReader(sealed), key, aad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

var sizes = []int{0, 1, 100, sealstream.ChunkSize - 1, sealstream.ChunkSize, sealstream.ChunkSize + 1, 3*sealstream.ChunkSize + 5, 4 * sealstream.ChunkSize}

func TestRoundTrip(t *testing.T) {
	key, _ := sealstream.NewKey()
	aad := []byte("request/1/task/2/file/3")
	for _, n := range sizes {
		plain := random(t, n)
		sealed := seal(t, key, aad, plain)
		if got, want := int64(len(sealed)), int64(n)+sealstream.Overhead(int64(n)); got != want {
			t.Errorf("size %d: sealed %d bytes, Overhead predicts %d", n, got, want)
		}
		if bytes.Contains(sealed, plain) && n > 16 {
			t.Errorf("size %d: plaintext visible in the sealed stream", n)
		}
		got, err := open(key, aad, sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("size %d: open: %v (equal %v)", n, err, bytes.Equal(got, plain))
		}
		// A reader that returns one byte at a time must see the same.
		r, err := sealstream.NewReader(iotest.OneByteReader(bytes.NewReader(sealed)), key, aad)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("size %d via one-byte reads: %v", n, err)
		}
	}
}

func TestSealedTwiceDiffers(t *testing.T) {
	key, _ := sealstream.NewKey()
	plain := random(t, 1000)
	if bytes.Equal(seal(t, key, nil, plain), seal(t, key, nil, plain)) {
		t.Fatal("two seals of the same plaintext are identical: the nonce prefix is not random")
	}
}

func TestTampering(t *testing.T) {
	key, _ := sealstream.NewKey()
	other, _ := sealstream.NewKey()
	aad := []byte("file-a")
	plain := random(t, 3*sealstream.ChunkSize+5)
	sealed := seal(t, key, aad, plain)
	const header = 5 + 7
	chunk := sealstream.ChunkSize + 16
	c := func(i int) []byte { return sealed[header+i*chunk : min(header+(i+1)*chunk, len(sealed))] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 1; return b }

	cases := []struct {
		name   string
		key    []byte
		aad    []byte
		sealed []byte
	}{
		{"wrong key", other, aad, sealed},
		{"wrong associated data", key, []byte("file-b"), sealed},
		{"last chunk dropped", key, aad, sealed[:header+3*chunk]},
		{"cut inside a chunk", key, aad, sealed[:header+chunk+100]},
		{"two chunks swapped", key, aad, cat(sealed[:header], c(1), c(0), c(2), c(3))},
		{"a chunk repeated", key, aad, cat(sealed[:header], c(0), c(0), c(1), c(2), c(3))},
		{"junk appended", key, aad, cat(sealed, []byte{0})},
		{"a chunk appended after the last", key, aad, cat(sealed, c(3))},
		{"bit flipped in the prefix", key, aad, flip(6)},
		{"bit flipped in a chunk", key, aad, flip(header + chunk + 7)},
		{"bit flipped in a tag", key, aad, flip(len(sealed) - 1)},
		{"bad magic", key, aad, flip(0)},
		{"header only", key, aad, sealed[:header]},
		{"short header", key, aad, sealed[:3]},
		{"empty", key, aad, nil},
	}
	for _, tc := range cases {
		got, err := open(tc.key, tc.aad, tc.sealed)
		if !errors.Is(err, sealstream.ErrCorrupt) {
			t.Errorf("%s: want ErrCorrupt, got %v (%d bytes)", tc.name, err, len(got))
		}
	}
}

func TestBadKeys(t *testing.T) {
	if _, err := sealstream.NewWriter(io.Discard, make([]byte, 16), nil); err == nil {
		t.Error("a 16-byte key was accepted")
	}
	if _, err := sealstream.NewReader(bytes.NewReader(nil), nil, nil); err == nil {
		t.Error("a nil key was accepted")
	}
}

func TestWriteAfterClose(t *testing.T) {
	key, _ := sealstream.NewKey()
	w, err := sealstream.NewWriter(io.Discard, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("write after close accepted")
	}
}

// FuzzOpen: no input makes the reader panic or return unauthenticated
// data; a stream sealed under the fuzz key opens to what was sealed.
func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, sealstream.KeySize)
	for _, n := range []int{0, 1, 100, sealstream.ChunkSize + 1} {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		f.Add(seal(f, key, []byte("aad"), plain), plain)
	}
	f.Add([]byte("STWS1"), []byte{})
	f.Fuzz(func(t *testing.T, sealed, plain []byte) {
		if got, err := open(key, []byte("aad"), sealed); err == nil {
			// Only a genuine stream opens; re-sealing what it held must
			// give a stream that opens to the same bytes.
			again, err := open(key, []byte("aad"), seal(t, key, []byte("aad"), got))
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("reseal of an opened stream: %v", err)
			}
		}
		got, err := open(key, []byte("aad"), seal(t, key, []byte("aad"), plain))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("round trip of %d bytes: %v", len(plain), err)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	key, _ := sealstream.NewKey()
	plain := random(b, 8<<20)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		w, _ := sealstream.NewWriter(io.Discard, key, nil)
		_, _ = w.Write(plain)
		_ = w.Close()
	}
}
