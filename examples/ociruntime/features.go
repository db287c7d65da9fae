package main

import (
	"slices"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/libjail/libjail/capabilities"
	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/namespaces"
)

func cmdFeatures(g *globals, args []string) error {
	fs := flags("features")
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	return printJSON(supported())
}

// supported describes what this runtime accepts in a spec, in the shape of the OCI features
// document.
func supported() *features.Features {
	yes, no := true, false
	var nss []string
	for _, t := range namespaces.Types {
		nss = append(nss, string(t))
	}
	var caps []string
	for _, c := range capability.ListKnown() {
		caps = append(caps, capabilities.Name(c))
	}
	slices.Sort(caps)
	v1, v2 := false, false
	if l, err := cgroups.Detect(); err == nil {
		v1, v2 = l != cgroups.V2, l != cgroups.V1
	}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions: []string{
			"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
			"lazytime", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime",
			"nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "rbind",
			"relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared",
			"slave", "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
		},
		Linux: &features.Linux{
			Namespaces:   nss,
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &v1, V2: &v2, Systemd: &no, SystemdUser: &no, Rdma: &no},
			Seccomp: &features.Seccomp{
				Enabled: &yes,
				Actions: []string{
					string(specs.ActAllow), string(specs.ActErrno), string(specs.ActKill), string(specs.ActKillProcess),
					string(specs.ActKillThread), string(specs.ActLog), string(specs.ActNotify), string(specs.ActTrace),
					string(specs.ActTrap),
				},
				Operators: []string{
					string(specs.OpEqualTo), string(specs.OpGreaterEqual), string(specs.OpGreaterThan),
					string(specs.OpLessEqual), string(specs.OpLessThan), string(specs.OpMaskedEqual), string(specs.OpNotEqual),
				},
				Archs: archs(),
				KnownFlags: []string{
					"SECCOMP_FILTER_FLAG_TSYNC", string(specs.LinuxSeccompFlagLog),
					string(specs.LinuxSeccompFlagSpecAllow), string(specs.LinuxSeccompFlagWaitKillableRecv),
				},
				SupportedFlags: []string{
					"SECCOMP_FILTER_FLAG_TSYNC", string(specs.LinuxSeccompFlagLog),
					string(specs.LinuxSeccompFlagSpecAllow), string(specs.LinuxSeccompFlagWaitKillableRecv),
				},
			},
			Apparmor:        &features.Apparmor{Enabled: &no},
			Selinux:         &features.Selinux{Enabled: &no},
			IntelRdt:        &features.IntelRdt{Enabled: &no},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &yes}},
		},
	}
}

// archs are the seccomp architectures the profile compiler knows.
func archs() []string {
	var out []string
	for _, a := range []specs.Arch{
		specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
		specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
		specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64,
		specs.ArchM68K, specs.ArchSH, specs.ArchSHEB,
	} {
		out = append(out, string(a))
	}
	return out
}
