package syncpipe

import (
	"encoding/binary"
	"errors"
	"testing"
)

type fuzzPlan struct {
	Name  string            `json:"name"`
	Steps []string          `json:"steps,omitempty"`
	Env   map[string]string `json:"env,omitempty"`
}

func (*fuzzPlan) Kind() string { return "fuzz.plan" }

type fuzzReady struct {
	Pid int `json:"pid"`
}

func (fuzzReady) Kind() string { return "fuzz.ready" }

// FuzzDecode drives the receive path's pure half, the reassembler and the payload decoder, with
// arbitrary datagrams. The input is a sequence of datagrams, each prefixed with a 2-byte length
// and a byte giving how many fds "arrived" with it. It must never panic, and whatever it accepts
// must be a message of the protocol that encodes back to a payload the decoder accepts again.
func FuzzDecode(f *testing.F) {
	p := NewProtocol(&fuzzPlan{}, fuzzReady{})
	seed := func(nfds int, msgs ...Message) []byte {
		var in []byte
		for _, m := range msgs {
			payload, err := p.encode(m)
			if err != nil {
				f.Fatal(err)
			}
			for _, d := range fragments(payload, nfds) {
				in = binary.BigEndian.AppendUint16(in, uint16(len(d)))
				in = append(in, byte(nfds))
				in = append(in, d...)
				nfds = 0
			}
		}
		return in
	}
	f.Add(seed(0, fuzzReady{Pid: 1}))
	f.Add(seed(2, &fuzzPlan{Name: "x", Steps: []string{"a", "b"}, Env: map[string]string{"K": "V"}}))
	f.Add(seed(0, &StepError{Step: "mount", Msg: "no", Errno: 1}, fuzzReady{}))
	f.Add([]byte{0, 3, 0, 1, 3, 0})

	f.Fuzz(func(t *testing.T, in []byte) {
		var a assembler
		for len(in) >= 3 {
			n, nfds := int(binary.BigEndian.Uint16(in)), int(in[2])
			in = in[3:]
			if n > len(in) {
				n = len(in)
			}
			d := in[:n]
			in = in[n:]
			payload, done, err := a.add(d, nfds)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrMessageTooLarge) {
					t.Fatalf("framing error %v is not a sentinel", err)
				}
				return // the stream is out of step: a Conn gives up here
			}
			if !done {
				continue
			}
			if len(payload) > MaxMessageSize {
				t.Fatalf("accepted a %d-byte message", len(payload))
			}
			m, err := p.decode(payload)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("decode error %v is not ErrMalformed", err)
				}
				continue
			}
			again, err := p.encode(m)
			if err != nil {
				t.Fatalf("re-encode %#v: %v", m, err)
			}
			if _, err := p.decode(again); err != nil {
				t.Fatalf("decode of re-encoded %#v: %v", m, err)
			}
		}
	})
}
