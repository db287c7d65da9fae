package libjail

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

// TestEveryNamespaceCreated: a container asking for all eight types gets eight new namespaces,
// its uid 0 is the mapped host uid, its cgroup namespace is rooted at its own cgroup and its
// clocks carry the offsets.
func TestEveryNamespaceCreated(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireKernel(t, 5, 6) // time namespaces
	spec := probeSpec(t)
	spec.Linux.Namespaces = append(spec.Linux.Namespaces,
		specs.LinuxNamespace{Type: specs.UserNamespace}, specs.LinuxNamespace{Type: specs.CgroupNamespace},
		specs.LinuxNamespace{Type: specs.TimeNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}, "monotonic": {Secs: 86400}}
	// Without its own network namespace's privilege sysfs could not be mounted in a user namespace;
	// here the container has both.
	r := runProbe(t, spec, Options{})

	for _, ns := range []string{"pid", "mnt", "uts", "ipc", "net", "user", "cgroup", "time"} {
		assert.NotEqual(t, hostNS(t, ns), r.Namespaces[ns], "a new %s namespace", ns)
	}
	assert.Equal(t, 0, r.UID, "root inside")
	// Every line of /proc/self/cgroup is the namespace's root: the container's own cgroup.
	for _, l := range r.Cgroup {
		parts := strings.SplitN(l, ":", 3)
		require.Len(t, parts, 3, l)
		assert.Equal(t, "/", parts[2], "cgroup namespace root: %s", l)
	}
	up, err := strconv.ParseFloat(strings.Fields(r.Uptime)[0], 64)
	require.NoError(t, err)
	assert.Greater(t, up, float64(86400*365), "the boottime offset shows in /proc/uptime")
}

// TestUserNamespaceMapping: uid 0 in the container is the host uid the mapping names, as the
// host sees the files the container creates.
func TestUserNamespaceMapping(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := fixtures.Rootfs(t)
	require.NoError(t, os.Chmod(rootfs+"/tmp", 0o1777))
	spec := fixtures.Spec(rootfs, "/bin/sh", "-c", "touch /tmp/made-inside && cat /proc/self/uid_map")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}}
	var out strings.Builder
	c, err := New(testutil.Name(t, "c"), spec, Options{Stdout: &out, Stderr: os.Stderr})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Start(t.Context()))
	st, err := c.Wait()
	require.NoError(t, err)
	require.True(t, st.Success())
	assert.Equal(t, []string{"0", "200000", "1000"}, strings.Fields(out.String()))
	fi, err := os.Stat(rootfs + "/tmp/made-inside")
	require.NoError(t, err)
	assert.Equal(t, uint32(200000), fileUID(fi), "the file's owner on the host is the mapped uid")
}

func fileUID(fi os.FileInfo) uint32 {
	return fi.Sys().(*syscall.Stat_t).Uid
}

// TestJoinAnotherContainersNamespaces: a second container joins the first's mount and pid
// namespaces by path (it sees the first's root and processes) and creates the rest.
func TestJoinAnotherContainersNamespaces(t *testing.T) {
	testutil.RequireRoot(t)
	first := fixtures.Spec(fixtures.Rootfs(t), "/bin/sleep", "60")
	first.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	a, err := New(testutil.Name(t, "a"), first, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Destroy(true) })
	require.NoError(t, a.Start(t.Context()))
	pid := a.Pid()

	second := probeSpec(t)
	second.Mounts = nil
	second.Linux.MaskedPaths, second.Linux.ReadonlyPaths = nil, nil
	second.Linux.Namespaces = []specs.LinuxNamespace{
		{Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", pid)},
		{Type: specs.MountNamespace, Path: fmt.Sprintf("/proc/%d/ns/mnt", pid)},
		{Type: specs.UTSNamespace}, {Type: specs.IPCNamespace}, {Type: specs.NetworkNamespace},
	}
	r := runProbe(t, second, Options{})
	assert.Equal(t, nsInode(t, pid, "pid"), r.Namespaces["pid"], "joined the first's pid namespace")
	assert.Equal(t, nsInode(t, pid, "mnt"), r.Namespaces["mnt"], "joined the first's mount namespace")
	assert.NotEqual(t, 1, r.PID, "not the pid namespace's init")
	assert.NotEqual(t, nsInode(t, pid, "net"), r.Namespaces["net"])

	bad := probeSpec(t) // mounts given with a joined mount namespace: a plan error naming the field
	bad.Linux.Namespaces = second.Linux.Namespaces
	_, err = New(testutil.Name(t, "bad"), bad, Options{})
	require.ErrorIs(t, err, ErrInvalidSpec)
	assert.Contains(t, err.Error(), "mounts")
}

// TestIDMappedMount: a host directory owned by root, bind-mounted with "idmap" into a container
// with its own user namespace, shows its files as owned by the container's root; without idmap
// they are nobody's.
func TestIDMappedMount(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireKernel(t, 5, 12)
	src := t.TempDir()
	require.NoError(t, os.Chmod(src, 0o755))
	require.NoError(t, os.WriteFile(src+"/file", []byte("x"), 0o644))
	for _, tc := range []struct {
		opts []string
		want string
	}{{[]string{"bind", "idmap"}, "0"}, {[]string{"bind"}, "65534"}} {
		rootfs := fixtures.Rootfs(t)
		// The mount point exists: the container's root is not the rootfs owner, so cannot make it.
		require.NoError(t, os.Mkdir(rootfs+"/mnt/src", 0o755))
		spec := fixtures.Spec(rootfs, "/bin/stat", "-c", "%u", "/mnt/src/file")
		spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/mnt/src", Type: "bind", Source: src, Options: tc.opts})
		var out strings.Builder
		c, err := New(testutil.Name(t, "c"), spec, Options{Stdout: &out, Stderr: os.Stderr})
		require.NoError(t, err)
		require.NoError(t, c.Start(t.Context()), "options %v", tc.opts)
		_, err = c.Wait()
		require.NoError(t, err)
		require.NoError(t, c.Destroy(false))
		assert.Equal(t, tc.want, strings.TrimSpace(out.String()), "options %v", tc.opts)
	}
}
