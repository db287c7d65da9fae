package namespaces

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
)

// TestPinnedPIDHolderJailed: the init of a pinned pid namespace, which every container of the pod
// sees as pid 1, holds nothing of the host: its root is an empty tmpfs in a mount namespace of its
// own, its cgroup namespace is its own, and it has no capabilities and is not dumpable.
func TestPinnedPIDHolderJailed(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		types []Type
		opts  PinOptions
	}{
		{"pid", []Type{PID, Network}, PinOptions{}},
		{"user+pid", []Type{User, PID, Network}, PinOptions{UIDMappings: hostRange, GIDMappings: hostRange}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := pin(t, tc.types, tc.opts)
			init := pod.InitPID
			if init == 0 {
				t.Fatal("no holder")
			}
			ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/root", init))
			if err != nil {
				t.Fatalf("read the holder's root: %v", err)
			}
			if len(ents) != 0 {
				t.Errorf("the holder's root is not empty: %d entries", len(ents))
			}
			for _, ns := range []string{"mnt", "cgroup"} {
				if inode(t, fmt.Sprintf("/proc/%d/ns/%s", init, ns)) == inode(t, "/proc/self/ns/"+ns) {
					t.Errorf("the holder shares the host's %s namespace", ns)
				}
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", init))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1"} {
				if !strings.Contains(string(b), want) {
					t.Errorf("holder status lacks %q", want)
				}
			}
			// Undumpable: its /proc files belong to root of the host, not to the pod's user.
			var st os.FileInfo
			if st, err = os.Stat(fmt.Sprintf("/proc/%d/environ", init)); err == nil && st.Mode().Perm()&0o044 != 0 {
				t.Errorf("holder environ readable by others: %v", st.Mode())
			}
		})
	}
}
