package devices

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is. Every validation error is a *SpecError wrapping one of them.
var (
	// ErrInvalidNode marks a linux.devices entry that cannot become a device node.
	ErrInvalidNode = errors.New("invalid device node")
	// ErrInvalidRule marks a linux.resources.devices entry that cannot become a rule.
	ErrInvalidRule = errors.New("invalid device rule")
)

// SpecError names the spec field a validation error is about.
type SpecError struct {
	Field string // e.g. "linux.devices[2].path"
	Err   error  // wraps ErrInvalidNode or ErrInvalidRule
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *SpecError) Unwrap() error { return e.Err }

func nodeErr(i int, field, format string, args ...any) error {
	return &SpecError{
		Field: fmt.Sprintf("linux.devices[%d].%s", i, field),
		Err:   fmt.Errorf("%w: "+format, append([]any{ErrInvalidNode}, args...)...),
	}
}

func ruleErr(i int, field, format string, args ...any) error {
	return &SpecError{
		Field: fmt.Sprintf("linux.resources.devices[%d].%s", i, field),
		Err:   fmt.Errorf("%w: "+format, append([]any{ErrInvalidRule}, args...)...),
	}
}
