package syncpipe_test

import (
	"os"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
)

// childEnv selects a child role when the test binary is re-executed by a test.
const childEnv = "LIBJAIL_SYNCPIPE_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	// Start the netpoller before the leak check takes its first list: its fds are opened
	// lazily, and they would shift the number of the fd the check uses to read /proc/self/fd,
	// which it then reports as a leak.
	if c, f, err := proto.Pair(); err == nil {
		c.Close()
		f.Close()
	}
	os.Exit(testutil.CheckFDLeaks(m))
}
