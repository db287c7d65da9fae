package seccomp

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDiskCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	programs.reset()
	first, err := Compile(Default(), Options{CacheDir: dir})
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 1, "the program is on disk")

	// A new process: nothing in memory, the disk serves it without compiling.
	programs.reset()
	before := compiles.Load()
	second, err := Compile(Default(), Options{CacheDir: dir})
	require.NoError(t, err)
	assert.Equal(t, before, compiles.Load(), "served from disk")
	assert.Equal(t, first.Filter, second.Filter)

	// A file others may write is not trusted: compiled again (and rewritten).
	require.NoError(t, os.Chmod(files[0], 0o666))
	require.NoError(t, os.WriteFile(files[0], []byte(`{"Filter":"AAAAAAAAAAA="}`), 0o666))
	programs.reset()
	third, err := Compile(Default(), Options{CacheDir: dir})
	require.NoError(t, err)
	assert.Equal(t, before+1, compiles.Load(), "an untrusted file is compiled over")
	assert.Equal(t, first.Filter, third.Filter)

	// A damaged file is ignored.
	require.NoError(t, os.WriteFile(files[0], []byte("{"), 0o600))
	programs.reset()
	_, err = Compile(Default(), Options{CacheDir: dir})
	require.NoError(t, err)
	assert.Equal(t, before+2, compiles.Load())
}
