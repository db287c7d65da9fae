package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCreatePlaceDestroy(t *testing.T) {
	plan, m := newManager(t, nil, nil)
	for k, d := range plan.Dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	c := startChild(t, shell("sleep 100"))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(cg)), "\n")
	if len(lines) != len(plan.Hierarchies) {
		t.Fatalf("child is in %d hierarchies, plan has %d", len(lines), len(plan.Hierarchies))
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, ":"+plan.Path) {
			t.Errorf("child not placed: %s", l)
		}
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, plan)
}

func TestDestroyRetriesWhileProcessesDie(t *testing.T) {
	plan, m := newManager(t, nil, nil)
	for i := 0; i < 3; i++ {
		c := startChild(t, shell("while :; do :; done"))
		if err := m.Place(c.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	// No wait: the processes may still be exiting, which rmdir reports as EBUSY.
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, plan)
}

func TestDestroyBusyFailsWithErrno(t *testing.T) {
	old := destroyTimeout
	destroyTimeout = 50 * time.Millisecond
	defer func() { destroyTimeout = old }()
	_, m := newManager(t, nil, nil)
	c := startChild(t, shell("sleep 100"))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	err := m.Destroy()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "destroy" || !errors.Is(err, unix.EBUSY) {
		t.Fatalf("got %v, want EBUSY from destroy", err)
	}
	// The cleanup kills and destroys for real, and checks nothing is left.
}
