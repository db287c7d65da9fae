package nsenter

/*
#include "nsenter.h"
*/
import "C"

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// EnvName is the variable that makes the constructor act. It must not be set for any other purpose.
const EnvName = C.LIBJAIL_NSENTER_ENV

// Step names what the constructor was doing when it failed.
type Step int

// Steps of the constructor, in the order it runs them.
const (
	StepParse      Step = C.LIBJAIL_STEP_PARSE       // reading the environment variable
	StepSetns      Step = C.LIBJAIL_STEP_SETNS       // setns(2) into a namespace
	StepBecomeRoot Step = C.LIBJAIL_STEP_BECOME_ROOT // switching to uid/gid 0 in a joined user ns
	StepUnshare    Step = C.LIBJAIL_STEP_UNSHARE     // unshare(2) after the joins
	StepTimeNS     Step = C.LIBJAIL_STEP_TIMENS      // creating, offsetting and entering a time ns
	StepPdeathsig  Step = C.LIBJAIL_STEP_PDEATHSIG   // prctl(PR_SET_PDEATHSIG)
	StepUserMap    Step = C.LIBJAIL_STEP_USERMAP     // waiting for the parent to write id maps
	StepJail       Step = C.LIBJAIL_STEP_JAIL        // shutting a pid-namespace holder away from the host
	StepForkPID    Step = C.LIBJAIL_STEP_FORKPID     // forking into a pid namespace unshared here
)

func (s Step) String() string {
	switch s {
	case StepParse:
		return "parse " + EnvName
	case StepSetns:
		return "setns"
	case StepBecomeRoot:
		return "become root in user namespace"
	case StepUnshare:
		return "unshare"
	case StepTimeNS:
		return "new time namespace"
	case StepPdeathsig:
		return "set parent-death signal"
	case StepUserMap:
		return "wait for id maps"
	case StepJail:
		return "jail the pid namespace holder"
	case StepForkPID:
		return "fork into the new pid namespace"
	}
	return "step " + strconv.Itoa(int(s))
}

// Error is a failure of the constructor. Errno keeps the kernel's answer for errors.Is.
type Error struct {
	Step       Step
	Namespaces string // the namespace types involved, e.g. "user" or "mnt|net"
	Errno      syscall.Errno
}

func (e *Error) Error() string {
	return fmt.Sprintf("nsenter: %s %s: %v", e.Step, e.Namespaces, e.Errno)
}

func (e *Error) Unwrap() error { return e.Errno }

// Result reports what the constructor did: nil if it joined everything asked for, or was not asked.
func Result() error {
	r := C.libjail_nsenter_result
	if r.failed == 0 {
		return nil
	}
	return &Error{Step: Step(r.step), Namespaces: FlagNames(int(r.nstype)), Errno: syscall.Errno(r.err)}
}

var flagNames = []struct {
	flag int
	name string
}{
	{unix.CLONE_NEWUSER, "user"}, {unix.CLONE_NEWNS, "mnt"}, {unix.CLONE_NEWTIME, "time"},
	{unix.CLONE_NEWNET, "net"}, {unix.CLONE_NEWIPC, "ipc"}, {unix.CLONE_NEWUTS, "uts"},
	{unix.CLONE_NEWPID, "pid"}, {unix.CLONE_NEWCGROUP, "cgroup"},
}

// FlagNames spells CLONE_NEW* flags with the kernel's short namespace names, joined by "|".
func FlagNames(flags int) string {
	var out []string
	for _, f := range flagNames {
		if flags&f.flag != 0 {
			out = append(out, f.name)
			flags &^= f.flag
		}
	}
	if flags != 0 || len(out) == 0 {
		out = append(out, fmt.Sprintf("%#x", flags))
	}
	return strings.Join(out, "|")
}

// Join asks the constructor to setns into the namespace file open at FD in the child.
type Join struct {
	Flag int // one CLONE_NEW* flag
	FD   int
}

// Spec is what the constructor is asked to do; String gives the value of [EnvName].
type Spec struct {
	Joins      []Join
	PidFD      int // >0: setns(PidFD, PidFDFlags)
	PidFDFlags int
	Unshare    int
	// NewTime creates a time namespace with these offsets (nil: none) and moves the process into it.
	NewTime *TimeOffsets
	// UserSync > 0 is a socket: after Unshare (which then holds CLONE_NEWUSER) the constructor writes
	// "u", waits for the parent to write the id maps and answer "g", then becomes root there.
	UserSync int
	// Pdeathsig is set with PR_SET_PDEATHSIG as the last step (0: left alone).
	Pdeathsig int
	Hold      bool
	// ForkPID > 0 is a pipe: after Unshare (which then holds CLONE_NEWPID) the constructor forks
	// into the new pid namespace as a sibling (CLONE_PARENT), writes the child's pid (int32) there
	// and exits; the child carries on.
	ForkPID int
	// Jail shuts the holder away from the host (empty mount and new cgroup namespace, no
	// capabilities, undumpable): a pinned pid namespace's holder is visible to every container.
	Jail bool
}

// TimeOffsets are the clock offsets of a new time namespace.
type TimeOffsets struct {
	MonotonicSecs, MonotonicNanos int64
	BoottimeSecs, BoottimeNanos   int64
}

// Empty reports whether the constructor would have nothing to do.
func (s Spec) Empty() bool {
	return len(s.Joins) == 0 && s.PidFD <= 0 && s.Unshare == 0 && s.NewTime == nil && s.UserSync <= 0 &&
		s.Pdeathsig == 0 && !s.Hold && s.ForkPID <= 0 && !s.Jail
}

func (s Spec) String() string {
	var items []string
	if o := s.NewTime; o != nil {
		items = append(items, fmt.Sprintf("timens=%d:%d:%d:%d", o.MonotonicSecs, o.MonotonicNanos, o.BoottimeSecs, o.BoottimeNanos))
	}
	if s.PidFD > 0 {
		items = append(items, fmt.Sprintf("pidfd=%d:%#x", s.PidFD, s.PidFDFlags))
	}
	for _, j := range s.Joins {
		items = append(items, fmt.Sprintf("%s=%d", FlagNames(j.Flag), j.FD))
	}
	if s.Unshare != 0 {
		items = append(items, fmt.Sprintf("unshare=%#x", s.Unshare))
	}
	if s.UserSync > 0 {
		items = append(items, fmt.Sprintf("usersync=%d", s.UserSync))
	}
	if s.ForkPID > 0 {
		items = append(items, fmt.Sprintf("forkpid=%d", s.ForkPID))
	}
	if s.Pdeathsig != 0 {
		items = append(items, fmt.Sprintf("pdeathsig=%d", s.Pdeathsig))
	}
	if s.Hold {
		items = append(items, "hold")
	}
	if s.Jail {
		items = append(items, "jail")
	}
	return strings.Join(items, ",")
}
