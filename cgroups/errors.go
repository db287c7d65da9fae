package cgroups

import (
	"errors"
	"fmt"
)

var (
	// ErrNotSupported means no available controller or hierarchy can honour a request on this
	// machine's layout (for example a v1-only field when only cgroup2 has the controller).
	ErrNotSupported = errors.New("not supported")
	// ErrInvalid means a spec value is out of range or malformed.
	ErrInvalid = errors.New("invalid value")
	// ErrExists is a cgroup that exists already: Create only makes new ones.
	ErrExists = errors.New("cgroup exists")
)

// FieldError ties an error to the spec field (e.g. "linux.resources.memory.swap") or the step
// (e.g. "create") it came from. Err keeps the cause (an errno inside an *os.PathError for kernel
// writes), so errors.Is works through it.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, base error, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{base}, args...)...)}
}
