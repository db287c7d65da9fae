package libjail

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/testutil"
)

// TestEscapeFakeProc (the CVE-2019-16884 / CVE-2025-52881 class): the rootfs or the spec puts a
// fake procfs where libjail expects the real one, so that what libjail writes or masks there lands
// on the fake (leaving the real files open) or on the host. The container has every capability,
// and the spec masks /proc/kcore and /proc/keys and makes /proc/sys read-only. Refusing the spec is
// a defence; a container that starts must find the real procfs with the masks on it.
//
// Not covered because libjail does not do it yet: sysctls (no linux.sysctl writes), LSM labels
// (no /proc/self/attr writes); hooks run with the state on stdin and need no /proc.
func TestEscapeFakeProc(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := escapeRootfs(t)
	hostTarget := hostDirEmpty(t, "proc-target")
	ops := []string{"read", "/proc/kcore", "read", "/proc/keys", "write", "/proc/sys/kernel/domainname", "x",
		"read", "/proc/self/mountinfo"}
	masks := func(spec *specs.Spec) *specs.Spec {
		spec.Linux.MaskedPaths = []string{"/proc/kcore", "/proc/keys"}
		spec.Linux.ReadonlyPaths = []string{"/proc/sys"}
		return spec
	}
	// checkReal: the container, if it started, sees the real procfs with the masks on it.
	checkReal := func(t *testing.T, res map[string]string, err error) {
		t.Helper()
		if err != nil {
			t.Logf("refused: %v", err)
			return
		}
		assert.Equal(t, "content:", res["read /proc/keys"], "ESCAPE: /proc/keys is not masked")
		assert.NotContains(t, res["read /proc/kcore"], "content:E", "ESCAPE: /proc/kcore is not masked")
		assert.Equal(t, "open EROFS", res["write /proc/sys/kernel/domainname"], "ESCAPE: /proc/sys is not read-only")
	}

	cases := map[string]struct {
		plant func(t *testing.T, root string) // changes to a private copy of the rootfs
		edit  func(spec *specs.Spec)
	}{
		// Nothing planted: the masks are where they belong (checks the checks).
		"control": {},
		// /proc a link to a directory of the rootfs holding fake kcore, keys and sys.
		"proc links into the rootfs": {plant: func(t *testing.T, root string) {
			fake := filepath.Join(root, "fakeproc")
			require.NoError(t, os.MkdirAll(filepath.Join(fake, "sys/kernel"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(fake, "keys"), []byte("fake"), 0o644))
			require.NoError(t, os.Remove(filepath.Join(root, "proc")))
			require.NoError(t, os.Symlink("/fakeproc", filepath.Join(root, "proc")))
		}},
		// /proc a link to a host directory.
		"proc links to the host": {plant: func(t *testing.T, root string) {
			require.NoError(t, os.Remove(filepath.Join(root, "proc")))
			require.NoError(t, os.Symlink(hostTarget, filepath.Join(root, "proc")))
		}},
		// /proc/sys replaced by a directory the container owns (a bind from the rootfs).
		"bind over /proc/sys": {edit: func(spec *specs.Spec) {
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/proc/sys", Type: "bind", Source: filepath.Join(rootfs, "etc"), Options: []string{"rbind"}})
		}},
		// A tmpfs planted over the real procfs after it is mounted, and over /proc/self/attr.
		"tmpfs over /proc": {edit: func(spec *specs.Spec) {
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"})
		}},
		"tmpfs over /proc/self/attr": {edit: func(spec *specs.Spec) {
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/proc/self/attr", Type: "tmpfs", Source: "tmpfs"})
		}},
		// proc mounted somewhere else and a tmpfs at /proc: libjail's masks must not go to the fake.
		"proc elsewhere, tmpfs at /proc": {edit: func(spec *specs.Spec) {
			for i := range spec.Mounts {
				if spec.Mounts[i].Destination == "/proc" {
					spec.Mounts[i].Destination = "/mnt/realproc"
				}
			}
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"})
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := rootfs
			if tc.plant != nil {
				root = escapeRootfs(t)
				tc.plant(t, root)
			}
			spec := masks(attackSpec(t, root, ops...))
			if tc.edit != nil {
				tc.edit(spec)
			}
			before := hostMounts(t)
			res, err := attack(t, spec, Options{})
			if name == "control" {
				require.NoError(t, err, "the unplanted spec starts")
			}
			checkReal(t, res, err)
			noMountUnder(t, before, hostTarget, filepath.Dir(filepath.Dir(root)))
			assertEmptyDir(t, hostTarget)
		})
	}
}
