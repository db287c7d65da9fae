package syncpipe

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

var (
	// ErrPeerClosed means the other end closed the socket (exited, or execve'd and so closed its
	// close-on-exec end), possibly in the middle of a message.
	ErrPeerClosed = errors.New("syncpipe: peer closed the connection")
	// ErrUnexpected means a message of another kind than the one awaited arrived.
	ErrUnexpected = errors.New("syncpipe: unexpected message")
	// ErrMessageTooLarge means a message is bigger than MaxMessageSize (or a datagram bigger than
	// the protocol allows).
	ErrMessageTooLarge = errors.New("syncpipe: message too large")
	// ErrMalformed means bytes or file descriptors arrived that do not follow the protocol.
	ErrMalformed = errors.New("syncpipe: malformed message")
)

// StepError is a child's failure: the step that failed, its message, and the errno when there
// is one. Receive returns it as an error; errors.Is(err, unix.EPERM) works through Unwrap.
type StepError struct {
	Step  string     `json:"step"`
	Msg   string     `json:"msg"`
	Errno unix.Errno `json:"errno,omitempty"`
}

// Kind makes *StepError a Message; every Protocol includes it.
func (*StepError) Kind() string { return "syncpipe.step-error" }

func (e *StepError) Error() string { return e.Step + ": " + e.Msg }

// Unwrap returns the errno, or nil when there is none.
func (e *StepError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// NewStepError builds the StepError for err failing in step, keeping the errno found in err's
// chain (unix.Errno and syscall.Errno are the same type).
func NewStepError(step string, err error) *StepError {
	se := &StepError{Step: step, Msg: "unknown error"}
	if err != nil {
		se.Msg = err.Error()
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		se.Errno = errno
	}
	return se
}

// unexpected wraps ErrUnexpected naming what was awaited and what came.
func unexpected(want, got string) error {
	return fmt.Errorf("%w: want %s, got %s", ErrUnexpected, want, got)
}
