package mounts

import (
	"errors"
	"strings"
)

// Sentinels carried by [Error], for errors.Is.
var (
	// ErrInvalid marks a spec field that is malformed (relative destination, unknown propagation...).
	ErrInvalid = errors.New("invalid")
	// ErrUnsupported marks an option libjail cannot honour; it is refused rather than ignored.
	ErrUnsupported = errors.New("not supported")
	// ErrUnsafe marks a mount refused for safety: a destination inside /proc that is not on the
	// allow-list, a masking "null" that is not the null device, a proc mount over a non-directory.
	ErrUnsafe = errors.New("refused for safety")
)

// Error reports a spec field that fails validation or a mount step that fails to apply. It wraps
// one of the sentinels above or the errno of the failing call, so errors.Is works on both.
type Error struct {
	Field string // spec field: "mounts[3]", "linux.maskedPaths[0]", "root.path"
	Path  string // the destination inside the container root, when there is one
	Op    string // the step or call that failed: "plan", "open_tree", "move_mount", ...
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	if e.Path != "" {
		b.WriteString(" (")
		b.WriteString(e.Path)
		b.WriteString(")")
	}
	if e.Op != "" {
		b.WriteString(": ")
		b.WriteString(e.Op)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
