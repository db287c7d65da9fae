package syncpipe

import (
	"encoding/binary"
	"fmt"
)

// Wire framing. A message payload is split into fragments, one datagram each:
//
//	byte 0    version (1)
//	byte 1    flags: flagFirst on the first fragment, flagLast on the last (both when one)
//	byte 2    number of fds attached (first fragment only; others carry none)
//	byte 3    zero
//	bytes 4-7 payload length of the whole message, big endian, the same in every fragment
//	bytes 8-  this fragment's share of the payload
const (
	headerLen = 8
	version   = 1
	flagFirst = 1 << 0
	flagLast  = 1 << 1

	// MaxMessageSize is the largest payload (kind name plus JSON body) one message may have.
	MaxMessageSize = 4 << 20
	// MaxFiles is the most file descriptors one message may carry.
	MaxFiles = 16
	// maxFragment is the payload of one datagram: well under the default socket buffer
	// (net.core.wmem_default), which bounds a SOCK_SEQPACKET datagram.
	maxFragment = 64 << 10
)

// fragments splits payload into datagrams carrying nfds on the first.
func fragments(payload []byte, nfds int) [][]byte {
	var out [][]byte
	off := 0
	for {
		n := min(len(payload)-off, maxFragment)
		d := make([]byte, headerLen+n)
		d[0] = version
		if off == 0 {
			d[1] |= flagFirst
			d[2] = byte(nfds)
		}
		if off+n == len(payload) {
			d[1] |= flagLast
		}
		binary.BigEndian.PutUint32(d[4:8], uint32(len(payload)))
		copy(d[headerLen:], payload[off:off+n])
		out = append(out, d)
		off += n
		if off == len(payload) {
			return out
		}
	}
}

// assembler rebuilds one message from its datagrams. It is pure so the fuzzer can drive it.
type assembler struct {
	started bool
	total   int
	nfds    int
	payload []byte
}

// inProgress reports whether a message has begun but not ended.
func (a *assembler) inProgress() bool { return a.started }

// add takes one datagram and the number of fds that came with it. It returns the payload when
// the message is complete. Any error leaves the stream out of step: the caller must give up.
func (a *assembler) add(d []byte, nfds int) (payload []byte, done bool, err error) {
	if len(d) < headerLen {
		return nil, false, fmt.Errorf("%w: datagram of %d bytes is shorter than the header", ErrMalformed, len(d))
	}
	if d[0] != version {
		return nil, false, fmt.Errorf("%w: version %d, want %d", ErrMalformed, d[0], version)
	}
	flags, hdrFDs, total := d[1], int(d[2]), int(binary.BigEndian.Uint32(d[4:8]))
	if flags&^(flagFirst|flagLast) != 0 || d[3] != 0 {
		return nil, false, fmt.Errorf("%w: unknown header bits", ErrMalformed)
	}
	body := d[headerLen:]
	if len(body) > maxFragment {
		return nil, false, fmt.Errorf("%w: fragment of %d bytes exceeds %d", ErrMessageTooLarge, len(body), maxFragment)
	}
	if flags&flagFirst != 0 {
		if a.started {
			return nil, false, fmt.Errorf("%w: new message before the previous one ended", ErrMalformed)
		}
		if total > MaxMessageSize {
			return nil, false, fmt.Errorf("%w: %d bytes exceed %d", ErrMessageTooLarge, total, MaxMessageSize)
		}
		if hdrFDs > MaxFiles || hdrFDs != nfds {
			return nil, false, fmt.Errorf("%w: header announces %d fds, %d arrived (at most %d)", ErrMalformed, hdrFDs, nfds, MaxFiles)
		}
		*a = assembler{started: true, total: total, nfds: nfds, payload: make([]byte, 0, min(total, maxFragment))}
	} else {
		switch {
		case !a.started:
			return nil, false, fmt.Errorf("%w: continuation fragment without a first", ErrMalformed)
		case total != a.total:
			return nil, false, fmt.Errorf("%w: fragment length %d differs from the message's %d", ErrMalformed, total, a.total)
		case hdrFDs != 0 || nfds != 0:
			return nil, false, fmt.Errorf("%w: fds on a continuation fragment", ErrMalformed)
		}
	}
	if len(a.payload)+len(body) > a.total {
		return nil, false, fmt.Errorf("%w: fragments exceed the announced %d bytes", ErrMalformed, a.total)
	}
	a.payload = append(a.payload, body...)
	if flags&flagLast == 0 {
		// Full fragments bound the number of datagrams a message can take.
		if len(body) != maxFragment {
			return nil, false, fmt.Errorf("%w: short fragment (%d bytes) before the last", ErrMalformed, len(body))
		}
		return nil, false, nil
	}
	if len(a.payload) != a.total {
		return nil, false, fmt.Errorf("%w: message ended at %d of %d bytes", ErrMalformed, len(a.payload), a.total)
	}
	payload = a.payload
	*a = assembler{}
	return payload, true, nil
}
