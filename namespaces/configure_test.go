package namespaces

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/nsenter"
)

// TestConfigure checks what Configure hands the child, without starting it (no root needed to open
// one's own namespace files).
func TestConfigure(t *testing.T) {
	plan := mustPlan(t, &specs.Spec{Hostname: "h", Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: "user", Path: "/proc/self/ns/user"}, {Type: "mount", Path: "/proc/self/ns/mnt"},
		{Type: "network", Path: "/proc/self/ns/net"}, {Type: "uts"}, {Type: "pid"}, {Type: "time"},
	}}})
	keep, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	cmd := exec.Command("/bin/true")
	cmd.ExtraFiles = []*os.File{keep, nil}
	cmd.Env = []string{"A=1", nsenter.EnvName + "=stale"}
	release, err := plan.Configure(cmd)
	if err != nil {
		t.Fatal(err)
	}
	// keep, nil, then the user and mount namespace files and the pipe for the forked init's pid.
	if len(cmd.ExtraFiles) != 5 || cmd.ExtraFiles[0] != keep || cmd.ExtraFiles[1] != nil {
		t.Fatalf("ExtraFiles reordered or wrong: %v", cmd.ExtraFiles)
	}
	want := nsenter.EnvName + "=timens=0:0:0:0,user=5,mnt=6,unshare=0x24000000,forkpid=7"
	if !slices.Equal(cmd.Env, []string{"A=1", want}) {
		t.Errorf("Env = %q, want [A=1 %s]", cmd.Env, want)
	}
	if cmd.SysProcAttr.Cloneflags != 0 {
		t.Errorf("Cloneflags = %#x, want none (uts and pid are unshared after joining the user ns)", cmd.SysProcAttr.Cloneflags)
	}
	for i, typ := range []Type{User, Mount} {
		if got, err := nsTypeOf(cmd.ExtraFiles[2+i]); err != nil || got != typ {
			t.Errorf("ExtraFiles[%d] is %s (%v), want %s", 2+i, got, err, typ)
		}
	}
	release()
	if _, err := unix.FcntlInt(cmd.ExtraFiles[2].Fd(), unix.F_GETFD, 0); err == nil {
		t.Error("release left the namespace fd open")
	}
}

func TestConfigureNewUser(t *testing.T) {
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	plan := mustPlan(t, &specs.Spec{Linux: &specs.Linux{
		Namespaces:  []specs.LinuxNamespace{{Type: "user"}, {Type: "mount"}, {Type: "network", Path: "/proc/self/ns/net"}},
		UIDMappings: maps, GIDMappings: maps,
	}})
	cmd := exec.Command("/bin/true")
	release, err := plan.Configure(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	a := cmd.SysProcAttr
	if a.Cloneflags != unix.CLONE_NEWUSER|unix.CLONE_NEWNS || len(a.UidMappings) != 1 || a.UidMappings[0].HostID != 100000 ||
		!a.GidMappingsEnableSetgroups || a.Credential == nil || a.Credential.Uid != 0 {
		t.Errorf("SysProcAttr = %+v", a)
	}
	if cmd.Env != nil || len(cmd.ExtraFiles) != 0 {
		t.Errorf("nothing for the joiner expected: env %q files %v", cmd.Env, cmd.ExtraFiles)
	}
	if j := plan.parentJoins(); len(j) != 1 || j[0].Type != Network {
		t.Errorf("parent joins %v, want network", j)
	}
	if strings.Contains(plan.String(), "deferred") {
		t.Error(plan.String())
	}
}

// TestConfigureError: a failing Configure leaves cmd as it was and closes what it opened.
func TestConfigureError(t *testing.T) {
	keep, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	for _, plan := range []*NSPlan{
		{Exec: &ExecJoin{PID: 1 << 22, Types: []Type{Network, User}}},
		{Namespaces: []Namespace{{Type: User, Path: "/proc/self/ns/user"}, {Type: Mount, Path: "/nonexistent"}}},
	} {
		cmd := exec.Command("/bin/true")
		cmd.ExtraFiles = []*os.File{keep}
		release, err := plan.Configure(cmd)
		if err == nil {
			release()
			t.Fatalf("Configure(%s) succeeded", plan)
		}
		var se *StartError
		if !errors.As(err, &se) || release != nil {
			t.Errorf("Configure(%s) = %v, want a *StartError and no release", plan, err)
		}
		if len(cmd.ExtraFiles) != 1 || cmd.ExtraFiles[0] != keep || cmd.Env != nil ||
			cmd.SysProcAttr != nil {
			t.Errorf("Configure(%s) changed cmd: files %v env %q", plan, cmd.ExtraFiles, cmd.Env)
		}
	}
}
