package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

func TestExecExample(t *testing.T) {
	testutil.RequireRoot(t)
	bin := fixtures.BuildHere(t)
	bundle := fixtures.Bundle(t, "/"+testutil.Name(t, "ctr"), "/bin/true")

	cmd := exec.Command(bin, "--bundle", bundle, "--id", testutil.Name(t, "exec"), "--", "/bin/sh", "-c", "read x; echo \"$x from $(hostname), init is $(cat /proc/1/cmdline | tr '\\0' ' ')\"; exit 4")
	cmd.Stdin = strings.NewReader("hi\n")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 4, ee.ExitCode())
	assert.Equal(t, "hi from libjail, init is /bin/sleep 3600 \n", string(b))
}

// TestExecExampleTTY: with --tty the process gets a terminal in the container, relayed to the
// example's stdio.
func TestExecExampleTTY(t *testing.T) {
	testutil.RequireRoot(t)
	bin := fixtures.BuildHere(t)
	bundle := fixtures.Bundle(t, "/"+testutil.Name(t, "ctr"), "/bin/true")

	cmd := exec.Command(bin, "--bundle", bundle, "--id", testutil.Name(t, "exec"), "--tty", "--",
		"/bin/sh", "-c", "tty; test -t 0 && echo on-a-terminal; exit 5")
	cmd.Stdin = strings.NewReader("")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 5, ee.ExitCode())
	assert.Contains(t, string(b), "/dev/pts/")
	assert.Contains(t, string(b), "on-a-terminal")
}
