package mounts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestIDMapped: files owned by host uid/gid 0 seen through an idmapped bind with the mapping
// 0→100000 show as 100000; the same files through a plain bind stay 0. The idmapped mount is made
// by the parent (this process) and attached by the child, as the root package does.
func TestIDMapped(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireKernel(t, 5, 12)
	root := makeRootfs(t)
	src := hostDir(t, "idmap-src")
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mapping := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	spec := &specs.Spec{
		Root: &specs.Root{Path: root},
		Mounts: []specs.Mount{
			{Destination: "/plain", Source: src, Options: []string{"bind"}},
			{Destination: "/mapped", Source: src, Options: []string{"bind", "idmap", "ro"}, UIDMappings: mapping, GIDMappings: mapping},
		},
	}
	plan := mustPlan(t, spec, Options{})
	if got := plan.IDMapped(); len(got) != 1 || got[0] != "mounts[1]" {
		t.Fatalf("IDMapped() = %q", got)
	}
	files, err := plan.OpenIDMapped(func(m *IDMap) (*os.File, error) {
		return userns(t, m.UIDMappings, m.GIDMappings), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	rep := runChildFiles(t, plan, probe{Stat: []string{"/plain/f", "/mapped/f"}, Write: []string{"/mapped/g"}}, 0, files)
	if rep.Err != "" {
		t.Fatalf("%s: %s", rep.Step, rep.Err)
	}
	if st := rep.Stat["/plain/f"]; st.Err != "" || st.UID != 0 || st.GID != 0 {
		t.Errorf("plain bind: %+v", st)
	}
	if st := rep.Stat["/mapped/f"]; st.Err != "" || st.UID != 100000 || st.GID != 100000 {
		t.Errorf("idmapped bind: %+v, want uid/gid 100000", st)
	}
	if !isErr(rep.Write["/mapped/g"], unix.EROFS) { // the parent applied "ro" too
		t.Errorf("write to the read-only idmapped mount: %q", rep.Write["/mapped/g"])
	}

	// Without the parent's part, the child refuses rather than mounting unmapped.
	rep = runChild(t, plan, probe{})
	if rep.Step != "MountAll" || rep.Err == "" {
		t.Errorf("idmapped mount without OpenIDMapped: step %q err %q", rep.Step, rep.Err)
	}
}
