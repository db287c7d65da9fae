package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

// TestRunBundle builds the example and runs a busybox bundle through it, as `make demo` does.
func TestRunBundle(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	bin := fixtures.BuildHere(t)

	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	require.NoError(t, fixtures.BuildRootfs(rootfs, true))
	spec := fixtures.Spec(rootfs, "/bin/sh", "-c", "read line; echo \"got $line in $(hostname)\"; exit 3")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	require.NoError(t, fixtures.WriteBundle(bundle, spec))

	cmd := exec.Command(bin, "--bundle", bundle, "--id", testutil.Name(t, "run"))
	cmd.Stdin = strings.NewReader("hello\n")
	var stdout strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "the container's exit status is the example's")
	assert.Equal(t, 3, ee.ExitCode())
	assert.Equal(t, "got hello in libjail\n", stdout.String())
}
