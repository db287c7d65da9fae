package devices

import (
	"fmt"
	"math"

	"github.com/cilium/ebpf/asm"
)

// bpf_cgroup_dev_ctx: access_type (access << 16 | type), major, minor, all u32.
const (
	ctxAccessType = 0
	ctxMajor      = 4
	ctxMinor      = 8

	devBlock = 1 // BPF_DEVCG_DEV_BLOCK
	devChar  = 2 // BPF_DEVCG_DEV_CHAR
)

// Registers of the generated program: R1 holds the context and then serves as scratch.
const (
	regType   = asm.R2
	regAccess = asm.R3
	regMajor  = asm.R4
	regMinor  = asm.R5
	regTmp    = asm.R1
)

// Program generates the BPF_PROG_TYPE_CGROUP_DEVICE program that allows what rules allow on a v1
// devices cgroup: rules are first reduced to a default verdict and its exceptions (so a later rule
// overrides an earlier one exactly as on v1), then each exception becomes one test, and fields that
// no exception looks at are not even loaded. As on v1, in deny-by-default mode an access is granted
// when one exception covers all of its bits; in allow-by-default mode it is denied when any
// exception shares a bit with it. The program returns 1 to allow and 0 to deny (EPERM).
func Program(rules []Rule) (asm.Instructions, error) {
	if err := validateRules(rules); err != nil {
		return nil, err
	}
	return program(effective(rules))
}

func program(s state) (asm.Instructions, error) {
	needType := len(s.ex) > 0 // every exception is of one type, 'b' or 'c'
	var needAccess, needMajor, needMinor bool
	for _, e := range s.ex {
		if e.major > math.MaxUint32 || e.minor > math.MaxUint32 {
			return nil, fmt.Errorf("%w: %c %d:%d: number beyond 32 bits", ErrInvalidRule, e.typ, e.major, e.minor)
		}
		needAccess = needAccess || e.acc != accAll
		needMajor = needMajor || e.major != Wildcard
		needMinor = needMinor || e.minor != Wildcard
	}
	verdict := func(allow bool) int64 {
		if allow {
			return 1
		}
		return 0
	}

	insns := make(asm.Instructions, 0, 7+8*len(s.ex)+2)
	if needType {
		insns = append(insns, asm.LoadMem(regType, asm.R1, ctxAccessType, asm.Word))
		if needAccess {
			insns = append(insns,
				asm.Mov.Reg32(regAccess, regType),
				asm.RSh.Imm32(regAccess, 16))
		}
		insns = append(insns, asm.And.Imm32(regType, 0xffff))
	}
	if needMajor {
		insns = append(insns, asm.LoadMem(regMajor, asm.R1, ctxMajor, asm.Word))
	}
	if needMinor {
		insns = append(insns, asm.LoadMem(regMinor, asm.R1, ctxMinor, asm.Word))
	}

	for i, e := range s.ex {
		next := fmt.Sprintf("ex%d", i+1)
		if i == len(s.ex)-1 {
			next = "default"
		}
		first := len(insns)
		typ := int32(devChar)
		if e.typ == 'b' {
			typ = devBlock
		}
		insns = append(insns, asm.JNE.Imm32(regType, typ, next))
		if e.acc != accAll {
			insns = append(insns, asm.Mov.Reg32(regTmp, regAccess))
			if s.allow {
				// A denial matches when the request shares any bit with it (v1's partial match).
				insns = append(insns,
					asm.And.Imm32(regTmp, int32(e.acc)),
					asm.JEq.Imm32(regTmp, 0, next))
			} else {
				// A grant matches when it covers every requested bit.
				insns = append(insns,
					asm.And.Imm32(regTmp, int32(accAll&^e.acc)),
					asm.JNE.Imm32(regTmp, 0, next))
			}
		}
		if e.major != Wildcard {
			insns = append(insns, asm.JNE.Imm32(regMajor, int32(uint32(e.major)), next))
		}
		if e.minor != Wildcard {
			insns = append(insns, asm.JNE.Imm32(regMinor, int32(uint32(e.minor)), next))
		}
		insns = append(insns, asm.Mov.Imm32(asm.R0, int32(verdict(!s.allow))), asm.Return())
		insns[first] = insns[first].WithSymbol(fmt.Sprintf("ex%d", i))
	}
	insns = append(insns,
		asm.Mov.Imm32(asm.R0, int32(verdict(s.allow))).WithSymbol("default"),
		asm.Return())
	return insns, nil
}
