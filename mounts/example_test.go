package mounts_test

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/libjail/libjail/mounts"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ExamplePlan() {
	spec := &specs.Spec{
		Root: &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/data", Source: "/srv/data", Options: []string{"rbind", "rro"}},
		},
		Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"}},
	}
	plan, err := mounts.Plan(spec, mounts.Options{BundleDir: "/run/bundle"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(plan)
	// Output:
	// root /run/bundle/rootfs ro
	// libjail: tmpfs tmpfs on /dev (nosuid,strictatime,mode=755,size=65536k)
	// libjail: devpts devpts on /dev/pts (nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5)
	// libjail: tmpfs shm on /dev/shm (nosuid,nodev,noexec,mode=1777,size=65536k)
	// mounts[0]: proc proc on /proc (nosuid,nodev,noexec)
	// mounts[1]: sysfs sysfs on /sys (ro,nosuid,nodev,noexec)
	// mounts[2]: rbind /srv/data on /data (rro)
	// dev: private tmpfs, symlinks fd stdin stdout stderr ptmx
	// mask /proc/kcore
	// readonly /proc/sys
}

func ExamplePlan_error() {
	spec := &specs.Spec{
		Root:   &specs.Root{Path: "/rootfs"},
		Mounts: []specs.Mount{{Destination: "/tmp", Type: "tmpfs", Options: []string{"noauto"}}},
	}
	_, err := mounts.Plan(spec, mounts.Options{})
	fmt.Println(err)
	// Output:
	// mounts[0] (/tmp): plan: option "noauto": not supported: an fstab-only option of mount(8) that means nothing to the kernel
}

// The child's side: the plan arrives as JSON, and the steps run in order in the new mount
// namespace. (Needs root and a mount namespace of its own: compiled, not run.)
func ExampleRootfsPlan_PrepareRoot() {
	var plan mounts.RootfsPlan
	if err := json.NewDecoder(os.Stdin).Decode(&plan); err != nil {
		panic(err)
	}
	steps := []func() error{plan.PrepareRoot, plan.MountAll,
		func() error { return nil /* device nodes under plan.Rootfs()+"/dev" when plan.PrivateDev() */ },
		plan.EnterRoot, plan.FinishRoot}
	for _, step := range steps {
		if err := step(); err != nil {
			panic(err) // report to the parent instead
		}
	}
}

// Idmapped mounts are made by the parent, which is still in the host's user namespace, and sent
// to the child. (Needs root: compiled, not run.)
func ExampleRootfsPlan_OpenIDMapped() {
	var plan *mounts.RootfsPlan // from mounts.Plan
	childPid := 1234
	files, err := plan.OpenIDMapped(func(m *mounts.IDMap) (*os.File, error) {
		// Explicit mappings would need a user namespace of their own; none here.
		return os.Open(fmt.Sprintf("/proc/%d/ns/user", childPid))
	})
	if err != nil {
		panic(err)
	}
	// ... send files over the sync socket; the child calls plan.UseIDMapped(files) before MountAll.
	for _, f := range files {
		f.Close()
	}
}

// Cleanup runs on the host side when the container is destroyed; it only has work when
// linux.rootfsPropagation is shared or rshared.
func ExampleRootfsPlan_Cleanup() {
	plan, err := mounts.Plan(&specs.Spec{
		Root:   &specs.Root{Path: "/rootfs"},
		Mounts: []specs.Mount{{Destination: "/vol", Source: "/srv/vol", Options: []string{"rbind"}}, {Destination: "/vol/cache", Type: "tmpfs"}},
		Linux:  &specs.Linux{RootfsPropagation: "rshared"},
	}, mounts.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(plan.HostLeaks())
	// Output:
	// [/srv/vol/cache]
}
