package webhooks

import (
	"bytes"
	"io"
)

// DefaultMaxBodyBytes caps a webhook body at 1 MiB.
//
// GitHub caps a payload at 25 MB (larger ones are not delivered at all), but
// that is sized for events Ferry never subscribes to, such as a create event
// for thousands of tags. The events Ferry acts on are far smaller: a push of
// one commit is about 3–8 KB, a pull_request about 20–40 KB (mostly the
// repository objects GitHub expands into every payload), a check_run,
// check_suite or status 10–20 KB. A push payload lists every pushed commit
// with its added/modified/removed paths (GitHub's 20-commit limit applies to
// the Events API timeline, not to webhooks), so 1 MiB still holds a push of
// a few hundred ordinary commits. A larger payload is answered 413 and
// counted as too_large; nothing is lost but time, because the engine
// resolves heads and changed paths from Git and its resync picks the change
// up. Raise Options.MaxBodyBytes for repositories whose pushes are
// routinely bigger.
//
// The cap is what an unauthenticated stranger can make Ferry hold per
// request, so it is multiplied by DefaultMaxConcurrentBodies to give the
// worst case: 32 MiB.
const DefaultMaxBodyBytes = 1 << 20

// DefaultMaxConcurrentBodies is how many request bodies are read at once
// before their signatures are checked.
//
// A slot is held only while the body is read and its HMAC computed: for a
// GitHub delivery, whose body follows its headers at once, that is well
// under a millisecond on a local link and a few tens of milliseconds over
// the Internet, so 32 slots admit over a thousand deliveries a second, far
// beyond what one installation's repositories send. 32 × DefaultMaxBodyBytes
// is 32 MiB of unauthenticated bodies at most, small next to Ferry's render
// cache and a typical container limit of 256–512 MiB.
const DefaultMaxConcurrentBodies = 32

// slots is a semaphore over unauthenticated bodies. It never blocks: a
// request that finds no free slot is refused at once, so that a flood of
// slow bodies costs a stranger connections, not Ferry's memory.
type slots chan struct{}

func newSlots(n int) slots { return make(slots, n) }

// tryAcquire takes a slot if one is free.
func (s slots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) release() { <-s }

// inUse is how many slots are taken.
func (s slots) inUse() int { return len(s) }

// readBody reads a body that its caller has already limited (with
// http.MaxBytesReader) and returns it in pieces, so that the HMAC can be
// computed without ever copying an unauthenticated body. A body whose
// length was announced (GitHub always announces it) is read into one buffer
// of exactly that size; one sent chunked is read in pieces that grow to
// 256 KiB, so the memory held never passes the limit by more than a piece.
func readBody(r io.Reader, announced int64) ([][]byte, error) {
	if announced >= 0 {
		// The server ends the body at its Content-Length, and reports a
		// body cut short as io.ErrUnexpectedEOF.
		buf := make([]byte, announced)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return [][]byte{buf}, nil
	}
	var pieces [][]byte
	for size := 4 << 10; ; size = min(2*size, 256<<10) {
		p := make([]byte, size)
		n, err := fill(r, p)
		if n > 0 {
			pieces = append(pieces, p[:n])
		}
		if err == io.EOF {
			return pieces, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// fill reads into p until it is full or r fails. Unlike io.ReadFull it
// returns io.EOF as it came, so that a clean end is told apart from a body
// the server reports cut short (io.ErrUnexpectedEOF).
func fill(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// join returns the pieces as one slice, copying only when there are several.
func join(pieces [][]byte) []byte {
	switch len(pieces) {
	case 0:
		return nil
	case 1:
		return pieces[0]
	}
	return bytes.Join(pieces, nil)
}
