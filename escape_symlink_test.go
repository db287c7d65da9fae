package libjail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/testutil"
)

// hostDirEmpty makes an empty host directory an attack aims at.
func hostDirEmpty(t *testing.T, what string) string {
	d := filepath.Join(t.TempDir(), testutil.Name(t, what))
	require.NoError(t, os.MkdirAll(d, 0o755))
	return d
}

func assertEmptyDir(t *testing.T, d string) {
	t.Helper()
	ents, err := os.ReadDir(d)
	require.NoError(t, err)
	assert.Empty(t, ents, "ESCAPE: host directory %s got entries", d)
}

func assertFileIs(t *testing.T, p, content string) {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, content, string(b), "ESCAPE: host file %s changed", p)
	var st, dn os.FileInfo
	st, err = os.Lstat(p)
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular(), "host file %s is no longer a regular file: %v", p, st.Mode())
	_ = dn
}

// TestEscapeSymlinks: a hostile rootfs plants symlinks to host paths (absolute, and relative with
// enough ".." to climb out) where the spec mounts something, masks a path, makes it read-only,
// creates a device node, and sets the working directory. The container has every capability. On
// the host, the target directories must stay empty, the target files unchanged, the host mount
// table unchanged, and the container must not read the host's files through the links.
func TestEscapeSymlinks(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := escapeRootfs(t)
	mntAbs, mntRel, mntParent := hostDirEmpty(t, "mnt-abs"), hostDirEmpty(t, "mnt-rel"), hostDirEmpty(t, "mnt-parent")
	roDir, devDir, cwdDir := hostDirEmpty(t, "ro"), hostDirEmpty(t, "dev"), hostDirEmpty(t, "cwd")
	masked, maskedContent := hostFile(t, "masked")
	devFile, devContent := hostFile(t, "devnode")
	up := strings.Repeat("../", strings.Count(rootfs, "/")+2)
	links := map[string]string{
		"mnt/abs":     mntAbs,
		"mnt/rel":     up + strings.TrimPrefix(mntRel, "/"),
		"mnt/parent":  mntParent,
		"etc/secret":  masked,
		"etc/ro":      up + strings.TrimPrefix(roDir, "/"),
		"work":        cwdDir,
		"devsrc/null": devFile,
		"devsrc/sub":  devDir,
	}
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "devsrc"), 0o755))
	for l, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(rootfs, l)))
	}
	src := hostDirEmpty(t, "src")
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("bind source"), 0o644))

	spec := attackSpec(t, rootfs,
		"read", masked, // through the link, as a path of the container: must not be the host's
		"read", "/etc/secret",
		"cwd",
		"write", "/mnt/abs/x", "y", "write", "/mnt/rel/f", "z", "write", "/etc/ro/x", "y",
	)
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/mnt/abs", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/mnt/rel", Type: "bind", Source: src, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/mnt/parent/deeper/dir", Type: "tmpfs", Source: "tmpfs"},
	)
	spec.Linux.MaskedPaths = []string{"/etc/secret"}
	spec.Linux.ReadonlyPaths = []string{"/etc/ro"}
	before := hostMounts(t)
	res := mustAttack(t, spec, Options{})

	for _, d := range []string{mntAbs, mntRel, mntParent, roDir, cwdDir} {
		assertEmptyDir(t, d)
	}
	assertFileIs(t, masked, maskedContent)
	noMountUnder(t, before, filepath.Dir(filepath.Dir(rootfs)), filepath.Dir(mntAbs))
	for k, v := range res {
		assert.NotContains(t, v, "host-secret", "ESCAPE: %s read a host file", k)
	}

	t.Run("cwd", func(t *testing.T) {
		spec := attackSpec(t, rootfs, "cwd", "read", "marker")
		spec.Process.Cwd = "/work/app"
		res, err := attack(t, spec, Options{})
		t.Logf("start: %v", err) // refusing is a defence
		if err == nil {
			assert.NotContains(t, res["read marker"], "host-secret")
		}
		assertEmptyDir(t, cwdDir)
	})

	// /dev bound from the rootfs (no tmpfs): the links in it must not let device nodes or the
	// default nodes be made on the host.
	t.Run("dev from the rootfs", func(t *testing.T) {
		spec := attackSpec(t, rootfs, "read", "/dev/null", "open", "/dev/sub/evil")
		var ms []specs.Mount
		for _, m := range spec.Mounts {
			if !strings.HasPrefix(m.Destination, "/dev") {
				ms = append(ms, m)
			}
		}
		spec.Mounts = append(ms, specs.Mount{Destination: "/dev", Type: "bind", Source: filepath.Join(rootfs, "devsrc"), Options: []string{"rbind"}})
		spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/sub/evil", Type: "c", Major: 1, Minor: 3}}
		_, err := attack(t, spec, Options{})
		t.Logf("start: %v", err) // refusing is a defence; the host check below is what matters
		assertEmptyDir(t, devDir)
		assertFileIs(t, devFile, devContent)
	})
}
