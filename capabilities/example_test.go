package capabilities_test

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/capabilities"
)

func ExamplePlan() {
	caps := []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}
	set, err := capabilities.Plan(&specs.LinuxCapabilities{
		Bounding:  caps,
		Effective: caps,
		Permitted: caps,
	}, slog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(set)
	// Output: bounding=kill,net_bind_service effective=kill,net_bind_service permitted=kill,net_bind_service inheritable=none ambient=none
}

// ExampleSet_Apply is the child's side: one locked thread drops the bounding set, keeps its
// capabilities across the switch to the container's user, applies the rest and execs.
func ExampleSet_Apply() {
	var set capabilities.Set // received from the parent
	uid, gid := 1000, 1000

	runtime.LockOSThread() // never unlocked: capabilities belong to this thread, which execs
	if err := set.DropBounding(); err != nil {
		os.Exit(1) // report the step's error to the parent first
	}
	if err := capabilities.KeepAcrossUserSwitch(); err != nil {
		os.Exit(1)
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		os.Exit(1)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		os.Exit(1)
	}
	if err := set.Apply(); err != nil {
		os.Exit(1)
	}
	// ... seccomp, then:
	syscall.Exec("/bin/sh", []string{"sh"}, os.Environ())
}
