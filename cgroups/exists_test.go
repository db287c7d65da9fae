package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
)

// TestCreateRefusesExisting: Create makes a new cgroup or nothing; an existing one is neither
// joined nor, when refused, removed.
func TestCreateRefusesExisting(t *testing.T) {
	testutil.RequireRoot(t)
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	name := "/" + testutil.Name(t, "exists")
	plan, err := Plan(name, nil, LayoutOf(hs), Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	first, err := New(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Destroy() })
	second, _ := New(plan)
	if err := second.Create(); !errors.Is(err, ErrExists) {
		t.Fatalf("Create of an existing cgroup: %v, want ErrExists", err)
	}
	for _, dir := range first.Paths() {
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
			t.Errorf("the existing cgroup %s was touched: %v", dir, err)
		}
	}
}
