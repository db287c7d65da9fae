package libjail

// The escape battery: one test per attack class, each run against the most dangerous spec the
// class allows, performed from inside a container by the static attacker (internal/escape), and
// judged on the host. SECURITY.md maps each class to its test.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/escape"
	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

// allCaps is every capability this kernel knows (cap_last_cap) that the agent holds: the most a
// spec can grant.
func allCaps(t *testing.T) []string {
	names := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
		"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
		"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
		"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
		"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
		"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
		"CAP_CHECKPOINT_RESTORE",
	}
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	require.NoError(t, err)
	last := 0
	_, _ = fmt.Sscan(strings.TrimSpace(string(b)), &last)
	var held []string
	for i, n := range names {
		// The agent can only pass on what it holds (here, e.g., no CAP_SYS_RESOURCE).
		if i <= last && haveCap(capability.Cap(i)) {
			held = append(held, n)
		}
	}
	return held
}

// privileged gives spec every capability in every set and no seccomp filter: the most a spec can
// grant a root process without sharing host namespaces.
func privileged(t *testing.T, spec *specs.Spec) *specs.Spec {
	caps := allCaps(t)
	spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps,
	}
	spec.Linux.Seccomp = nil
	spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
	return spec
}

// escapeRootfs is a busybox rootfs with the probe and the attacker.
func escapeRootfs(t *testing.T) string {
	t.Helper()
	rootfs := fixtures.Rootfs(t)
	if err := fixtures.AddEscape(rootfs); err != nil {
		if os.Getenv("LIBJAIL_PROBE") != "" {
			// A lane without a Go toolchain ships the probe but not (yet) the attacker.
			t.Skipf("skipped: no attacker binary (set LIBJAIL_ESCAPE): %v", err)
		}
		t.Fatal(err)
	}
	return rootfs
}

// attackSpec runs the attacker with ops in rootfs, with every capability and no seccomp.
func attackSpec(t *testing.T, rootfs string, ops ...string) *specs.Spec {
	spec := fixtures.Spec(rootfs, append([]string{fixtures.EscapePath}, ops...)...)
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	return privileged(t, spec)
}

// attack runs the container to completion and returns what the attacker saw. A container that
// fails to be created or started returns the error (for classes where refusing is a defence).
func attack(t *testing.T, spec *specs.Spec, opts Options) (escape.Result, error) {
	t.Helper()
	var out, errb bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &errb
	var c *Container
	var err error
	if opts.pod != nil {
		c, err = opts.pod.NewContainer(testutil.Name(t, "c"), spec, opts)
	} else {
		c, err = New(testutil.Name(t, "c"), spec, opts)
	}
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Destroy(true) })
	if err := c.Start(t.Context()); err != nil {
		return nil, err
	}
	st, err := c.Wait()
	require.NoError(t, err)
	require.True(t, st.Success(), "attacker exited %v; stderr: %s", st, errb.String())
	require.NoError(t, c.Destroy(false))
	var res escape.Result
	require.NoError(t, json.Unmarshal(out.Bytes(), &res), "attacker output %q, stderr %q", out.String(), errb.String())
	t.Logf("attacker saw: %v", res)
	return res, nil
}

func mustAttack(t *testing.T, spec *specs.Spec, opts Options) escape.Result {
	t.Helper()
	res, err := attack(t, spec, opts)
	require.NoError(t, err)
	return res
}

func fileHash(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// hostFile writes a marker file outside every rootfs and returns its path and content.
func hostFile(t *testing.T, what string) (string, string) {
	dir := filepath.Join(t.TempDir(), testutil.Name(t, what))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, "marker")
	content := "host-secret-" + testutil.Name(t, what)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p, content
}

// noMountUnder fails when the host mount table gained a mount at or under one of dirs.
func noMountUnder(t *testing.T, before []string, dirs ...string) {
	t.Helper()
	after := hostMounts(t)
	old := map[string]bool{}
	for _, m := range before {
		old[m] = true
	}
	for _, m := range after {
		if old[m] {
			continue
		}
		mp := strings.Fields(m)[1]
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				t.Errorf("ESCAPE: host got a mount at %s: %s", mp, m)
			}
		}
	}
}

func hostNSInode(t *testing.T, typ string) string {
	var st unix.Stat_t
	require.NoError(t, unix.Stat("/proc/self/ns/"+typ, &st))
	return strconv.FormatUint(st.Ino, 10)
}

// knownEscape marks an attack that succeeds today: the test stays as it is, but is skipped unless
// LIBJAIL_TEST_KNOWN_ESCAPES=1, so make test stays green while SECURITY.md lists the escape. Run
// with the variable set to check a fix; then remove the call.
func knownEscape(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("LIBJAIL_TEST_KNOWN_ESCAPES") == "" {
		t.Skipf("KNOWN ESCAPE (SECURITY.md): %s; run with LIBJAIL_TEST_KNOWN_ESCAPES=1", what)
	}
}
