package seccomp

import (
	"encoding/binary"
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// The ENOSYS stub runs before libseccomp's program. For each architecture of the filter it returns
// ENOSYS for syscall numbers above the highest one the profile names, and hands everything else to
// libseccomp's program unchanged. A syscall newer than the profile then fails like one the kernel
// lacks, so C libraries fall back to the older call (clone3 → clone, statx → fstatat) instead of
// failing with the profile's default errno (usually EPERM).
//
// "Names" counts every syscall the profile mentions and libseccomp knows, including rules dropped
// because their action equals the default: the profile's author knew those syscalls.

// seccomp_data offsets.
const (
	offNr   = 0
	offArch = 4
)

// maxInsns is BPF_MAXINSNS, the kernel's limit on a classic BPF program.
const maxInsns = 4096

// archMax is the highest syscall number the profile names for one architecture, or -1 for none.
type archMax struct {
	arch
	max int64
}

type label string

type asmInsn struct {
	code   uint16
	k      uint32
	jt, jf label // "" falls through
	mark   label // this instruction's own label
}

// buildStub returns the stub's instructions; the libseccomp program follows it directly.
func buildStub(maxes []archMax) ([]unix.SockFilter, error) {
	// Group by AUDIT_ARCH value: x86_64 and x32 share one, told apart by the x32 syscall bit.
	type group struct {
		audit     uint32
		max, x32  int64
		hasX32Bit bool
	}
	groups := map[uint32]*group{}
	for _, m := range maxes {
		if m.max < 0 {
			continue
		}
		g := groups[m.audit]
		if g == nil {
			g = &group{audit: m.audit, max: -1, x32: -1}
			groups[m.audit] = g
		}
		if m.audit == unix.AUDIT_ARCH_X86_64 {
			g.hasX32Bit = true
		}
		if m.name == "SCMP_ARCH_X32" {
			g.x32 = m.max
		} else {
			g.max = m.max
		}
	}
	if len(groups) == 0 {
		return nil, nil
	}
	audits := make([]uint32, 0, len(groups))
	for a := range groups {
		audits = append(audits, a)
	}
	sort.Slice(audits, func(i, j int) bool { return audits[i] < audits[j] })

	const (
		enosys label = "enosys"
		main   label = "main"
	)
	ld := func(off uint32) asmInsn { return asmInsn{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: off} }
	// limit sends numbers above max to the ENOSYS return, or everything to main when the profile
	// names nothing for this case.
	limit := func(max int64, mark label) asmInsn {
		if max < 0 {
			return asmInsn{code: unix.BPF_JMP | unix.BPF_JA, jt: main, mark: mark}
		}
		return asmInsn{code: unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, k: uint32(max), jt: enosys, jf: main, mark: mark}
	}
	prog := []asmInsn{ld(offArch)}
	for i, a := range audits {
		g := groups[a]
		next := label(fmt.Sprintf("next%d", i))
		x32 := label(fmt.Sprintf("x32_%d", i))
		prog = append(prog,
			asmInsn{code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, k: a, jf: next},
			ld(offNr))
		switch {
		case g.hasX32Bit && g.x32 < 0:
			// x32 is not in the profile: its calls go to libseccomp's program, which refuses them.
			prog = append(prog,
				asmInsn{code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, k: x32SyscallBit, jt: main},
				limit(g.max, ""))
		case g.hasX32Bit:
			prog = append(prog,
				asmInsn{code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, k: x32SyscallBit, jt: x32},
				limit(g.max, ""),
				limit(g.x32, x32))
		default:
			prog = append(prog, limit(g.max, ""))
		}
		// The next group starts after this one; mark it on the group's first instruction below.
		prog = append(prog, asmInsn{mark: next, code: 0xffff})
	}
	// No architecture matched: libseccomp's program applies its bad-architecture action.
	prog = append(prog,
		asmInsn{code: unix.BPF_JMP | unix.BPF_JA, jt: main},
		asmInsn{code: unix.BPF_RET | unix.BPF_K, k: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS), mark: enosys})

	// Resolve: placeholder entries (code 0xffff) only carry a label for the instruction after them.
	var out []asmInsn
	var pending []label
	pos := map[label]int{}
	for _, in := range prog {
		if in.code == 0xffff {
			pending = append(pending, in.mark)
			continue
		}
		for _, l := range pending {
			pos[l] = len(out)
		}
		pending = nil
		if in.mark != "" {
			pos[in.mark] = len(out)
		}
		out = append(out, in)
	}
	pos[main] = len(out)
	res := make([]unix.SockFilter, len(out))
	for i, in := range out {
		f := unix.SockFilter{Code: in.code, K: in.k}
		off := func(l label) (int, error) {
			if l == "" {
				return 0, nil
			}
			p, ok := pos[l]
			if !ok {
				return 0, fmt.Errorf("seccomp stub: unresolved label %q", l)
			}
			return p - (i + 1), nil
		}
		jt, err := off(in.jt)
		if err != nil {
			return nil, err
		}
		jf, err := off(in.jf)
		if err != nil {
			return nil, err
		}
		if in.code == unix.BPF_JMP|unix.BPF_JA {
			f.K = uint32(jt)
		} else {
			if jt > 255 || jf > 255 {
				return nil, fmt.Errorf("seccomp stub: jump too far at %d", i)
			}
			f.Jt, f.Jf = uint8(jt), uint8(jf)
		}
		res[i] = f
	}
	return res, nil
}

// encode writes instructions as the raw struct sock_filter array in host byte order.
func encode(insns []unix.SockFilter) []byte {
	b := make([]byte, 0, 8*len(insns))
	for _, in := range insns {
		b = binary.NativeEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.NativeEndian.AppendUint32(b, in.K)
	}
	return b
}

// decode is the inverse of encode; len(b) must be a multiple of 8.
func decode(b []byte) []unix.SockFilter {
	insns := make([]unix.SockFilter, len(b)/8)
	for i := range insns {
		r := b[8*i:]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(r),
			Jt:   r[2],
			Jf:   r[3],
			K:    binary.NativeEndian.Uint32(r[4:]),
		}
	}
	return insns
}
