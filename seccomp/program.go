package seccomp

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Program is a compiled seccomp filter: plain data the parent sends to the child (as JSON) and the
// child hands to seccomp(2) with [Program.Load]. Programs returned by [Compile] are copies; changing
// one does not affect the cache.
type Program struct {
	// Filter is the raw struct sock_filter array in host byte order: the ENOSYS stub (StubLen
	// instructions) followed by libseccomp's program.
	Filter []byte `json:"filter"`
	// Flags are the SECCOMP_FILTER_FLAG_* bits for seccomp(2). TSYNC is always set.
	Flags uint `json:"flags"`
	// Notify reports that the profile uses SCMP_ACT_NOTIFY: Load then returns the listener fd,
	// which the parent passes on with [SendListener].
	Notify           bool   `json:"notify,omitempty"`
	ListenerPath     string `json:"listenerPath,omitempty"`
	ListenerMetadata string `json:"listenerMetadata,omitempty"`

	// The fields below describe the program for String and for callers; Load does not use them.

	// DefaultAction is the profile's default action as libseccomp compiled it, e.g.
	// "SCMP_ACT_ERRNO(1)".
	DefaultAction string `json:"defaultAction,omitempty"`
	// Architectures lists the architectures the filter accepts, the native one first.
	Architectures []string `json:"architectures,omitempty"`
	// StubLen is the number of instructions of the ENOSYS stub at the start of Filter (0: none).
	StubLen int `json:"stubLen,omitempty"`
	// Rules counts the rules given to libseccomp, after dropping those equal to the default.
	Rules int `json:"rules,omitempty"`
	// Warnings are the messages logged when the profile was compiled (unknown syscall names,
	// ignored fields); a cached Program carries them too.
	Warnings []string `json:"warnings,omitempty"`
}

// Len is the number of BPF instructions in the filter.
func (p *Program) Len() int { return len(p.Filter) / 8 }

// String is a one-line summary for logs and errors.
func (p *Program) String() string {
	if p == nil {
		return "seccomp: none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seccomp: %d instructions", p.Len())
	if p.StubLen > 0 {
		fmt.Fprintf(&b, " (%d in the ENOSYS stub)", p.StubLen)
	}
	fmt.Fprintf(&b, ", %d rules, default %s, archs [%s], flags %s", p.Rules, p.DefaultAction,
		strings.Join(p.Architectures, " "), FlagString(p.Flags))
	if p.Notify {
		fmt.Fprintf(&b, ", notify to %q", p.ListenerPath)
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintf(&b, ", %d warnings", len(p.Warnings))
	}
	return b.String()
}

var flagNames = []struct {
	bit  uint
	name string
}{
	{unix.SECCOMP_FILTER_FLAG_TSYNC, "TSYNC"},
	{unix.SECCOMP_FILTER_FLAG_LOG, "LOG"},
	{unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, "SPEC_ALLOW"},
	{unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, "NEW_LISTENER"},
	{unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH, "TSYNC_ESRCH"},
	{unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, "WAIT_KILLABLE_RECV"},
}

// knownFlags are the bits Load accepts.
const knownFlags = unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG |
	unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER |
	unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV

// FlagString names the SECCOMP_FILTER_FLAG_* bits in f, e.g. "TSYNC|LOG".
func FlagString(f uint) string {
	var parts []string
	for _, n := range flagNames {
		if f&n.bit != 0 {
			parts = append(parts, n.name)
			f &^= n.bit
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", f))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}
