package mounts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A "host" with shared mounts (as systemd makes them) is simulated by a first child in its own
// mount namespace: it mounts a shared tmpfs at base, builds the root and a volume in it, runs the
// container as a grandchild, and reports its own mount table before, after, and after Cleanup.
const envHost = "LIBJAIL_MOUNTS_TEST_HOST"

type hostReport struct {
	Err          string   `json:"err,omitempty"`
	Container    string   `json:"container,omitempty"` // the grandchild's step error
	Before       []string `json:"before"`
	After        []string `json:"after"`
	AfterCleanup []string `json:"afterCleanup"`
}

func init() {
	if base := os.Getenv(envHost); base != "" {
		out := hostMain(base)
		_ = json.NewEncoder(os.Stdout).Encode(out)
		os.Exit(0)
	}
}

func mountsUnder(base string) []string {
	all, _ := readMountinfo("/proc/self/mountinfo")
	var out []string
	for _, m := range all {
		if m.Mountpoint == base || strings.HasPrefix(m.Mountpoint, base+"/") {
			out = append(out, m.Mountpoint+" "+m.FSType)
		}
	}
	return out
}

func hostMain(base string) (rep hostReport) {
	fail := func(err error) hostReport { rep.Err = err.Error(); return rep }
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fail(err)
	}
	if err := unix.Mount("tmpfs", base, "tmpfs", 0, "size=4m"); err != nil {
		return fail(err)
	}
	if err := unix.Mount("", base, "", unix.MS_SHARED, ""); err != nil {
		return fail(err)
	}
	for _, d := range []string{"rootfs/proc", "rootfs/dev", "rootfs/vol", "vol"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			return fail(err)
		}
	}
	// The volume is a shared mount of its own, as volumes usually are (the root's parent mount is
	// made private, so a volume on that same mount could never propagate).
	vol := filepath.Join(base, "vol")
	if err := unix.Mount("tmpfs", vol, "tmpfs", 0, "size=1m"); err != nil {
		return fail(err)
	}
	if err := unix.Mount("", vol, "", unix.MS_SHARED, ""); err != nil {
		return fail(err)
	}
	rep.Before = mountsUnder(base)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHost+"=", envChild+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fail(fmt.Errorf("container: %w", err))
	}
	var c report
	if err := json.Unmarshal(stdout.Bytes(), &c); err != nil {
		return fail(err)
	}
	rep.Container = c.Err
	rep.After = mountsUnder(base)
	var plan RootfsPlan
	if err := json.Unmarshal([]byte(os.Getenv(envPlan)), &plan); err != nil {
		return fail(err)
	}
	if err := plan.Cleanup(); err != nil {
		return fail(err)
	}
	rep.AfterCleanup = mountsUnder(base)
	return rep
}

// TestPropagationToHost: with the default propagation nothing the container mounts reaches a host
// whose mounts are shared; with rootfsPropagation=rshared, a mount inside a shared volume does
// (that is what it asks for) and Cleanup removes it; the root's own mounts never leak.
func TestPropagationToHost(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tt := range []struct {
		propagation string
		leak        bool
	}{
		{"", false}, {"rslave", false}, {"slave", false}, {"private", false}, {"rprivate", false},
		{"unbindable", false}, {"runbindable", false}, {"shared", true}, {"rshared", true},
	} {
		t.Run("propagation="+tt.propagation, func(t *testing.T) {
			base := hostDir(t, "shared-host")
			spec := &specs.Spec{
				Root: &specs.Root{Path: filepath.Join(base, "rootfs"), Readonly: true},
				Mounts: []specs.Mount{
					{Destination: "/proc", Type: "proc"},
					{Destination: "/tmp", Type: "tmpfs"},
					{Destination: "/vol", Source: filepath.Join(base, "vol"), Options: []string{"rbind", "rshared"}},
					{Destination: "/vol/sub", Type: "tmpfs"},
				},
				Linux: &specs.Linux{RootfsPropagation: tt.propagation, MaskedPaths: []string{"/proc/timer_list"}},
			}
			plan := mustPlan(t, spec, Options{})
			pj, _ := json.Marshal(plan)
			prj, _ := json.Marshal(probe{})
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envHost+"="+base, envPlan+"="+string(pj), envProbe+"="+string(prj))
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("host child: %v: %s", err, stderr.String())
			}
			var rep hostReport
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("%v: %s %s", err, stdout.String(), stderr.String())
			}
			if rep.Err != "" || rep.Container != "" {
				t.Fatalf("host: %s; container: %s; stderr %s", rep.Err, rep.Container, stderr.String())
			}
			leaked := strings.Join(rep.After, "\n") != strings.Join(rep.Before, "\n")
			if leaked != tt.leak {
				t.Errorf("leak %v, want %v:\nbefore %q\nafter  %q", leaked, tt.leak, rep.Before, rep.After)
			}
			if tt.leak {
				want := filepath.Join(base, "vol", "sub") + " tmpfs"
				if !strings.Contains(strings.Join(rep.After, "\n"), want) {
					t.Errorf("expected %q among %q", want, rep.After)
				}
			}
			if strings.Join(rep.AfterCleanup, "\n") != strings.Join(rep.Before, "\n") {
				t.Errorf("after Cleanup:\nbefore %q\nafter  %q", rep.Before, rep.AfterCleanup)
			}
		})
	}
}

func TestHostLeaks(t *testing.T) {
	spec := &specs.Spec{
		Root: &specs.Root{Path: "/r"},
		Mounts: []specs.Mount{
			{Destination: "/vol", Source: "/srv/vol", Options: []string{"rbind"}},
			{Destination: "/vol/a", Type: "tmpfs"},
			{Destination: "/vol/a/b", Type: "tmpfs"},
			{Destination: "/volume", Type: "tmpfs"},
			{Destination: "/tmp", Type: "tmpfs"},
		},
		Linux: &specs.Linux{RootfsPropagation: "shared"},
	}
	p := mustPlan(t, spec, Options{})
	if got, want := strings.Join(p.HostLeaks(), " "), "/srv/vol/a/b /srv/vol/a"; got != want {
		t.Errorf("HostLeaks() = %q, want %q", got, want)
	}
	spec.Linux.RootfsPropagation = "rslave"
	if got := mustPlan(t, spec, Options{}).HostLeaks(); got != nil {
		t.Errorf("HostLeaks() with rslave = %q", got)
	}
}
