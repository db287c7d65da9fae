package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// maxErrno is the largest errno the kernel returns from a filter (MAX_ERRNO).
const maxErrno = 4095

// translateAction maps an OCI action and its errnoRet to libseccomp's. errnoRet is only meaningful
// for ERRNO and TRACE (where it is the tracer's message); both default to EPERM as in runc.
func translateAction(a specs.LinuxSeccompAction, errnoRet *uint, field, errnoField string) (libseccomp.ScmpAction, error) {
	ret := uint(unix.EPERM)
	if errnoRet != nil {
		if a != specs.ActErrno && a != specs.ActTrace {
			return 0, invalidf(errnoField, "only allowed with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", a)
		}
		if *errnoRet > maxErrno {
			return 0, invalidf(errnoField, "%d is larger than %d", *errnoRet, maxErrno)
		}
		ret = *errnoRet
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(ret)), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(ret)), nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return 0, invalidf(field, "unknown action %q", a)
}

// actionString renders a libseccomp action in the OCI spelling, with the errno for ERRNO/TRACE.
func actionString(a libseccomp.ScmpAction) string {
	base := a & 0xffff
	var s string
	switch base {
	case libseccomp.ActKillThread:
		s = string(specs.ActKillThread)
	case libseccomp.ActKillProcess:
		s = string(specs.ActKillProcess)
	case libseccomp.ActTrap:
		s = string(specs.ActTrap)
	case libseccomp.ActErrno:
		return fmt.Sprintf("%s(%d)", specs.ActErrno, a.GetReturnCode())
	case libseccomp.ActTrace:
		return fmt.Sprintf("%s(%d)", specs.ActTrace, a.GetReturnCode())
	case libseccomp.ActAllow:
		s = string(specs.ActAllow)
	case libseccomp.ActLog:
		s = string(specs.ActLog)
	case libseccomp.ActNotify:
		s = string(specs.ActNotify)
	default:
		s = a.String()
	}
	return s
}

var ops = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// translateArgs returns the condition sets to add as separate rules. Normally that is one set
// (all conditions must hold). When two conditions test the same argument, each condition becomes
// its own rule (any may hold): libseccomp cannot AND two tests of one argument, and profiles
// written for runc rely on this reading.
func translateArgs(field string, args []specs.LinuxSeccompArg) ([][]libseccomp.ScmpCondition, error) {
	if len(args) == 0 {
		return [][]libseccomp.ScmpCondition{nil}, nil
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(args))
	seen := map[uint]bool{}
	repeated := false
	for k, a := range args {
		af := fmt.Sprintf("%s.args[%d]", field, k)
		if a.Index > 5 {
			return nil, invalidf(af+".index", "%d: syscalls have 6 arguments (0-5)", a.Index)
		}
		op, ok := ops[a.Op]
		if !ok {
			return nil, invalidf(af+".op", "unknown operator %q", a.Op)
		}
		var c libseccomp.ScmpCondition
		var err error
		if op == libseccomp.CompareMaskedEqual {
			// OCI: value is the mask, valueTwo the value the masked argument must equal —
			// libseccomp's datum_a and datum_b.
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		} else {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value)
		}
		if err != nil {
			return nil, &FieldError{Field: af, Err: err}
		}
		repeated = repeated || seen[a.Index]
		seen[a.Index] = true
		conds = append(conds, c)
	}
	if !repeated {
		return [][]libseccomp.ScmpCondition{conds}, nil
	}
	sets := make([][]libseccomp.ScmpCondition, len(conds))
	for i, c := range conds {
		sets[i] = []libseccomp.ScmpCondition{c}
	}
	return sets, nil
}

var flagBits = map[specs.LinuxSeccompFlag]uint{
	"SECCOMP_FILTER_FLAG_TSYNC":            unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// translateFlags maps the spec's flags to seccomp(2) bits. TSYNC is always set: the child is a
// multi-threaded Go program, and without it only the calling thread would be filtered while the
// Go scheduler may run execve on any other.
func translateFlags(fl []specs.LinuxSeccompFlag) (uint, error) {
	bits := uint(unix.SECCOMP_FILTER_FLAG_TSYNC)
	for i, f := range fl {
		b, ok := flagBits[f]
		if !ok {
			return 0, invalidf(fmt.Sprintf("linux.seccomp.flags[%d]", i), "unknown flag %q", f)
		}
		bits |= b
	}
	return bits, nil
}
