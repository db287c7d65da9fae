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

// TestRunBundle builds the example and runs a busybox bundle through it, as `make demo` does.
func TestRunBundle(t *testing.T) {
	testutil.RequireRoot(t)
	bin := fixtures.BuildHere(t)
	bundle := fixtures.Bundle(t, "/"+testutil.Name(t, "ctr"), "/bin/sh", "-c", "read line; echo \"got $line in $(hostname)\"; exit 3")

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
