package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/seccomp"
)

// Prefix starts the name of every container, cgroup and directory the benchmarks create.
const Prefix = "libjail-bench-"

// CgroupPath is the cgroupsPath of the benchmark bundle: absolute, so libjail, runc and crun all
// create the same /sys/fs/cgroup/<controller>/libjail-bench-ctr (one container at a time).
const CgroupPath = "/" + Prefix + "ctr"

// SpecVersion is the bundle's ociVersion: Debian 12's crun 1.8 refuses versions it does not
// know ("unknown version specified"), and the bundle uses nothing newer.
const SpecVersion = "1.0.2"

// Spec is the benchmark container: fixtures.Spec (the shape `runc spec` writes) with the seccomp
// package's default profile and a cgroup.
func Spec(rootfs string, args ...string) *specs.Spec {
	s := fixtures.Spec(rootfs, args...)
	s.Version = SpecVersion
	s.Linux.Seccomp = seccomp.Default()
	s.Linux.CgroupsPath = CgroupPath
	return s
}

// WriteBundle builds a busybox rootfs in dir/rootfs and writes dir/config.json running args.
func WriteBundle(dir string, args ...string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	rootfs := filepath.Join(abs, "rootfs")
	if err := fixtures.BuildRootfs(rootfs, true); err != nil {
		return fmt.Errorf("build rootfs: %w", err)
	}
	return fixtures.WriteBundle(abs, Spec(rootfs, args...))
}

// WriteConfig writes dir/config.json for a container running args in an existing rootfs (an
// absolute path, so several bundles can share one rootfs).
func WriteConfig(dir, rootfs string, args ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return fixtures.WriteBundle(dir, Spec(rootfs, args...))
}

// LoadSpec reads a bundle's config.json.
func LoadSpec(dir string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", dir, err)
	}
	return &s, nil
}
