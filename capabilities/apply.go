package capabilities

import (
	"fmt"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"
)

// Capabilities belong to a thread, not to a process: every call below acts on the calling OS
// thread only. The child must call them from one goroutine locked to its thread
// (runtime.LockOSThread, never unlocked) and execve from that same goroutine. Go's own
// setresuid/setresgid change every thread, which is fine: the other threads never run the
// container's program.

// DropBounding drops from the calling thread's bounding set every capability not in
// s.Bounding. Call it first, while the thread still has CAP_SETPCAP in its effective set. The
// bounding set can only shrink: a capability in s.Bounding that the thread's bounding set
// already lacks stays absent.
func (s Set) DropBounding() error {
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("capabilities: bounding set: %w", err)
	}
	keep := mask(s.Bounding)
	for c := capability.Cap(0); c <= last; c++ {
		if keep&(1<<uint(c)) != 0 {
			continue
		}
		if err := capability.DropBound(c); err != nil {
			return fmt.Errorf("capabilities: bounding set: drop %s: %w", Name(c), err)
		}
	}
	return nil
}

// KeepAcrossUserSwitch sets PR_SET_KEEPCAPS on the calling thread so that its permitted set
// survives the switch from uid 0 to the process's uid. Call it after DropBounding and right
// before setresuid. The kernel still clears the effective set when the effective uid leaves 0
// (and leaves effective alone when it does not), so the thread holds no effective capability
// until Apply; the flag itself is cleared by execve.
func KeepAcrossUserSwitch() error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("capabilities: prctl(PR_SET_KEEPCAPS): %w", err)
	}
	return nil
}

// Apply sets the calling thread's effective, permitted and inheritable sets to exactly s's, then
// its ambient set. Call it after the user switch and before execve (and before loading seccomp,
// which may forbid capset). It fails, changing nothing, when s.Permitted holds a capability the
// thread does not; it then checks the whole state, bounding set included, so a DropBounding
// made on another thread is caught here.
//
// What the program will hold after execve is the kernel's business: for a uid other than 0, a
// program without file capabilities gets permitted = effective = ambient; for uid 0 it gets
// permitted = effective = inheritable ∪ bounding ∪ ambient.
func (s Set) Apply() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return fmt.Errorf("capabilities: capget: %w", err)
	}
	held := join(cur[0].Permitted, cur[1].Permitted)
	if missing := mask(s.Permitted) &^ held; missing != 0 {
		return fmt.Errorf("capabilities: permitted: %s not held by the calling thread (was PR_SET_KEEPCAPS set before the user switch?): %w",
			names(missing), unix.EPERM)
	}
	// Raise effective to all of permitted first: with CAP_SETPCAP effective, capset accepts an
	// inheritable set beyond permitted (still within the bounding set).
	cur[0].Effective, cur[1].Effective = cur[0].Permitted, cur[1].Permitted
	if err := unix.Capset(&hdr, &cur[0]); err != nil {
		return fmt.Errorf("capabilities: capset (raise effective): %w", err)
	}
	inh, prm, eff, _, _ := s.Masks()
	var want [2]unix.CapUserData
	want[0].Inheritable, want[1].Inheritable = split(inh)
	want[0].Permitted, want[1].Permitted = split(prm)
	want[0].Effective, want[1].Effective = split(eff)
	if err := unix.Capset(&hdr, &want[0]); err != nil {
		return fmt.Errorf("capabilities: capset %s: %w", s, err)
	}
	if err := capability.ResetAmbient(); err != nil {
		return fmt.Errorf("capabilities: ambient: clear: %w", err)
	}
	for _, c := range s.Ambient {
		if err := capability.SetAmbient(true, c); err != nil {
			return fmt.Errorf("capabilities: ambient: raise %s: %w", Name(c), err)
		}
	}
	return s.verify()
}

// verify compares the calling thread's state with s: effective, permitted, inheritable and
// ambient exactly, bounding within s.Bounding.
func (s Set) verify() error {
	got, err := Current()
	if err != nil {
		return err
	}
	gi, gp, ge, gb, ga := got.Masks()
	wi, wp, we, wb, wa := s.Masks()
	if gi != wi || gp != wp || ge != we || ga != wa || gb&^wb != 0 {
		return fmt.Errorf("capabilities: thread holds %s after applying %s", got, s)
	}
	return nil
}

// Current returns the calling thread's five sets.
func Current() (Set, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var d [2]unix.CapUserData
	if err := unix.Capget(&hdr, &d[0]); err != nil {
		return Set{}, fmt.Errorf("capabilities: capget: %w", err)
	}
	last, err := capability.LastCap()
	if err != nil {
		return Set{}, fmt.Errorf("capabilities: %w", err)
	}
	var bnd, amb uint64
	for c := capability.Cap(0); c <= last; c++ {
		in, err := capability.GetBound(c)
		if err != nil {
			return Set{}, fmt.Errorf("capabilities: read bounding %s: %w", Name(c), err)
		}
		if in {
			bnd |= 1 << uint(c)
		}
		in, err = capability.GetAmbient(c)
		if err != nil {
			return Set{}, fmt.Errorf("capabilities: read ambient %s: %w", Name(c), err)
		}
		if in {
			amb |= 1 << uint(c)
		}
	}
	return Set{
		Bounding:    fromMask(bnd),
		Effective:   fromMask(join(d[0].Effective, d[1].Effective)),
		Permitted:   fromMask(join(d[0].Permitted, d[1].Permitted)),
		Inheritable: fromMask(join(d[0].Inheritable, d[1].Inheritable)),
		Ambient:     fromMask(amb),
	}, nil
}

func join(lo, hi uint32) uint64      { return uint64(hi)<<32 | uint64(lo) }
func split(m uint64) (lo, hi uint32) { return uint32(m), uint32(m >> 32) }
