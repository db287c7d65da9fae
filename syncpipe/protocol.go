package syncpipe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
)

// Message is one kind of message. Kinds are Go types; Kind returns the stable short name that
// identifies the type on the wire, so it must not depend on the value (a nil pointer of the
// type must answer too).
type Message interface{ Kind() string }

// maxKindLen bounds a kind name: it travels in one length byte.
const maxKindLen = 255

// Protocol is the set of message types two peers exchange. Both peers build it from the same
// list; a kind the receiver does not know is an error, never a guess. There is no global
// registry: each protocol is a value.
type Protocol struct {
	byKind map[string]reflect.Type
	byType map[reflect.Type]string
}

// NewProtocol returns the protocol made of msgs, given as zero values (&Plan{} or Plan{}). A kind
// registered as a pointer type is decoded into a new value and returned as a pointer; a value type
// is returned as a value. *StepError is always part of the protocol.
//
// NewProtocol panics on a nil message, an empty or over-long kind name (more than 255 bytes), or
// two types sharing a kind name: these are programming errors, fixed once, like a bad regexp
// literal.
func NewProtocol(msgs ...Message) *Protocol {
	p := &Protocol{byKind: map[string]reflect.Type{}, byType: map[reflect.Type]string{}}
	for _, m := range append([]Message{(*StepError)(nil)}, msgs...) {
		if m == nil {
			panic("syncpipe: NewProtocol: nil message")
		}
		t := reflect.TypeOf(m)
		k := m.Kind()
		switch {
		case k == "" || len(k) > maxKindLen:
			panic(fmt.Sprintf("syncpipe: NewProtocol: %v: kind name %q must be 1 to %d bytes", t, k, maxKindLen))
		case p.byKind[k] != nil && p.byKind[k] != t:
			panic(fmt.Sprintf("syncpipe: NewProtocol: kind %q used by both %v and %v", k, p.byKind[k], t))
		}
		p.byKind[k] = t
		p.byType[t] = k
	}
	return p
}

// kindOf names t for error messages: its kind when registered, else its Go type.
func (p *Protocol) kindOf(t reflect.Type) string {
	if k, ok := p.byType[t]; ok {
		return k
	}
	return t.String()
}

// encode returns the payload of m: one byte of kind length, the kind, the JSON body.
func (p *Protocol) encode(m Message) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("syncpipe: send: nil message")
	}
	k, ok := p.byType[reflect.TypeOf(m)]
	if !ok {
		return nil, fmt.Errorf("syncpipe: send: %T (kind %q) is not part of this protocol", m, m.Kind())
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("syncpipe: send %s: %w", k, err)
	}
	out := make([]byte, 0, 1+len(k)+len(body))
	out = append(out, byte(len(k)))
	out = append(out, k...)
	return append(out, body...), nil
}

// decode parses a payload made by encode. Unknown kinds, unknown JSON fields, trailing data and
// JSON that does not fit the type are ErrMalformed.
func (p *Protocol) decode(payload []byte) (Message, error) {
	if len(payload) < 1 || len(payload) < 1+int(payload[0]) || payload[0] == 0 {
		return nil, fmt.Errorf("%w: payload too short for its kind name", ErrMalformed)
	}
	k := string(payload[1 : 1+int(payload[0])])
	t, ok := p.byKind[k]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kind %q", ErrMalformed, k)
	}
	var v reflect.Value // a pointer to a new value to decode into
	if t.Kind() == reflect.Pointer {
		v = reflect.New(t.Elem())
	} else {
		v = reflect.New(t)
	}
	dec := json.NewDecoder(bytes.NewReader(payload[1+len(k):]))
	// Both peers run the same binary: a field one side does not know is a bug, not version skew.
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		return nil, fmt.Errorf("%w: kind %q: %w", ErrMalformed, k, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: kind %q: trailing data after the JSON body", ErrMalformed, k)
	}
	if t.Kind() == reflect.Pointer {
		return v.Interface().(Message), nil
	}
	return v.Elem().Interface().(Message), nil
}
