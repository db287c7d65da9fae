package libjail

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
	"github.com/libjail/libjail/seccomp"
)

// These tests run whole containers and assert, from the probe's report, that each spec section
// reached the kernel.

func TestProcessUserAndLimits(t *testing.T) {
	testutil.RequireRoot(t)
	spec := probeSpec(t)
	umask := uint32(0o027)
	adj := 500
	spec.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{20, 30}, Umask: &umask}
	// The probe is a Go program, and Go raises its own soft RLIMIT_NOFILE to the hard limit at
	// start: give NOFILE equal limits and check soft < hard on another resource.
	spec.Process.Rlimits = []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 2048},
		{Type: "RLIMIT_MSGQUEUE", Soft: 4096, Hard: 8192},
		{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
	}
	spec.Process.NoNewPrivileges = true
	spec.Process.OOMScoreAdj = &adj
	spec.Process.Env = append(spec.Process.Env, "LIBJAIL_TEST=1")
	spec.Process.Cwd = "/work/dir"
	r := runProbe(t, spec, Options{})

	assert.Equal(t, 1000, r.UID)
	assert.Equal(t, 1000, r.EUID)
	assert.Equal(t, 1001, r.GID)
	assert.ElementsMatch(t, []int{20, 30}, r.Groups)
	assert.Equal(t, 0o027, r.Umask)
	assert.Equal(t, [2]uint64{2048, 2048}, r.Rlimits["RLIMIT_NOFILE"])
	assert.Equal(t, [2]uint64{4096, 8192}, r.Rlimits["RLIMIT_MSGQUEUE"])
	assert.Equal(t, [2]uint64{0, 0}, r.Rlimits["RLIMIT_CORE"])
	assert.Equal(t, "1", r.Status["NoNewPrivs"])
	assert.Equal(t, "500", r.OOMScoreAdj)
	assert.Equal(t, "/work/dir", r.Cwd, "cwd is created when missing")
	assert.ElementsMatch(t, spec.Process.Env, r.Env, "the env is exactly the spec's")
	// A non-root user with no capabilities section gets no capabilities at all.
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
		assert.Equal(t, "0000000000000000", r.Status[k], k)
	}
}

func TestNoFDsLeakIntoContainer(t *testing.T) {
	testutil.RequireRoot(t)
	// fds the agent holds without O_CLOEXEC must still never reach the container.
	for i := 0; i < 3; i++ {
		fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		require.NoError(t, err)
		t.Cleanup(func() { unix.Close(fd) })
	}
	r := runProbe(t, probeSpec(t), Options{})
	var extra []string
	for fd, target := range r.FDs {
		n, _ := strconv.Atoi(fd)
		// Beyond stdio, only the probe's own: the Go runtime's poller and the directory it lists.
		own := target == "" || target == "anon_inode:[eventpoll]" || target == "anon_inode:[eventfd]"
		if n > 2 && !own {
			extra = append(extra, fd+" -> "+target)
		}
	}
	assert.Empty(t, extra, "fds of the agent reached the container: %v", r.FDs)
}

func TestCapabilitiesReachContainer(t *testing.T) {
	testutil.RequireRoot(t)
	spec := probeSpec(t)
	caps := []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"}
	spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: []string{"CAP_NET_BIND_SERVICE"},
	}
	r := runProbe(t, spec, Options{})
	want := fmt.Sprintf("%016x", uint64(1<<unix.CAP_CHOWN|1<<unix.CAP_NET_BIND_SERVICE|1<<unix.CAP_KILL))
	assert.Equal(t, want, r.Status["CapBnd"])
	assert.Equal(t, want, r.Status["CapEff"])
	assert.Equal(t, want, r.Status["CapPrm"])
	assert.Equal(t, want, r.Status["CapInh"])
	assert.Equal(t, fmt.Sprintf("%016x", uint64(1<<unix.CAP_NET_BIND_SERVICE)), r.Status["CapAmb"])
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	testutil.RequireRoot(t)
	spec := probeSpec(t, "-read", "/proc/keys,/proc/timer_list", "-open", "/sys/firmware",
		"-write", "/proc/sys/kernel/domainname=x,/sys/firmware/x=y")
	r := runProbe(t, spec, Options{})
	// Masked files read as /dev/null; a masked directory is an empty read-only tmpfs.
	assert.Equal(t, "0 bytes", r.Opens["read:/proc/keys"])
	assert.Equal(t, "0 bytes", r.Opens["read:/proc/timer_list"])
	assert.Equal(t, "ok", r.Opens["/sys/firmware"])
	assert.Equal(t, "EROFS", r.Opens["write:/sys/firmware/x"])
	assert.Equal(t, "EROFS", r.Opens["write:/proc/sys/kernel/domainname"], "read-only path")
}

func TestHooks(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	spec := trueSpec(t)
	hook := func(name string) specs.Hook {
		// Each hook records that it ran and the state it got, in the runtime's view of dir.
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(dir, name)}}
	}
	spec.Hooks = &specs.Hooks{
		CreateRuntime: []specs.Hook{hook("createRuntime")},
		Poststart:     []specs.Hook{hook("poststart")},
		Poststop:      []specs.Hook{hook("poststop")},
	}
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Create(t.Context()))
	assert.FileExists(t, filepath.Join(dir, "createRuntime"))
	require.NoError(t, c.Start(t.Context()))
	_, err = c.Wait()
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "poststart"))
	require.NoError(t, c.Destroy(false))
	b, err := os.ReadFile(filepath.Join(dir, "poststop"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"status":"stopped"`)
	b, err = os.ReadFile(filepath.Join(dir, "createRuntime"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"status":"creating"`)
	assert.Contains(t, string(b), c.ID())

	// createContainer runs in the container's namespaces before pivot_root (host paths still
	// visible), startContainer after it (the container's paths).
	rootfs := fixtures.Rootfs(t)
	spec = fixtures.Spec(rootfs, "/bin/true")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	spec.Hostname = "hooked"
	spec.Hooks = &specs.Hooks{
		CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "readlink /proc/self/ns/uts > " + filepath.Join(dir, "createContainer")}}},
		StartContainer:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /tmp/startContainer"}}},
	}
	c, err = New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	require.NoError(t, c.Start(t.Context()))
	_, err = c.Wait()
	require.NoError(t, err)
	require.NoError(t, c.Destroy(false))
	b, err = os.ReadFile(filepath.Join(dir, "createContainer"))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("uts:[%d]\n", hostNS(t, "uts"))[:4], string(b)[:4])
	assert.NotEqual(t, fmt.Sprintf("uts:[%d]\n", hostNS(t, "uts")), string(b), "createContainer ran in the container's uts namespace")
	b, err = os.ReadFile(filepath.Join(rootfs, "tmp/startContainer"))
	require.NoError(t, err, "startContainer wrote inside the container's root")
	assert.Contains(t, string(b), `"status":"created"`)

	// A hook past its timeout fails its step.
	spec = trueSpec(t)
	one := 1
	spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: &one}}}
	c, err = New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	err = c.Create(t.Context())
	var he *HookError
	require.ErrorAs(t, err, &he)
	assert.Contains(t, err.Error(), "timeout")
	assertNoCgroup(t, spec.Linux.CgroupsPath)

	// A failing createRuntime hook fails Create, naming the hook, and leaves nothing behind.
	spec = trueSpec(t)
	spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
	c, err = New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	err = c.Create(t.Context())
	require.ErrorAs(t, err, &he)
	assert.Equal(t, HookCreateRuntime, he.Kind)
	assertNoCgroup(t, spec.Linux.CgroupsPath)
}

// TestCwdThroughLeakedFD: process.cwd "/proc/self/fd/N" naming an fd the agent holds without
// O_CLOEXEC (the CVE-2024-21626 class) never gives the container a cwd outside its root: the child
// closes every inherited fd first, and checks the cwd after chdir.
func TestCwdThroughLeakedFD(t *testing.T) {
	testutil.RequireRoot(t)
	top := slices.Max(leakDirFDs(t, t.TempDir(), t.TempDir()))
	for n := 3; n <= top+3; n++ {
		spec := probeSpec(t)
		spec.Process.Cwd = "/proc/self/fd/" + strconv.Itoa(n)
		var out strings.Builder
		c, err := New(testutil.Name(t, "c"), spec, Options{Stdout: &out})
		require.NoError(t, err)
		err = c.Start(t.Context())
		if err != nil {
			_ = c.Destroy(true)
			continue // refused: the defence
		}
		_, err = c.Wait()
		require.NoError(t, err)
		require.NoError(t, c.Destroy(false))
		if out.Len() > 0 {
			r := decodeReport(t, out.String())
			assert.True(t, strings.HasPrefix(r.Cwd, "/"), "fd %d: cwd %q is outside the root", n, r.Cwd)
		}
	}
}

func TestReadonlyRootAndNoPivot(t *testing.T) {
	testutil.RequireRoot(t)
	for _, noPivot := range []bool{false, true} {
		spec := probeSpec(t, "-write", "/x=1,/tmp/y=1")
		spec.Root.Readonly = true
		spec.Process.Cwd = "/made/for/cwd" // created before the root turns read-only
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
		r := runProbe(t, spec, Options{NoPivot: noPivot})
		assert.Equal(t, "EROFS", r.Opens["write:/x"], "read-only root (no-pivot %v)", noPivot)
		assert.Equal(t, "ok", r.Opens["write:/tmp/y"], "a tmpfs on it is writable")
		assert.Equal(t, "/made/for/cwd", r.Cwd)
		assert.Equal(t, 1, r.PID)
	}
}

// TestCgroupsPathMustBeNew: a spec naming an existing cgroup (another container's, the agent's) is
// refused: the container would impose its limits and device rules on it, and Destroy would kill
// every process in it.
func TestCgroupsPathMustBeNew(t *testing.T) {
	testutil.RequireRoot(t)
	victim := fixtures.Spec(fixtures.Rootfs(t), "/bin/sleep", "60")
	victim.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	v, err := New(testutil.Name(t, "victim"), victim, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Destroy(true) })
	require.NoError(t, v.Start(t.Context()))

	spec := probeSpec(t)
	spec.Linux.CgroupsPath = victim.Linux.CgroupsPath
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	err = c.Start(t.Context())
	require.ErrorIs(t, err, cgroups.ErrExists)
	assert.Contains(t, err.Error(), "linux.cgroupsPath")
	assert.Equal(t, StatusRunning, v.Status(), "the other container lives on")
	pids, err := v.Pids()
	require.NoError(t, err)
	assert.Contains(t, pids, v.Pid(), "in its cgroup, which is still there")
}

func TestUnsupportedSectionsRefused(t *testing.T) {
	rootfs := t.TempDir()
	for field, edit := range map[string]func(*specs.Spec){
		"linux.intelRdt":     func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} },
		"linux.memoryPolicy": func(s *specs.Spec) { s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_BIND"} },
		"linux.netDevices":   func(s *specs.Spec) { s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}} },
		"windows":            func(s *specs.Spec) { s.Windows = &specs.Windows{} },
		"vm":                 func(s *specs.Spec) { s.VM = &specs.VM{} },
		"ociVersion":         func(s *specs.Spec) { s.Version = "2.0.0" },
	} {
		spec := fixtures.Spec(rootfs, "/bin/true")
		edit(spec)
		_, err := New("unsupported", spec, Options{})
		require.ErrorIs(t, err, ErrInvalidSpec, field)
		assert.Contains(t, err.Error(), field)
	}
}

// TestSpecDenyAllFirst: the device list engines write (deny all first, then their allows) keeps
// the default devices every container needs.
func TestSpecDenyAllFirst(t *testing.T) {
	testutil.RequireRoot(t)
	spec := probeSpec(t, "-open", "/dev/null,/dev/zero,/dev/loop0")
	spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/loop0", Type: "b", Major: 7, Minor: 0}}
	spec.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
	}}
	r := runProbe(t, spec, Options{})
	assert.Equal(t, "ok", r.Opens["/dev/null"])
	assert.Equal(t, "ok", r.Opens["/dev/zero"], "a default device, after the spec's deny-all")
	assert.Equal(t, "EPERM", r.Opens["/dev/loop0"])
}

// TestWarnsUndefendableSpec: CAP_SYS_ADMIN without a user namespace or seccomp is allowed (the
// spec is the caller's) but named in a warning, since no cgroup rule can hold it.
func TestWarnsUndefendableSpec(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	spec := fixtures.Spec(t.TempDir(), "/bin/true")
	all := []string{"CAP_SYS_ADMIN", "CAP_CHOWN"}
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	_, err := New("warned", spec, Options{Logger: log})
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "CAP_SYS_ADMIN in the initial user namespace without seccomp")

	logs.Reset()
	spec.Linux.Seccomp = seccomp.Default()
	_, err = New("not-warned", spec, Options{Logger: log})
	require.NoError(t, err)
	assert.NotContains(t, logs.String(), "CAP_SYS_ADMIN")
}

// leakDirFDs opens each directory without O_CLOEXEC, as careless agent code would, for the
// test's lifetime, and returns the fds.
func leakDirFDs(t *testing.T, dirs ...string) []int {
	t.Helper()
	var fds []int
	for _, d := range dirs {
		fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY, 0) // no O_CLOEXEC, on purpose
		require.NoError(t, err)
		t.Cleanup(func() { unix.Close(fd) })
		fds = append(fds, fd)
	}
	return fds
}
