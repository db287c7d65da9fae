package libjail

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/testutil"
	"github.com/libjail/libjail/seccomp"
)

// TestEscapePodCgroup: a container of a pod, with every capability, its own cgroup namespace and a
// read-write cgroup mount, tries to write the pod's cgroup: through ".." of its mount (which stops
// at its cgroup namespace's root), through a fresh mount of the hierarchy, and by file handle
// (open_by_handle_at, given the pod cgroup's handle as an attacker could guess it). On the host, the
// pod's device rules and pids limit must be unchanged.
//
// open_by_handle_at needs CAP_DAC_READ_SEARCH in the initial user namespace and reaches any cgroup:
// with CAP_SYS_ADMIN it then widens the pod's rules. The default seccomp profile denies it (tested
// here); without seccomp or a user namespace those capabilities are beyond what libjail can hold
// (SECURITY.md), which the last subtest records.
func TestEscapePodCgroup(t *testing.T) {
	testutil.RequireRoot(t)
	devCg := testutil.RequireCgroupV1(t, "devices")
	pidsCg := testutil.RequireCgroupV1(t, "pids")
	rootfs := escapeRootfs(t)

	for _, withSeccomp := range []bool{true, false} {
		t.Run(fmt.Sprint("seccomp=", withSeccomp), func(t *testing.T) {
			if !withSeccomp {
				knownEscape(t, "outside the threat model: CAP_DAC_READ_SEARCH+CAP_SYS_ADMIN in the initial user namespace without seccomp open the pod cgroup by handle")
			}
			pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{
				CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: filepath.Join(t.TempDir(), "ns"),
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = pod.Destroy() })
			podDev := filepath.Join(devCg, pod.CgroupPath())
			podPids := filepath.Join(pidsCg, pod.CgroupPath())
			require.NoError(t, os.WriteFile(filepath.Join(podPids, "pids.max"), []byte("1000"), 0))
			h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, podDev, 0)
			require.NoError(t, err)
			read := func(p string) string {
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				return string(b)
			}
			devBefore := read(filepath.Join(podDev, "devices.list"))

			spec := withCgroupMount(attackSpec(t, rootfs,
				"write", "/sys/fs/cgroup/devices/../devices.allow", "a *:* rwm",
				"write", "/sys/fs/cgroup/pids/../pids.max", "max",
				"mount", "cgroup", "/mnt/cg", "cgroup", "devices",
				"write", "/mnt/cg/../devices.allow", "a *:* rwm",
				"handle", "/sys/fs/cgroup/devices", fmt.Sprint(h.Type()), hex.EncodeToString(h.Bytes()), "devices.allow", "b "+loopMajor+":"+loopMinor+" rwm",
				// Then its own cgroup, which v1 lets follow whatever the parent allows.
				"write", "/sys/fs/cgroup/devices/devices.allow", "b "+loopMajor+":"+loopMinor+" rwm",
				"mknod", "/dev/xloop", "b", loopMajor, loopMinor,
			))
			spec.Hostname = ""
			if withSeccomp {
				spec.Linux.Seccomp = seccomp.Default()
			}
			res := mustAttack(t, spec, Options{pod: pod})
			if withSeccomp {
				assert.Equal(t, "open_by_handle_at EPERM", res["handle devices.allow"])
			}
			assert.NotEqual(t, "WROTE", res["handle devices.allow"], "ESCAPE: wrote the pod's devices.allow by handle")
			assert.NotEqual(t, "ok", res["open /dev/xloop"], "ESCAPE: opened the loop device")
			assert.Equal(t, devBefore, read(filepath.Join(podDev, "devices.list")), "ESCAPE: the pod's device rules changed")
			assert.Equal(t, "1000\n", read(filepath.Join(podPids, "pids.max")), "ESCAPE: the pod's pids limit changed")
		})
	}
}
