package libjail

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/testutil"
	"github.com/libjail/libjail/seccomp"
)

// The device that must stay closed. The VM's root disk here is /dev/vda (254:0), which even the
// host's root cannot open on this machine, so a failure to open it proves nothing; /dev/loop0
// (7:0) is a block device host root can open, and no rule of the battery's specs allows it.
const loopMajor, loopMinor = "7", "0"

// withCgroupMount gives spec a cgroup namespace and a read-write cgroup mount.
func withCgroupMount(spec *specs.Spec) *specs.Spec {
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"rw", "nosuid", "noexec", "nodev"},
	})
	return spec
}

// deviceAttack: widen the rules through every cgroup file in reach, then make nodes for the loop
// device and the VM disk and open them.
var deviceAttack = []string{
	"write", "/sys/fs/cgroup/devices/devices.allow", "a *:* rwm",
	"write", "/sys/fs/cgroup/devices/devices.allow", "b " + loopMajor + ":" + loopMinor + " rwm",
	"mount", "cgroup", "/mnt/cg", "cgroup", "devices",
	"write", "/mnt/cg/devices.allow", "a *:* rwm",
	// Without a cgroup namespace the fresh mount shows the whole hierarchy: move to its root.
	"write", "/mnt/cg/cgroup.procs", "0",
	"mknod", "/dev/xloop", "b", loopMajor, loopMinor,
	"mknod", "/dev/xvda", "b", "254", "0",
	"read", "/proc/self/cgroup",
}

// TestEscapeDevices: a container with every capability, no seccomp, its own cgroup namespace
// and a read-write cgroup mount writes "a *:* rwm" (and a rule for the loop device) to its
// devices.allow, mounts the devices hierarchy itself and writes there too, then mknods the loop
// device and the VM's disk and opens them. Both opens must fail, alone and in a pod, and the pod's
// rules on the host must not have widened.
func TestEscapeDevices(t *testing.T) {
	testutil.RequireRoot(t)
	devCg := testutil.RequireCgroupV1(t, "devices")
	rootfs := escapeRootfs(t)

	check := func(t *testing.T, res map[string]string) {
		t.Helper()
		assert.NotEqual(t, "ok", res["open /dev/xloop"], "ESCAPE: the container opened the loop device")
		assert.NotEqual(t, "ok", res["open /dev/xvda"], "ESCAPE: the container opened the VM disk")
	}

	t.Run("standalone", func(t *testing.T) {
		// A container outside a pod, with CAP_SYS_ADMIN, writes "a *:* rwm" to its own
		// devices.allow, which v1 permits whenever the parent allows all: its pod of one is that
		// parent, restricted to the container's rules.
		res := mustAttack(t, withCgroupMount(attackSpec(t, rootfs, deviceAttack...)), Options{})
		check(t, res)
	})

	t.Run("pod", func(t *testing.T) {
		pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{
			CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: filepath.Join(t.TempDir(), "ns"),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = pod.Destroy() })
		podList := filepath.Join(devCg, pod.CgroupPath(), "devices.list")
		before, err := os.ReadFile(podList)
		require.NoError(t, err)
		spec := withCgroupMount(attackSpec(t, rootfs, deviceAttack...))
		spec.Hostname = ""
		res := mustAttack(t, spec, Options{pod: pod})
		check(t, res)
		after, err := os.ReadFile(podList)
		require.NoError(t, err)
		assert.Equal(t, string(before), string(after), "ESCAPE: the pod's device rules changed")
	})

	// Without a cgroup namespace, CAP_SYS_ADMIN mounts the devices hierarchy whole and moves
	// itself to the root cgroup, which allows every device: the spec must not grant both (see
	// SECURITY.md). The default seccomp profile denies the mount.
	t.Run("no cgroup namespace, default seccomp", func(t *testing.T) {
		spec := attackSpec(t, rootfs, deviceAttack...)
		spec.Linux.Seccomp = seccomp.Default()
		res := mustAttack(t, spec, Options{})
		check(t, res)
		assert.Equal(t, "EPERM", res["mount /mnt/cg"])
	})
	t.Run("no cgroup namespace, no seccomp", func(t *testing.T) {
		knownEscape(t, "CAP_SYS_ADMIN without a cgroup namespace or seccomp mounts the devices hierarchy and moves to its root")
		res := mustAttack(t, attackSpec(t, rootfs, deviceAttack...), Options{})
		check(t, res)
	})
}
