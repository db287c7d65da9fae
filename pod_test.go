package libjail

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/probe"
	"github.com/libjail/libjail/internal/testutil"
	"github.com/libjail/libjail/namespaces"
)

// runInPod runs a probe container in the pod; created, if set, runs while it is held at the start
// barrier.
func runInPod(t *testing.T, pod *Pod, id string, spec *specs.Spec, created func()) probe.Report {
	t.Helper()
	var out, errb strings.Builder
	c, err := pod.NewContainer(id, spec, Options{Stdout: &out, Stderr: &errb})
	require.NoError(t, err)
	require.NoError(t, c.Create(t.Context()))
	if created != nil {
		created()
	}
	require.NoError(t, c.Start(t.Context()))
	st, err := c.Wait()
	require.NoError(t, err)
	require.True(t, st.Success(), "stderr: %s", errb.String())
	require.NoError(t, c.Destroy(false))
	return decodeReport(t, out.String())
}

func TestPodSharesNamespacesAndRestrictsDevices(t *testing.T) {
	testutil.RequireRoot(t)
	pinDir := filepath.Join(t.TempDir(), "ns")
	pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: pinDir, Hostname: "the-pod"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pod.Destroy() })

	// The pod cgroup is restricted before any container exists in it (v1: its list; v2: a program).
	podList := podDeviceRules(t, pod.CgroupPath())
	if podList != nil {
		assert.NotContains(t, podList(), "a *:* rwm", "the pod cgroup is not allow-all")
		assert.Contains(t, podList(), "c 1:3 rwm", "the pod allows /dev/null")
	}

	rootfs := fixtures.Rootfs(t)
	spec := func() *specs.Spec {
		s := fixtures.Spec(rootfs, fixtures.ProbePath, "-open", "/dev/null,/dev/loop0")
		s.Hostname = "" // the uts namespace is the pod's
		// loop0 exists in the container only through linux.devices; the rules decide if it opens.
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/loop0", Type: "b", Major: 7, Minor: 0}}
		return s
	}
	a := runInPod(t, pod, "a", spec(), nil)
	withLoop := spec()
	withLoop.Linux.Resources = &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "b", Major: ptr(int64(7)), Minor: ptr(int64(0)), Access: "r"}},
		Pids:    &specs.LinuxPids{Limit: ptr(int64(100))}, // a controller the pod cgroup delegates (v2)
	}
	b := runInPod(t, pod, "b", withLoop, func() {
		// While b exists the pod's set is the union: it includes b's rule.
		if podList != nil {
			assert.Contains(t, podList(), "b 7:0 r")
		}
	})

	for _, ns := range []string{"net", "ipc", "uts"} {
		assert.Equal(t, a.Namespaces[ns], b.Namespaces[ns], "both containers share the pod's %s namespace", ns)
		assert.NotEqual(t, hostNS(t, ns), a.Namespaces[ns], "the pod's %s namespace is not the host's", ns)
	}
	// a and b ran one after the other: the kernel may give b's new pid namespace a's freed inode.
	assert.NotEqual(t, hostNS(t, "pid"), a.Namespaces["pid"], "a container has its own pid namespace")
	assert.NotEqual(t, hostNS(t, "pid"), b.Namespaces["pid"])
	assert.Equal(t, "the-pod", a.Hostname, "the pod's hostname")
	assert.Equal(t, "the-pod", b.Hostname)
	assert.Equal(t, "ok", a.Opens["/dev/null"])
	assert.Equal(t, "EPERM", a.Opens["/dev/loop0"], "a node without a rule is denied")
	assert.Equal(t, "ok", b.Opens["/dev/loop0"], "the container's rule allows it")

	if podList != nil {
		assert.NotContains(t, podList(), "b 7:0", "b's rule left the pod with b")
	}

	netPath := pod.NamespacePath(namespaces.Network)
	require.NotEmpty(t, netPath)
	require.NoError(t, pod.Destroy())
	assertNoCgroup(t, pod.CgroupPath())
	mi, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mi), pinDir, "no pinned namespace stays mounted")
	_, err = os.Stat(netPath)
	assert.ErrorIs(t, err, os.ErrNotExist, "the pinned net namespace's file is gone with the pod")
	_, err = os.Stat(pinDir)
	assert.ErrorIs(t, err, os.ErrNotExist, "and the directory the pod made for its pins")
}

// TestPersistentPod: a pod and its container kept under a state dir, taken over by "another
// process" (a fresh Load) for every step, as a runtime command line does.
func TestPersistentPod(t *testing.T) {
	testutil.RequireRoot(t)
	devCg := testutil.RequireCgroupV1(t, "devices")
	stateDir := t.TempDir()
	podID := testutil.Name(t, "pod")
	pod, err := NewPod(podID, PodOptions{CgroupPath: "/" + podID, Share: []namespaces.Type{}, StateDir: stateDir})
	require.NoError(t, err)
	t.Cleanup(func() {
		if p, err := LoadPod(stateDir, podID, PodOptions{}); err == nil {
			_ = p.Destroy()
		}
	})
	podList := func() string {
		b, err := os.ReadFile(filepath.Join(devCg, "/"+podID, "devices.list"))
		require.NoError(t, err)
		return string(b)
	}
	_, err = NewPod(podID, PodOptions{CgroupPath: "/" + podID + "-2", Share: []namespaces.Type{}, StateDir: stateDir})
	require.ErrorIs(t, err, os.ErrExist, "a pod id is taken once")

	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sleep", "60")
	spec.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "b", Major: ptr(int64(7)), Minor: ptr(int64(0)), Access: "r"},
	}}
	id := testutil.Name(t, "c")
	c, err := pod.NewContainer(id, spec, Options{StateDir: stateDir})
	require.NoError(t, err)
	require.NoError(t, c.Create(t.Context()))
	assert.Contains(t, podList(), "b 7:0 r", "the pod's union has the container's rule")
	c.Release()

	c2, err := Load(stateDir, id, Options{})
	require.NoError(t, err)
	require.NoError(t, c2.Start(t.Context()))
	require.NoError(t, c2.Destroy(true))
	reapAll()
	assert.NotContains(t, podList(), "b 7:0", "destroying the container from another handle shrinks the pod")

	p2, err := LoadPod(stateDir, podID, PodOptions{})
	require.NoError(t, err)
	require.NoError(t, p2.Destroy())
	assertNoCgroup(t, "/"+podID)
	_, err = LoadPod(stateDir, podID, PodOptions{})
	assert.ErrorIs(t, err, ErrNotExist)
}

// podDeviceRules returns a reader of the pod cgroup's v1 devices.list, or nil on a machine without
// the v1 devices controller (a v2 program's rules cannot be read back; there the opens the probe
// reports are the check).
func podDeviceRules(t *testing.T, cgPath string) func() string {
	dir := "/sys/fs/cgroup/devices"
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
		return nil
	}
	return func() string {
		b, err := os.ReadFile(filepath.Join(dir, cgPath, "devices.list"))
		require.NoError(t, err)
		return string(b)
	}
}

// TestHotPlugDevice: adding a device rule to a running container of a pod widens the pod first,
// then the container; the container's processes see the device open.
func TestHotPlugDevice(t *testing.T) {
	testutil.RequireRoot(t)
	pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: filepath.Join(t.TempDir(), "ns")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pod.Destroy() })
	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sleep", "60")
	spec.Hostname = ""
	spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/loop0", Type: "b", Major: 7, Minor: 0}}
	c, err := pod.NewContainer("hotplug", spec, Options{})
	require.NoError(t, err)
	require.NoError(t, c.Start(t.Context()))

	probeOpen := func() string {
		var out strings.Builder
		p, err := c.Exec(t.Context(), &specs.Process{Args: []string{fixtures.ProbePath, "-open", "/dev/loop0"}, Cwd: "/"},
			ExecOptions{Stdout: &out})
		require.NoError(t, err)
		_, err = p.Wait()
		require.NoError(t, err)
		return decodeReport(t, out.String()).Opens["/dev/loop0"]
	}
	assert.Equal(t, "EPERM", probeOpen(), "no rule yet")
	require.NoError(t, c.Update(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "b", Major: ptr(int64(7)), Minor: ptr(int64(0)), Access: "r"},
	}}))
	assert.Equal(t, "ok", probeOpen(), "hot-plugged")
	require.NoError(t, c.Update(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{}}))
	assert.Equal(t, "EPERM", probeOpen(), "unplugged")
}

// TestPodUserNamespace: a pod pinning a user namespace creates its network namespace inside it;
// a container joining both is privileged over its network namespace: it mounts sysfs.
func TestPodUserNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	mapping := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{
		CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: filepath.Join(t.TempDir(), "ns"),
		UIDMappings: mapping, GIDMappings: mapping,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pod.Destroy() })
	spec := probeSpec(t) // mounts sysfs at /sys
	spec.Hostname = ""
	r := runInPod(t, pod, "c", spec, nil)
	assert.Equal(t, inodeOf(t, pod.NamespacePath(namespaces.User)), r.Namespaces["user"], "the pod's user namespace")
	assert.Equal(t, inodeOf(t, pod.NamespacePath(namespaces.Network)), r.Namespaces["net"], "the pod's network namespace")
	assert.Equal(t, 0, r.UID)
	assert.Equal(t, 1, r.PID, "init of its own pid namespace, owned by the pod's user namespace")
	var sysfs bool
	for _, l := range r.Mountinfo {
		if f := strings.Fields(l); len(f) > 4 && f[4] == "/sys" && strings.Contains(l, " - sysfs ") {
			sysfs = true
		}
	}
	assert.True(t, sysfs, "sysfs mounted: %v", r.Mountinfo)
}

func inodeOf(t *testing.T, path string) uint64 {
	var st unix.Stat_t
	require.NoError(t, unix.Stat(path, &st))
	return st.Ino
}

// TestPodPIDHolderSealed: a pod sharing its pid namespace keeps it with a helper that is pid 1 of
// every container; it runs the sealed copy of the agent, so /proc/1/exe is nothing to rewrite.
func TestPodPIDHolderSealed(t *testing.T) {
	testutil.RequireRoot(t)
	pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{
		CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: filepath.Join(t.TempDir(), "ns"),
		Share: []namespaces.Type{namespaces.PID, namespaces.Network},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pod.Destroy() })
	require.NotZero(t, pod.pinned.InitPID)
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pod.pinned.InitPID))
	require.NoError(t, err)
	assert.Contains(t, exe, "memfd:libjail-init", "the holder runs the sealed copy")
	_, err = os.OpenFile(fmt.Sprintf("/proc/%d/exe", pod.pinned.InitPID), os.O_WRONLY, 0)
	assert.Error(t, err, "the holder's executable cannot be opened for writing")
}
