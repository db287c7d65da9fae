package seccomp

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid marks a profile the spec does not allow or this package cannot express: an unknown
	// action, operator, flag or architecture, an out-of-range value, a rule without names.
	ErrInvalid = errors.New("invalid seccomp profile")

	// ErrNotifyForbidden marks SCMP_ACT_NOTIFY on a syscall the container's own setup still makes
	// after the filter is loaded (see [NotifyForbidden]), or as the default action. Such a profile
	// would deadlock the start: the listener fd only reaches its agent through those very syscalls.
	ErrNotifyForbidden = errors.New("SCMP_ACT_NOTIFY not allowed here")
)

// FieldError is a planning error that names the spec field at fault, such as
// "linux.seccomp.syscalls[3].args[0].op". Err wraps [ErrInvalid] or [ErrNotifyForbidden], or the
// error libseccomp returned.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

func invalidf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)}
}

// LoadError is returned by [Program.Load]; Err keeps the errno from seccomp(2) so callers can test
// it with errors.Is (EACCES: neither no_new_privs nor CAP_SYS_ADMIN; EINVAL: a flag or program the
// kernel refuses; ESRCH: a thread could not be synchronised).
type LoadError struct {
	Err error
}

func (e *LoadError) Error() string {
	return "seccomp: load filter: " + e.Err.Error()
}

func (e *LoadError) Unwrap() error { return e.Err }
