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

func TestPodExample(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	bin := fixtures.BuildHere(t)
	rootfs := filepath.Join(dir, "rootfs")
	require.NoError(t, fixtures.BuildRootfs(rootfs, true))

	cmd := exec.Command(bin, "--rootfs", rootfs, "--id", testutil.Name(t, "pod"))
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	var nets []string
	for _, l := range lines {
		if i := strings.Index(l, "net="); i >= 0 {
			nets = append(nets, strings.Fields(l[i:])[0])
		}
	}
	require.Len(t, nets, 2, "output:\n%s", b)
	assert.Equal(t, nets[0], nets[1], "both containers share the pod's network namespace")
	assert.Contains(t, string(b), "pod device rules")
	assert.Equal(t, 2, strings.Count(string(b), "/dev/loop0 is denied"), "output:\n%s", b)
	assert.Equal(t, 2, strings.Count(string(b), "/dev/null opens"))
}
