package namespaces

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is. Every error from [Plan] is a *[FieldError] wrapping one of them (and, for
// a path, the *os.PathError or errno underneath).
var (
	ErrUnknownType   = errors.New("unknown namespace type")
	ErrDuplicate     = errors.New("namespace type listed twice")
	ErrNotNamespace  = errors.New("not a namespace file")
	ErrWrongType     = errors.New("namespace file of another type")
	ErrMappings      = errors.New("invalid id mapping")
	ErrNoUserNS      = errors.New("id mappings without a new user namespace")
	ErrNoMappings    = errors.New("new user namespace without id mappings")
	ErrTimeOffsets   = errors.New("invalid time offsets")
	ErrNeedUTS       = errors.New("needs a new uts namespace")
	ErrUnsupported   = errors.New("unsupported namespace combination")
	ErrNotPinnable   = errors.New("namespace type cannot be pinned")
	ErrNoSuchProcess = errors.New("no such process")
)

// FieldError names the spec field a plan error is about, e.g. "linux.namespaces[2].path".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, sentinel error, format string, args ...any) error {
	if format == "" {
		return &FieldError{Field: field, Err: sentinel}
	}
	return &FieldError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// StartError is a failure in the parent while starting the child: Step names what (e.g. "setns net").
type StartError struct {
	Step string
	Err  error
}

func (e *StartError) Error() string { return "namespaces: " + e.Step + ": " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }
