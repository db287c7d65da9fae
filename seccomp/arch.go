package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// arch ties an OCI architecture name to libseccomp's token and to the AUDIT_ARCH value the kernel
// puts in seccomp_data.arch, which the ENOSYS stub compares against.
type arch struct {
	name  specs.Arch
	scmp  libseccomp.ScmpArch
	audit uint32
}

// x32SyscallBit is set in the syscall number of x32 calls, which share AUDIT_ARCH_X86_64.
const x32SyscallBit = 0x40000000

var arches = []arch{
	{specs.ArchX86, libseccomp.ArchX86, unix.AUDIT_ARCH_I386},
	{specs.ArchX86_64, libseccomp.ArchAMD64, unix.AUDIT_ARCH_X86_64},
	{specs.ArchX32, libseccomp.ArchX32, unix.AUDIT_ARCH_X86_64},
	{specs.ArchARM, libseccomp.ArchARM, unix.AUDIT_ARCH_ARM},
	{specs.ArchAARCH64, libseccomp.ArchARM64, unix.AUDIT_ARCH_AARCH64},
	{specs.ArchMIPS, libseccomp.ArchMIPS, unix.AUDIT_ARCH_MIPS},
	{specs.ArchMIPS64, libseccomp.ArchMIPS64, unix.AUDIT_ARCH_MIPS64},
	{specs.ArchMIPS64N32, libseccomp.ArchMIPS64N32, unix.AUDIT_ARCH_MIPS64N32},
	{specs.ArchMIPSEL, libseccomp.ArchMIPSEL, unix.AUDIT_ARCH_MIPSEL},
	{specs.ArchMIPSEL64, libseccomp.ArchMIPSEL64, unix.AUDIT_ARCH_MIPSEL64},
	{specs.ArchMIPSEL64N32, libseccomp.ArchMIPSEL64N32, unix.AUDIT_ARCH_MIPSEL64N32},
	{specs.ArchPPC, libseccomp.ArchPPC, unix.AUDIT_ARCH_PPC},
	{specs.ArchPPC64, libseccomp.ArchPPC64, unix.AUDIT_ARCH_PPC64},
	{specs.ArchPPC64LE, libseccomp.ArchPPC64LE, unix.AUDIT_ARCH_PPC64LE},
	{specs.ArchS390, libseccomp.ArchS390, unix.AUDIT_ARCH_S390},
	{specs.ArchS390X, libseccomp.ArchS390X, unix.AUDIT_ARCH_S390X},
	{specs.ArchPARISC, libseccomp.ArchPARISC, unix.AUDIT_ARCH_PARISC},
	{specs.ArchPARISC64, libseccomp.ArchPARISC64, unix.AUDIT_ARCH_PARISC64},
	{specs.ArchRISCV64, libseccomp.ArchRISCV64, unix.AUDIT_ARCH_RISCV64},
	{specs.ArchLOONGARCH64, libseccomp.ArchLOONGARCH64, unix.AUDIT_ARCH_LOONGARCH64},
	{specs.ArchM68K, libseccomp.ArchM68K, unix.AUDIT_ARCH_M68K},
	// libseccomp's "sh" is little-endian SuperH, "sheb" the big-endian one.
	{specs.ArchSH, libseccomp.ArchSH, unix.AUDIT_ARCH_SHEL},
	{specs.ArchSHEB, libseccomp.ArchSHEB, unix.AUDIT_ARCH_SH},
}

func archByName(n specs.Arch) (arch, bool) {
	for _, a := range arches {
		if a.name == n {
			return a, true
		}
	}
	return arch{}, false
}

func archByScmp(s libseccomp.ScmpArch) (arch, bool) {
	for _, a := range arches {
		if a.scmp == s {
			return a, true
		}
	}
	return arch{}, false
}
