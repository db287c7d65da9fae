package capabilities

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/internal/testutil"
)

// childEnv carries a childConfig to the re-executed test binary.
const childEnv = "LIBJAIL_CAPABILITIES_TEST_CHILD"

type childConfig struct {
	Set  Set  `json:"set"`
	UID  int  `json:"uid"` // 0: stay root
	Keep bool `json:"keep"`
}

// childReport is what the child prints on its first line, before it execs cat.
type childReport struct {
	Applied masks  `json:"applied"` // the thread's sets right after Apply
	Error   string `json:"error,omitempty"`
}

type masks struct{ Inh, Prm, Eff, Bnd, Amb uint64 }

func (m masks) String() string {
	return fmt.Sprintf("CapInh=%016x CapPrm=%016x CapEff=%016x CapBnd=%016x CapAmb=%016x", m.Inh, m.Prm, m.Eff, m.Bnd, m.Amb)
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	// Open the netpoller's fds before the leak check lists fds (see syncpipe's TestMain).
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	os.Exit(testutil.CheckFDLeaks(m))
}

// runChild does what a container's init does with a Set, in the documented order, on one locked
// thread; it reports the thread's sets, then execs cat to show what a program gets.
func runChild(cfgJSON string) int {
	runtime.LockOSThread() // never unlocked: this thread execs
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	report := func(err error) int {
		r := childReport{Error: err.Error()}
		json.NewEncoder(os.Stdout).Encode(r)
		return 1
	}
	if err := cfg.Set.DropBounding(); err != nil {
		return report(err)
	}
	if cfg.UID != 0 {
		if cfg.Keep {
			if err := KeepAcrossUserSwitch(); err != nil {
				return report(err)
			}
		}
		if err := syscall.Setgroups(nil); err != nil {
			return report(err)
		}
		if err := syscall.Setresgid(cfg.UID, cfg.UID, cfg.UID); err != nil {
			return report(err)
		}
		if err := syscall.Setresuid(cfg.UID, cfg.UID, cfg.UID); err != nil {
			return report(err)
		}
	}
	if err := cfg.Set.Apply(); err != nil {
		return report(err)
	}
	applied, err := readStatus("/proc/thread-self/status")
	if err != nil {
		return report(err)
	}
	json.NewEncoder(os.Stdout).Encode(childReport{Applied: applied})
	err = syscall.Exec("/bin/cat", []string{"cat", "/proc/self/status"}, []string{})
	return report(err)
}

func readStatus(path string) (masks, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return masks{}, err
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (masks, error) {
	var m masks
	fields := map[string]*uint64{"CapInh:": &m.Inh, "CapPrm:": &m.Prm, "CapEff:": &m.Eff, "CapBnd:": &m.Bnd, "CapAmb:": &m.Amb}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && fields[f[0]] != nil {
			v, err := strconv.ParseUint(f[1], 16, 64)
			if err != nil {
				return m, fmt.Errorf("%s: %w", f[0], err)
			}
			*fields[f[0]] = v
			found++
		}
	}
	if found != len(fields) {
		return m, fmt.Errorf("found %d of the 5 Cap lines", found)
	}
	return m, nil
}

// runInChild applies cfg in a re-executed child and returns the thread's masks after Apply and
// the masks cat saw after execve.
func runInChild(t *testing.T, cfg childConfig) (applied, execed masks, childErr string) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	first, rest, _ := bytes.Cut(out, []byte("\n"))
	var r childReport
	if jerr := json.Unmarshal(first, &r); jerr != nil {
		t.Fatalf("child output %q: %v (exit: %v)", out, jerr, err)
	}
	if r.Error != "" {
		return masks{}, masks{}, r.Error
	}
	if err != nil {
		t.Fatalf("child: %v, output %q", err, out)
	}
	execed, err = parseStatus(rest)
	if err != nil {
		t.Fatalf("cat /proc/self/status: %v in %q", err, rest)
	}
	return r.Applied, execed, ""
}

func mustPlan(t *testing.T, spec *specs.LinuxCapabilities) Set {
	t.Helper()
	s, err := Plan(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestApply(t *testing.T) {
	testutil.RequireRoot(t)
	const user = 1000
	bit := func(cs ...capability.Cap) uint64 { return mask(cs) }
	dflt := bit(capability.CAP_CHOWN, capability.CAP_DAC_OVERRIDE, capability.CAP_FSETID, capability.CAP_FOWNER,
		capability.CAP_MKNOD, capability.CAP_NET_RAW, capability.CAP_SETGID, capability.CAP_SETUID,
		capability.CAP_SETFCAP, capability.CAP_SETPCAP, capability.CAP_NET_BIND_SERVICE, capability.CAP_SYS_CHROOT,
		capability.CAP_KILL, capability.CAP_AUDIT_WRITE)
	bind, raw, kill, chown := bit(capability.CAP_NET_BIND_SERVICE), bit(capability.CAP_NET_RAW),
		bit(capability.CAP_KILL), bit(capability.CAP_CHOWN)

	for _, tc := range []struct {
		name    string
		spec    *specs.LinuxCapabilities
		uid     int
		keep    bool
		applied masks // the thread after Apply
		execed  masks // a program after execve, computed by the kernel
	}{
		{
			name:    "no section, root",
			spec:    nil,
			applied: masks{},
			execed:  masks{},
		},
		{
			name:    "default set, root",
			spec:    &specs.LinuxCapabilities{Bounding: dockerDefault, Effective: dockerDefault, Permitted: dockerDefault},
			applied: masks{Prm: dflt, Eff: dflt, Bnd: dflt},
			// uid 0 execs with permitted = effective = inheritable | bounding | ambient.
			execed: masks{Prm: dflt, Eff: dflt, Bnd: dflt},
		},
		{
			name:    "default set, root, effective smaller than permitted",
			spec:    &specs.LinuxCapabilities{Bounding: dockerDefault, Effective: []string{"CAP_KILL"}, Permitted: dockerDefault},
			applied: masks{Prm: dflt, Eff: kill, Bnd: dflt},
			execed:  masks{Prm: dflt, Eff: dflt, Bnd: dflt},
		},
		{
			name:    "default set, user",
			spec:    &specs.LinuxCapabilities{Bounding: dockerDefault, Effective: dockerDefault, Permitted: dockerDefault},
			uid:     user,
			keep:    true,
			applied: masks{Prm: dflt, Eff: dflt, Bnd: dflt},
			// A non-root program without file capabilities gets its ambient set only.
			execed: masks{Bnd: dflt},
		},
		{
			name: "ambient, user",
			spec: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL"},
				Effective:   []string{"CAP_NET_BIND_SERVICE"},
				Permitted:   []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL"},
				Inheritable: []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"},
				Ambient:     []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"},
			},
			uid:     user,
			keep:    true,
			applied: masks{Inh: bind | raw, Prm: bind | raw | kill, Eff: bind, Bnd: bind | raw | kill, Amb: bind | raw},
			execed:  masks{Inh: bind | raw, Prm: bind | raw, Eff: bind | raw, Bnd: bind | raw | kill, Amb: bind | raw},
		},
		{
			name: "ambient, root",
			spec: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
				Permitted:   []string{"CAP_NET_BIND_SERVICE"},
				Inheritable: []string{"CAP_NET_BIND_SERVICE"},
				Ambient:     []string{"CAP_NET_BIND_SERVICE"},
			},
			applied: masks{Inh: bind, Prm: bind, Bnd: bind | kill, Amb: bind},
			execed:  masks{Inh: bind, Prm: bind | kill, Eff: bind | kill, Bnd: bind | kill, Amb: bind},
		},
		{
			// Needs CAP_SETPCAP raised during Apply: inheritable reaches beyond permitted.
			name: "inheritable beyond permitted, user",
			spec: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_CHOWN", "CAP_KILL"},
				Permitted:   []string{"CAP_CHOWN"},
				Inheritable: []string{"CAP_CHOWN", "CAP_KILL"},
			},
			uid:     user,
			keep:    true,
			applied: masks{Inh: chown | kill, Prm: chown, Bnd: chown | kill},
			execed:  masks{Inh: chown | kill, Bnd: chown | kill},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustPlan(t, tc.spec)
			applied, execed, childErr := runInChild(t, childConfig{Set: s, UID: tc.uid, Keep: tc.keep})
			if childErr != "" {
				t.Fatalf("child: %s", childErr)
			}
			if applied != tc.applied {
				t.Errorf("after Apply:\n got %s\nwant %s", applied, tc.applied)
			}
			if execed != tc.execed {
				t.Errorf("after execve:\n got %s\nwant %s", execed, tc.execed)
			}
		})
	}
}

func TestApplyFailsClosed(t *testing.T) {
	testutil.RequireRoot(t)
	s := mustPlan(t, &specs.LinuxCapabilities{Bounding: dockerDefault, Effective: dockerDefault, Permitted: dockerDefault})
	// Without PR_SET_KEEPCAPS the switch to a user empties permitted: Apply must refuse, not
	// carry on with fewer capabilities than planned.
	_, _, childErr := runInChild(t, childConfig{Set: s, UID: 1000})
	if !strings.Contains(childErr, "not held by the calling thread") || !strings.Contains(childErr, "operation not permitted") {
		t.Fatalf("child error %q, want a refusal naming the missing capabilities", childErr)
	}
}

func TestCurrent(t *testing.T) {
	// Reading needs no privilege; this process's thread must match /proc/thread-self/status.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	want, err := readStatus("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	var got masks
	got.Inh, got.Prm, got.Eff, got.Bnd, got.Amb = s.Masks()
	if got != want {
		t.Fatalf("Current() %s, /proc says %s", got, want)
	}
}
