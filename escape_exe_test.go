package libjail

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/escape"
	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
	"github.com/libjail/libjail/namespaces"
)

// selfExeEnv makes this test binary, when a container runs it as the interpreter of a
// "#!/proc/self/exe" script, act as the first half of the CVE-2019-5736 exploit.
const selfExeEnv = "LIBJAIL_ESCAPE_SELFEXE"

// pinPIDEnv makes this test binary, started from a copy on disk, pin a pid namespace in the named
// directory, print the pin as JSON and exit: an agent that leaves a persistent pod behind.
const pinPIDEnv = "LIBJAIL_ESCAPE_PINPID"

func init() {
	if dir := os.Getenv(pinPIDEnv); dir != "" {
		p, err := namespaces.Pin(dir, []namespaces.Type{namespaces.PID}, namespaces.PinOptions{})
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		_ = json.NewEncoder(os.Stdout).Encode(p)
		os.Exit(0)
	}
	if os.Getenv(selfExeEnv) != "1" {
		return
	}
	// We are the image the container's child was started from (the kernel resolved the script's
	// interpreter /proc/self/exe in the child). Keep a handle on it, then exec something else so the
	// image is no longer busy, and let the attacker reopen the handle for writing.
	fd, err := unix.Open("/proc/self/exe", unix.O_PATH, 0) // inherited across execve on purpose
	if err != nil {
		os.Stdout.WriteString(`{"selfexe open":"` + err.Error() + `"}` + "\n")
		os.Exit(0)
	}
	env := []string{"LIBJAIL_ESCAPE_EXEFD=" + strconv.Itoa(fd)}
	err = unix.Exec(fixtures.EscapePath, []string{fixtures.EscapePath, "reopen-exe-after-exec", "exes", "0s"}, env)
	os.Stdout.WriteString(`{"selfexe exec":"` + err.Error() + `"}` + "\n")
	os.Exit(0)
}

// exeHashes are the hashes of what a container must never rewrite: the agent's executable on disk
// and the sealed copy containers are started from.
func exeHashes(t *testing.T) map[string]string {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	f, err := sealedExecutable()
	require.NoError(t, err)
	return map[string]string{
		"agent on disk": fileHash(t, self),
		"sealed copy":   fileHash(t, "/proc/self/fd/"+strconv.Itoa(int(f.Fd()))),
	}
}

func assertNoWrite(t *testing.T, res escape.Result) {
	t.Helper()
	for k, v := range res {
		assert.NotEqual(t, "WROTE", v, "ESCAPE: %s was opened and written", k)
	}
}

// copyLibs puts the shared libraries of the binary at exe (and its loader) into rootfs at the
// same paths, so the binary can run inside the container.
func copyLibs(t *testing.T, exe, rootfs string) {
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("skipped: no ldd to find the test binary's libraries")
	}
	out, err := exec.Command("ldd", exe).Output()
	require.NoError(t, err)
	for _, l := range strings.Split(string(out), "\n") {
		var p string
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				p = f
				break
			}
		}
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		dst := filepath.Join(rootfs, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, b, 0o755))
	}
}

// TestEscapeRewriteExe (the CVE-2019-5736 class): containers with every capability try to open
// for writing the executable of every process they can see, to replace the agent's binary.
func TestEscapeRewriteExe(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := escapeRootfs(t)
	before := exeHashes(t)
	t.Cleanup(func() { assert.Equal(t, before, exeHashes(t), "ESCAPE: an executable was rewritten") })

	// The container's entrypoint is a script whose interpreter is /proc/self/exe: the kernel
	// resolves it in the child, which is the agent's image, and runs that image inside the
	// container. It keeps an O_PATH handle to itself, execs the attacker, and the attacker
	// reopens the handle for writing once the image is no longer busy (and writes one byte back).
	t.Run("#!/proc/self/exe", func(t *testing.T) {
		self, err := os.Executable()
		require.NoError(t, err)
		copyLibs(t, self, rootfs)
		require.NoError(t, os.WriteFile(filepath.Join(rootfs, "evil"), []byte("#!/proc/self/exe\n"), 0o755))
		spec := attackSpec(t, rootfs)
		spec.Process.Args = []string{"/evil"}
		spec.Process.Env = append(spec.Process.Env, selfExeEnv+"=1")
		res := mustAttack(t, spec, Options{})
		assert.Contains(t, res["reopen exe target"], "memfd:libjail-init", "the image the container could reach is the sealed copy")
		assert.NotEqual(t, "ok", res["reopen exe truncate"], "ESCAPE: the sealed copy was truncated")
		assertNoWrite(t, res)
	})

	// In a pod sharing its pid namespace, the attacker watches /proc while other containers of
	// the pod are set up (their children are visible before execve: the exec-like window) and
	// tries every executable it sees, including the pod's pid namespace holder.
	t.Run("pod sharing pid", func(t *testing.T) {
		pod, err := NewPod(testutil.Name(t, "pod"), PodOptions{
			CgroupPath: "/" + testutil.Name(t, "pod"), PinDir: filepath.Join(t.TempDir(), "ns"),
			Share: []namespaces.Type{namespaces.Network, namespaces.IPC, namespaces.UTS, namespaces.PID},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = pod.Destroy() })
		spec := attackSpec(t, rootfs, "exes", "3s")
		spec.Hostname = ""
		var out, errb bytes.Buffer
		a, err := pod.NewContainer(testutil.Name(t, "attacker"), spec, Options{Stdout: &out, Stderr: &errb})
		require.NoError(t, err)
		require.NoError(t, a.Start(t.Context()))
		for i := 0; i < 5; i++ {
			victim := fixtures.Spec(rootfs, "/bin/true")
			victim.Hostname = ""
			c, err := pod.NewContainer(testutil.Name(t, "victim"), victim, Options{})
			require.NoError(t, err)
			require.NoError(t, c.Start(t.Context()))
			_, _ = c.Wait()
			require.NoError(t, c.Destroy(true))
		}
		st, err := a.Wait()
		require.NoError(t, err)
		require.True(t, st.Success(), "attacker: %v %s", st, errb.String())
		var res escape.Result
		require.NoError(t, json.Unmarshal(out.Bytes(), &res), "%s", out.String())
		t.Logf("attacker saw: %v", res)
		assertNoWrite(t, res)
	})
}

// TestEscapeExecWindow: while the test execs into a running container, the container's init (no
// seccomp) watches for the exec's libjail child, which is visible in the container's pid namespace
// before it execs: it tries to rewrite its executable, open its fds (its socket to the agent among
// them) and trace it. The executables must stay unchanged. With the default capabilities the
// child must also be out of reach; with every capability (CAP_SYS_PTRACE) the container may trace
// a process of its own namespaces, which is logged, not asserted.
func TestEscapeExecWindow(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := escapeRootfs(t)
	before := exeHashes(t)
	for _, all := range []bool{false, true} {
		t.Run(map[bool]string{false: "default capabilities", true: "every capability"}[all], func(t *testing.T) {
			spec := attackSpec(t, rootfs, "peek", "5s", "exes", "0s")
			if !all {
				spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: defaultCaps, Effective: defaultCaps, Permitted: defaultCaps}
			}
			var out, errb bytes.Buffer
			c, err := New(testutil.Name(t, "c"), spec, Options{Stdout: &out, Stderr: &errb})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Destroy(true) })
			require.NoError(t, c.Start(t.Context()))
			for i := 0; i < 20; i++ {
				p, err := c.Exec(t.Context(), &specs.Process{Args: []string{"/bin/true"}, Cwd: "/"}, ExecOptions{})
				if err != nil {
					break // the attacker is done: the container stopped
				}
				_, _ = p.Wait()
			}
			st, err := c.Wait()
			require.NoError(t, err)
			require.True(t, st.Success(), "attacker: %v %s", st, errb.String())
			var res escape.Result
			require.NoError(t, json.Unmarshal(out.Bytes(), &res), "%s", out.String())
			t.Logf("attacker saw: %v", res)
			assertNoWrite(t, res)
			// Only what still hit libjail's child counts: the program it exec'd is the container's.
			if !all && strings.Contains(res["peek exe after"], "libjail-init") {
				assert.NotEqual(t, "ok", res["peek ptrace"], "ESCAPE: traced the exec's libjail child")
				for k, v := range res {
					if strings.HasPrefix(k, "peek fd ") {
						assert.NotContains(t, v, "open ok", "ESCAPE: opened the exec child's %s", k)
					}
				}
			}
		})
	}
	assert.Equal(t, before, exeHashes(t), "ESCAPE: an executable was rewritten")
}

// TestEscapeRewriteExePersistentPod (CVE-2019-5736 class, for pods that outlive their creator): an
// agent binary on disk pins a pod's pid namespace and exits, as a runtime command line does. A
// container with every capability joins that pid namespace, where the holder is pid 1, and opens
// /proc/1/exe for writing: nothing executes the binary any more, so ETXTBSY no longer guards it.
func TestEscapeRewriteExePersistentPod(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := escapeRootfs(t)
	self, err := os.Executable()
	require.NoError(t, err)
	agent := filepath.Join(t.TempDir(), "agent")
	b, err := os.ReadFile(self)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(agent, b, 0o755))
	hashBefore := fileHash(t, agent)

	cmd := exec.Command(agent, "-test.run=^$")
	cmd.Env = append(os.Environ(), pinPIDEnv+"="+filepath.Join(t.TempDir(), "pins"))
	out, err := cmd.Output()
	require.NoError(t, err, "pinning agent: %s", out)
	var pinned namespaces.Pinned
	require.NoError(t, json.Unmarshal(out, &pinned), "%s", out)
	t.Cleanup(func() { _ = pinned.Release() })
	require.NotZero(t, pinned.InitPID)

	spec := attackSpec(t, rootfs, "exes", "0s")
	for i, n := range spec.Linux.Namespaces {
		if n.Type == "pid" {
			spec.Linux.Namespaces[i].Path = pinned.Path(namespaces.PID)
		}
	}
	// The holder may end with its creator (its stdin closes): wait a moment to know.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pinned.InitPID) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") || strings.Contains(string(b), ") X ") {
			t.Skip("skipped: the pid-namespace holder does not outlive its creator: nothing to attack")
		}
	}
	res, err := attack(t, spec, Options{})
	require.NoError(t, err)
	assertNoWrite(t, res)
	assert.Equal(t, hashBefore, fileHash(t, agent), "ESCAPE: the agent binary on disk was rewritten")
}
