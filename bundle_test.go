package libjail

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/fixtures"
)

func TestReadBundleSpec(t *testing.T) {
	dir := t.TempDir()
	want := fixtures.Spec(filepath.Join(dir, "rootfs"), "/bin/true")
	require.NoError(t, fixtures.WriteBundle(dir, want))
	got, err := ReadBundleSpec(dir)
	require.NoError(t, err)
	assert.Equal(t, want.Process.Args, got.Process.Args)
	assert.Equal(t, "rootfs", got.Root.Path, "a root inside the bundle is relative")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte("{"), 0o644))
	_, err = ReadBundleSpec(dir)
	assert.ErrorContains(t, err, "config.json")
	_, err = ReadBundleSpec(filepath.Join(dir, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
