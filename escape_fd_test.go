package libjail

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/testutil"
)

// TestEscapeLeakedFDs (the CVE-2024-21626 class): the agent holds directory fds of the host
// without O_CLOEXEC (a host directory with a marker file, and the host's /), and a container with
// every capability asks for process.cwd "/proc/self/fd/N" for each fd number the child could hold,
// then reads the marker relative to its working directory and lists its fds. Failing to start is
// a defence; a working directory outside the root, a readable marker or a host fd is an escape.
func TestEscapeLeakedFDs(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := escapeRootfs(t)
	marker, _ := hostFile(t, "fd")
	dir := marker[:strings.LastIndex(marker, "/")]
	leaked := leakDirFDs(t, dir, "/")
	// Every fd number up to a few above the highest leaked one: the child's own (its socket, the
	// executable, the runtime's) and the agent's.
	top := leaked[len(leaked)-1] + 4
	for n := 3; n <= top; n++ {
		t.Run(fmt.Sprint("fd", n), func(t *testing.T) {
			spec := attackSpec(t, rootfs, "cwd", "read", "marker", "read", "../../../../../../../.."+marker, "fds")
			spec.Process.Cwd = "/proc/self/fd/" + strconv.Itoa(n)
			res, err := attack(t, spec, Options{})
			if err != nil {
				t.Logf("refused: %v", err)
				return
			}
			for k, v := range res {
				assert.NotContains(t, v, "host-secret", "ESCAPE: %s read the host marker through cwd %s", k, spec.Process.Cwd)
				if strings.HasPrefix(k, "fd ") {
					fd, _ := strconv.Atoi(strings.TrimPrefix(k, "fd "))
					// Beyond stdio: only the attacker's own directory listing may show.
					assert.True(t, fd <= 2 || v == "" || strings.HasPrefix(v, "/proc/") || strings.HasPrefix(v, "anon_inode:"),
						"ESCAPE: fd %d -> %s reached the container", fd, v)
				}
			}
			assert.True(t, strings.HasPrefix(res["cwd"], "/") && !strings.Contains(res["cwd"], "("),
				"ESCAPE: cwd outside the root: %q", res["cwd"])
		})
	}

	// A working directory below the fd: making it must not create a directory on the host, even
	// when entering it is then refused.
	for _, n := range leaked {
		t.Run(fmt.Sprint("mkdir below fd", n), func(t *testing.T) {
			spec := attackSpec(t, rootfs, "cwd")
			spec.Process.Cwd = "/proc/self/fd/" + strconv.Itoa(n) + "/" + testutil.Name(t, "made")
			_, err := attack(t, spec, Options{})
			t.Logf("start: %v", err)
			for _, d := range []string{dir, "/"} {
				ents, err := os.ReadDir(d)
				require.NoError(t, err)
				for _, e := range ents {
					assert.NotContains(t, e.Name(), "libjail-test-made", "ESCAPE: the container's cwd was made on the host in %s", d)
				}
			}
		})
	}
}
