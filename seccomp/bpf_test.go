package seccomp

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests check compiled programs by running them, in this small interpreter of the classic BPF
// subset seccomp accepts, against seccomp_data inputs. That tests what the kernel would decide
// without depending on how a given libseccomp version lays the program out.

// seccompData is struct seccomp_data.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[0:], uint32(d.nr))
	binary.NativeEndian.PutUint32(b[4:], d.arch)
	binary.NativeEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.NativeEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// run executes prog on d and returns the filter's return value.
func run(prog []unix.SockFilter, d seccompData) (uint32, error) {
	data := d.bytes()
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || int(in.K)+4 > len(data) {
				return 0, fmt.Errorf("pc %d: bad load offset %d", pc, in.K)
			}
			a = binary.NativeEndian.Uint32(data[in.K:])
		case unix.BPF_LD | unix.BPF_W | unix.BPF_LEN:
			a = uint32(len(data))
		case unix.BPF_LDX | unix.BPF_W | unix.BPF_LEN:
			x = uint32(len(data))
		case unix.BPF_LD | unix.BPF_IMM:
			a = in.K
		case unix.BPF_LDX | unix.BPF_IMM:
			x = in.K
		case unix.BPF_LD | unix.BPF_MEM:
			a = mem[in.K&15]
		case unix.BPF_LDX | unix.BPF_MEM:
			x = mem[in.K&15]
		case unix.BPF_ST:
			mem[in.K&15] = a
		case unix.BPF_STX:
			mem[in.K&15] = x
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_RET | unix.BPF_K:
			return in.K, nil
		case unix.BPF_RET | unix.BPF_A:
			return a, nil
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		default:
			switch in.Code & 0x07 {
			case unix.BPF_ALU:
				v := in.K
				if in.Code&unix.BPF_X != 0 {
					v = x
				}
				switch in.Code & 0xf0 {
				case unix.BPF_ADD:
					a += v
				case unix.BPF_SUB:
					a -= v
				case unix.BPF_MUL:
					a *= v
				case unix.BPF_AND:
					a &= v
				case unix.BPF_OR:
					a |= v
				case unix.BPF_XOR:
					a ^= v
				case unix.BPF_LSH:
					a <<= v
				case unix.BPF_RSH:
					a >>= v
				case unix.BPF_NEG:
					a = -a
				default:
					return 0, fmt.Errorf("pc %d: unsupported alu op %#x", pc, in.Code)
				}
			case unix.BPF_JMP:
				v := in.K
				if in.Code&unix.BPF_X != 0 {
					v = x
				}
				var cond bool
				switch in.Code & 0xf0 {
				case unix.BPF_JEQ:
					cond = a == v
				case unix.BPF_JGT:
					cond = a > v
				case unix.BPF_JGE:
					cond = a >= v
				case unix.BPF_JSET:
					cond = a&v != 0
				default:
					return 0, fmt.Errorf("pc %d: unsupported jump %#x", pc, in.Code)
				}
				if cond {
					pc += int(in.Jt)
				} else {
					pc += int(in.Jf)
				}
			default:
				return 0, fmt.Errorf("pc %d: unsupported instruction %#x", pc, in.Code)
			}
		}
	}
	return 0, fmt.Errorf("fell off the end of the program")
}

// disasm renders instructions one per line, for golden files and failure messages.
func disasm(prog []unix.SockFilter) string {
	var b strings.Builder
	for i, in := range prog {
		fmt.Fprintf(&b, "%04d: ", i)
		switch {
		case in.Code == unix.BPF_LD|unix.BPF_W|unix.BPF_ABS:
			fmt.Fprintf(&b, "ld [%d]", in.K)
		case in.Code == unix.BPF_RET|unix.BPF_K:
			fmt.Fprintf(&b, "ret %#x", in.K)
		case in.Code == unix.BPF_JMP|unix.BPF_JA:
			fmt.Fprintf(&b, "ja %d", i+1+int(in.K))
		case in.Code&0x07 == unix.BPF_JMP:
			name := map[uint16]string{unix.BPF_JEQ: "jeq", unix.BPF_JGT: "jgt", unix.BPF_JGE: "jge", unix.BPF_JSET: "jset"}[in.Code&0xf0]
			fmt.Fprintf(&b, "%s %#x, %d, %d", name, in.K, i+1+int(in.Jt), i+1+int(in.Jf))
		default:
			fmt.Fprintf(&b, "code=%#x jt=%d jf=%d k=%#x", in.Code, in.Jt, in.Jf, in.K)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ret builds the seccomp return value for an action and its data.
func retErrno(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

func TestInterpreterSanity(t *testing.T) {
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offNr},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 7, Jt: 0, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_KILL_PROCESS},
	}
	for nr, want := range map[int32]uint32{7: unix.SECCOMP_RET_ALLOW, 8: unix.SECCOMP_RET_KILL_PROCESS} {
		got, err := run(prog, seccompData{nr: nr})
		if err != nil || got != want {
			t.Errorf("nr %d: got %#x, %v; want %#x", nr, got, err, want)
		}
	}
}
