package libjail

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/escape"
	"github.com/libjail/libjail/internal/testutil"
	"github.com/libjail/libjail/namespaces"
)

func tracerPid(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// agentAttack: everything a container tries against the agent process and through the processes
// it can see: signal and trace the agent's pid, read its environment, read a host file through
// every visible /proc/PID/root, and list what it sees.
func agentAttack(marker string, trace bool) []string {
	agent := strconv.Itoa(os.Getpid())
	ops := []string{"kill0", agent, "read", "/proc/" + agent + "/environ", "roots", marker, "exes", "0s"}
	if trace {
		ops = append(ops, "ptrace", agent, "ptrace", "1")
	}
	return ops
}

func assertNoHostFile(t *testing.T, res escape.Result) {
	t.Helper()
	for k, v := range res {
		assert.NotContains(t, v, "host-secret", "ESCAPE: %s read a host file", k)
	}
}

// TestEscapeAgentAccess: a container with every capability and no seccomp tries to signal, trace
// and read the agent, and to read host files through the root of every process it can see. In a
// new pid namespace the agent is not visible. On the host, the agent must not be traced.
//
// With the host pid namespace the spec itself hands the container the agent (every capability
// includes CAP_SYS_PTRACE): that subtest only records what it sees; SECURITY.md says so.
func TestEscapeAgentAccess(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := escapeRootfs(t)
	marker, _ := hostFile(t, "agent")

	t.Run("own pid namespace", func(t *testing.T) {
		res := mustAttack(t, attackSpec(t, rootfs, agentAttack(marker, true)...), Options{})
		agent := strconv.Itoa(os.Getpid())
		if os.Getpid() != 1 {
			assert.Equal(t, "ESRCH", res["kill0 "+agent], "ESCAPE: the agent's pid is visible")
			assert.Equal(t, "ESRCH", res["ptrace "+agent], "ESCAPE: the agent's pid is traceable")
		}
		assertNoHostFile(t, res)
		assert.Equal(t, "0", tracerPid(t), "ESCAPE: the agent is traced")
	})

	// A pod pinning its pid namespace keeps a holder process as that namespace's init: it is
	// pid 1 of every container of the pod, and must not open the host to them (it did: /proc/1/root
	// was the host's /, until the holder was jailed).
	t.Run("pod sharing pid", func(t *testing.T) {
		pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{
			CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: filepath.Join(t.TempDir(), "ns"),
			Share: []namespaces.Type{namespaces.Network, namespaces.IPC, namespaces.UTS, namespaces.PID},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = pod.Destroy() })
		spec := attackSpec(t, rootfs, agentAttack(marker, true)...)
		spec.Hostname = ""
		res := mustAttack(t, spec, Options{pod: pod})
		assertNoHostFile(t, res)
		// The holder is jailed (empty root, own mount and cgroup namespaces, no capabilities): a
		// container with CAP_SYS_PTRACE may trace it and gains nothing; the test logs it.
		t.Logf("ptrace of the pod's pid holder: %s", res["ptrace 1"])
	})

	t.Run("host pid namespace (granted by the spec)", func(t *testing.T) {
		// No ptrace here: it would stop this very test process.
		spec := attackSpec(t, rootfs, agentAttack(marker, false)...)
		var ns []specs.LinuxNamespace
		for _, n := range spec.Linux.Namespaces {
			if n.Type != specs.PIDNamespace {
				ns = append(ns, n)
			}
		}
		spec.Linux.Namespaces = ns
		res, err := attack(t, spec, Options{})
		t.Logf("with the host pid namespace (not a defended configuration): err %v, saw %v", err, res)
	})
}

// TestEscapeSetns: the agent holds host namespace fds without O_CLOEXEC; a container with every
// capability, no seccomp and its own pid, mount, ipc, uts, net and cgroup namespaces tries setns on
// every fd it has and every /proc/PID/ns/* it can see. Afterwards none of its namespaces may be
// the host's (checked against the host's inodes).
func TestEscapeSetns(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := escapeRootfs(t)
	for _, typ := range []string{"net", "ipc", "uts", "pid", "cgroup", "mnt"} {
		fd, err := unix.Open("/proc/self/ns/"+typ, unix.O_RDONLY, 0) // no O_CLOEXEC, on purpose
		require.NoError(t, err)
		t.Cleanup(func() { unix.Close(fd) })
	}
	check := func(t *testing.T, res escape.Result) {
		t.Helper()
		for _, typ := range []string{"net", "ipc", "uts", "cgroup", "pid_for_children"} {
			host := hostNSInode(t, strings.TrimSuffix(typ, "_for_children"))
			assert.NotEqual(t, host, res["ns after setns "+typ], "ESCAPE: joined the host's %s namespace", typ)
			assert.NotContains(t, res["setns "+host], "ok", "ESCAPE: setns into the host's %s namespace", typ)
		}
	}
	spec := withCgroupMount(attackSpec(t, rootfs, "nsinodes", "setns"))
	check(t, mustAttack(t, spec, Options{}))

	t.Run("pod sharing pid", func(t *testing.T) {
		pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{
			CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: filepath.Join(t.TempDir(), "ns"),
			Share: []namespaces.Type{namespaces.Network, namespaces.IPC, namespaces.UTS, namespaces.PID},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = pod.Destroy() })
		spec := withCgroupMount(attackSpec(t, rootfs, "nsinodes", "setns"))
		spec.Hostname = ""
		check(t, mustAttack(t, spec, Options{pod: pod}))
	})
}
