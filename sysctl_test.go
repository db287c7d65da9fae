package libjail

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

func withoutNS(s *specs.Spec, t specs.LinuxNamespaceType) {
	var keep []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != t {
			keep = append(keep, n)
		}
	}
	s.Linux.Namespaces = keep
}

func TestSysctlPlanErrors(t *testing.T) {
	rootfs := t.TempDir()
	cases := map[string]struct {
		sysctl map[string]string
		edit   func(s *specs.Spec)
		want   string
	}{
		"global kernel":        {map[string]string{"kernel.panic": "1"}, nil, "not namespaced"},
		"global vm":            {map[string]string{"vm.swappiness": "10"}, nil, "not namespaced"},
		"net without netns":    {map[string]string{"net.ipv4.ip_forward": "1"}, func(s *specs.Spec) { withoutNS(s, specs.NetworkNamespace) }, "needs a new network namespace"},
		"ipc without ipcns":    {map[string]string{"kernel.shmmax": "1"}, func(s *specs.Spec) { withoutNS(s, specs.IPCNamespace) }, "needs a new ipc namespace"},
		"mqueue without ipcns": {map[string]string{"fs.mqueue.queues_max": "1"}, func(s *specs.Spec) { withoutNS(s, specs.IPCNamespace) }, "needs a new ipc namespace"},
		"domainname without utsns": {map[string]string{"kernel.domainname": "x"}, func(s *specs.Spec) {
			withoutNS(s, specs.UTSNamespace)
			s.Hostname = ""
		}, "needs a new uts namespace"},
		"agent's netns joined": {map[string]string{"net.ipv4.ip_forward": "1"}, func(s *specs.Spec) {
			withoutNS(s, specs.NetworkNamespace)
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"})
		}, "is the agent's or the VM's own"},
		"hostname twice":   {map[string]string{"kernel.hostname": "x"}, nil, "conflicts with the hostname field"},
		"domainname twice": {map[string]string{"kernel.domainname": "x"}, func(s *specs.Spec) { s.Domainname = "y" }, "conflicts with the domainname field"},
		"dotdot":           {map[string]string{"net/../kernel/panic": "1"}, nil, "malformed key"},
		"empty component":  {map[string]string{"net..ipv4": "1"}, nil, "malformed key"},
		"no proc": {map[string]string{"net.ipv4.ip_forward": "1"}, func(s *specs.Spec) {
			s.Mounts = s.Mounts[1:]
		}, "needs a proc mount at /proc"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := fixtures.Spec(rootfs, "/bin/true")
			spec.Linux.Sysctl = tc.sysctl
			if tc.edit != nil {
				tc.edit(spec)
			}
			_, err := New("sysctl-plan", spec, Options{})
			require.Error(t, err)
			var se *StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, StepPlan, se.Step)
			assert.ErrorIs(t, err, ErrInvalidSpec)
			assert.Contains(t, err.Error(), "linux.sysctl")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSysctlPlan(t *testing.T) {
	spec := fixtures.Spec(t.TempDir(), "/bin/true")
	spec.Hostname = ""
	spec.Linux.Sysctl = map[string]string{
		"net.ipv4.ip_forward":               "1",
		"net/ipv4/conf/eth0.100/forwarding": "0",
		"kernel.sem":                        "250 32000 32 128",
		"fs.mqueue.msg_max":                 "20",
		"kernel.hostname":                   "h",
	}
	c, err := New("sysctl-plan", spec, Options{})
	require.NoError(t, err)
	assert.Equal(t, []sysctl{
		{Key: "fs.mqueue.msg_max", Path: "fs/mqueue/msg_max", Value: "20"},
		{Key: "kernel.hostname", Path: "kernel/hostname", Value: "h"},
		{Key: "kernel.sem", Path: "kernel/sem", Value: "250 32000 32 128"},
		{Key: "net.ipv4.ip_forward", Path: "net/ipv4/ip_forward", Value: "1"},
		{Key: "net/ipv4/conf/eth0.100/forwarding", Path: "net/ipv4/conf/eth0.100/forwarding", Value: "0"},
	}, c.child.Sysctls)
}

// TestSysctls writes one sysctl of each namespaced class and reads it back from inside; the
// agent's own values do not move.
func TestSysctls(t *testing.T) {
	testutil.RequireRoot(t)
	set := map[string]string{
		"kernel.shmmax":               "12345678",       // ipc
		"fs.mqueue.queues_max":        "77",             // ipc (mqueue)
		"net.ipv4.ip_forward":         "1",              // net
		"net.ipv4.tcp_keepalive_time": "1234",           // net
		"kernel.domainname":           "sysctl.example", // uts
	}
	var paths []string
	host := map[string]string{}
	for k := range set {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		paths = append(paths, p)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		host[p] = string(b)
	}
	for name, userns := range map[string]bool{"no user namespace": false, "user namespace": true} {
		t.Run(name, func(t *testing.T) {
			spec := probeSpec(t, "-read", strings.Join(paths, ","))
			spec.Linux.Sysctl = set
			if userns {
				spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
				spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
			}
			r := runProbe(t, spec, Options{})
			for k, v := range set {
				p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
				assert.Equal(t, v, r.Reads[p], "%s inside the container", k)
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				assert.Equal(t, host[p], string(b), "%s of the agent unchanged", k)
			}
			assert.Equal(t, "sysctl.example", r.Domainname)
		})
	}
}

// TestSysctlFakeProc: a /proc that is not the container's own procfs never receives the writes.
// The spec binds procfs trees onto /proc (allowed by the mounts package, which checks only that
// the source is a procfs): the agent's whole /proc (another pid namespace) and a part of one.
func TestSysctlFakeProc(t *testing.T) {
	testutil.RequireRoot(t)
	cases := map[string]struct{ source, want string }{
		"procfs of the agent's pid namespace": {"/proc", "belongs to another pid namespace"},
		"part of a procfs":                    {"/proc/sys", "is not the root of a procfs"},
	}
	rootfs := fixtures.Rootfs(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := fixtures.Spec(rootfs, "/bin/true")
			spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
			spec.Mounts[0] = specs.Mount{Destination: "/proc", Type: "bind", Source: tc.source, Options: []string{"bind"}}
			spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
			spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
			before, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
			require.NoError(t, err)
			c, err := New(testutil.Name(t, "c"), spec, Options{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Destroy(true) })
			err = c.Create(context.Background())
			require.Error(t, err)
			var se *StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, StepSysctl, se.Step, "%v", err)
			assert.Contains(t, err.Error(), "not the container's own procfs")
			assert.Contains(t, err.Error(), tc.want)
			after, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
			require.NoError(t, err)
			assert.Equal(t, string(before), string(after), "the agent's sysctl unchanged")
		})
	}
}

// TestSysctlWriteErrors: what the kernel refuses fails the sysctl step with its errno.
func TestSysctlWriteErrors(t *testing.T) {
	testutil.RequireRoot(t)
	cases := map[string]struct {
		key, value string
		errno      unix.Errno
	}{
		"unknown entry": {"net.ipv4.libjail_nope", "1", unix.ENOENT},
		"bad value":     {"kernel.shmmni", "banana", unix.EINVAL},
	}
	rootfs := fixtures.Rootfs(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := fixtures.Spec(rootfs, "/bin/true")
			spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
			spec.Linux.Sysctl = map[string]string{tc.key: tc.value}
			c, err := New(testutil.Name(t, "c"), spec, Options{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Destroy(true) })
			err = c.Create(context.Background())
			var se *StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, StepSysctl, se.Step)
			assert.ErrorIs(t, err, tc.errno)
			assert.Contains(t, err.Error(), tc.key)
		})
	}
}

// TestSysctlInPod: a pod container joins the pod's pinned network and ipc namespaces, which are
// not the agent's: its sysctls are set there, for the whole pod.
func TestSysctlInPod(t *testing.T) {
	testutil.RequireRoot(t)
	pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: filepath.Join(t.TempDir(), "ns")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pod.Destroy() })
	rootfs := fixtures.Rootfs(t)
	spec := fixtures.Spec(rootfs, fixtures.ProbePath, "-read", "/proc/sys/net/ipv4/ip_forward,/proc/sys/kernel/msgmax")
	spec.Hostname = ""
	spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "4321"}
	r := runInPod(t, pod, "writer", spec, nil)
	assert.Equal(t, "1", r.Reads["/proc/sys/net/ipv4/ip_forward"])
	assert.Equal(t, "4321", r.Reads["/proc/sys/kernel/msgmax"])
	// A second container of the pod sees them without asking.
	spec = fixtures.Spec(rootfs, fixtures.ProbePath, "-read", "/proc/sys/kernel/msgmax")
	spec.Hostname = ""
	r = runInPod(t, pod, "reader", spec, nil)
	assert.Equal(t, "4321", r.Reads["/proc/sys/kernel/msgmax"], "the pod's ipc namespace")
}

// FuzzSysctlPath: any key gives a path that stays below /proc/sys, or an error.
func FuzzSysctlPath(f *testing.F) {
	for _, k := range []string{"net.ipv4.ip_forward", "net/ipv4/conf/eth0.100/forwarding", "..", "a/../b", "", "kernel..x"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		path, dotted, err := sysctlPath(key)
		if err != nil {
			return
		}
		if strings.HasPrefix(path, "/") || strings.Contains(dotted, "/") {
			t.Fatalf("%q: path %q, dotted %q", key, path, dotted)
		}
		for _, c := range strings.Split(path, "/") {
			if c == "" || c == "." || c == ".." {
				t.Fatalf("%q: path %q leaves /proc/sys", key, path)
			}
		}
	})
}
