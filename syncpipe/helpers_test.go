package syncpipe_test

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/syncpipe"
)

// Plan is registered as a pointer type, Ready and Start as value types.
type Plan struct {
	Name string `json:"name"`
	Data []byte `json:"data,omitempty"`
	N    int    `json:"n,omitempty"`
}

func (*Plan) Kind() string { return "test.plan" }

type Ready struct {
	Pid int `json:"pid"`
}

func (Ready) Kind() string { return "test.ready" }

type Start struct{}

func (Start) Kind() string { return "test.start" }

var proto = syncpipe.NewProtocol(&Plan{}, Ready{}, Start{})

// pair returns both ends as Conns in this process, plus the raw child socket for hand-made
// datagrams (still owned by the child Conn's duplicate: closing raw alone does not close the
// peer).
func pair(t *testing.T) (parent, child *syncpipe.Conn) {
	t.Helper()
	parent, f, err := proto.Pair()
	if err != nil {
		t.Fatal(err)
	}
	child, err = proto.FromFile(f)
	if err != nil {
		parent.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { parent.Close(); child.Close() })
	return parent, child
}

// rawPair returns the parent Conn and the child's end as a plain blocking fd for hand-made
// datagrams.
func rawPair(t *testing.T) (*syncpipe.Conn, int) {
	t.Helper()
	parent, f, err := proto.Pair()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	unix.CloseOnExec(fd)
	t.Cleanup(func() { parent.Close(); unix.Close(fd) })
	return parent, fd
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
