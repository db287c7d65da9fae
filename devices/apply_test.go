package devices

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

func TestApplyV1(t *testing.T) {
	root := v1Root(t)
	disk := diskNode(t)
	pod := mkCgroup(t, root, "v1-pod")
	if err := ApplyV1(pod, PodDefaultRules()); err != nil {
		t.Fatal(err)
	}
	expectOpens(t, "pod", probe(t, pod, disk), map[string]string{"null": "ok", "zero": "ok", "full": "ok", "kmsg": "EPERM", "disk": "EPERM", "blk": "EPERM"})

	ctr := mkCgroup(t, pod, "ctr")
	if err := ApplyV1(ctr, r(t, "deny a *:* rwm", "allow c 1:3 rwm", "allow c 1:5 r")); err != nil {
		t.Fatal(err)
	}
	expectOpens(t, "container", probe(t, ctr, disk), map[string]string{"null": "ok", "zero": "ok", "full": "EPERM", "disk": "EPERM", "blk": "EPERM"})

	// A child cannot get what its parent lacks, and the kernel's EPERM comes through.
	for _, rules := range [][]Rule{
		r(t, "deny a *:* rwm", "allow b 254:0 r"),
		r(t, "deny a *:* rwm", "allow b 7:0 r"),
		{AllowAll()},
	} {
		if err := ApplyV1(ctr, rules); !errors.Is(err, unix.EPERM) {
			t.Errorf("%v: got %v, want EPERM", rules, err)
		}
	}
	// Narrowing a running container is fine, and the pod's own list is unchanged.
	if err := ApplyV1(ctr, r(t, "deny a *:* rwm", "allow c 1:5 r")); err != nil {
		t.Fatal(err)
	}
	expectOpens(t, "narrowed container", probe(t, ctr, disk), map[string]string{"null": "EPERM", "zero": "ok"})
	if cur, err := readV1(pod); err != nil || !cur.equal(effective(PodDefaultRules())) {
		t.Fatalf("pod list changed: %v, %v", cur, err)
	}
}

func TestApplyV1AllowAll(t *testing.T) {
	root := v1Root(t)
	disk := diskNode(t)
	cg := mkCgroup(t, root, "v1-all")
	if err := ApplyV1(cg, PodDefaultRules()); err != nil {
		t.Fatal(err)
	}
	if err := ApplyV1(cg, []Rule{AllowAll()}); err != nil {
		t.Fatal(err)
	}
	expectOpens(t, "allow-all", probe(t, cg, disk), map[string]string{"null": "ok", "blk": "ok"})
}

func TestAttachV2(t *testing.T) {
	root := v2Root(t)
	disk := diskNode(t)
	pod := mkCgroup(t, root, "v2-pod")
	v, err := AttachV2(pod, PodDefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	expectOpens(t, "pod", probe(t, pod, disk), map[string]string{"null": "ok", "zero": "ok", "kmsg": "EPERM", "disk": "EPERM", "blk": "EPERM"})
	id1 := attachedIDs(t, pod, 1)[0]

	if err := v.Replace(r(t, "deny a *:* rwm", "allow c 1:5 r")); err != nil {
		t.Fatal(err)
	}
	expectOpens(t, "replaced", probe(t, pod, disk), map[string]string{"null": "EPERM", "zero": "ok", "disk": "EPERM", "blk": "EPERM"})
	if id2 := attachedIDs(t, pod, 1)[0]; id2 == id1 {
		t.Fatalf("program %d not replaced", id1)
	}

	// ALLOW_MULTI: the container's allow-all program cannot undo the pod's denials.
	ctr := mkCgroup(t, pod, "ctr")
	cv, err := AttachV2(ctr, []Rule{AllowAll()})
	if err != nil {
		t.Fatal(err)
	}
	expectOpens(t, "allow-all container", probe(t, ctr, disk), map[string]string{"null": "EPERM", "zero": "ok", "disk": "EPERM", "blk": "EPERM"})

	if err := cv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	attachedIDs(t, ctr, 0)
	attachedIDs(t, pod, 0)
	expectOpens(t, "detached", probe(t, pod, disk), map[string]string{"null": "ok", "blk": "ok"})
}

// attachedIDs lists the programs on dir and checks their number.
func attachedIDs(t *testing.T, dir string, n int) []ebpf.ProgramID {
	t.Helper()
	ids, err := AttachedPrograms(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != n {
		t.Fatalf("%s: %d programs attached (%v), want %d", dir, len(ids), ids, n)
	}
	return ids
}

func init() {
	children["hammer"] = func() (any, error) {
		if err := waitGate(); err != nil {
			return nil, err
		}
		fails := 0
		for range 20000 {
			if tryOpen("/dev/null", unix.O_RDONLY) != "ok" {
				fails++
			}
		}
		return fails, nil
	}
}

// While the program is replaced again and again, a process using an allowed device never sees a
// moment without a program (denied) or with no rules.
func TestReplaceV2NoWindow(t *testing.T) {
	root := v2Root(t)
	cg := mkCgroup(t, root, "v2-replace")
	a := r(t, "deny a *:* rwm", "allow c 1:3 r")
	b := r(t, "deny a *:* rwm", "allow c 1:3 rw", "allow c 1:5 r")
	v, err := AttachV2(cg, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	var stop atomic.Bool
	var wg sync.WaitGroup
	var replaces int
	var rerr error
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			if err := v.Replace([][]Rule{a, b}[i%2]); err != nil {
				rerr = err
				return
			}
			replaces++
		}
	})
	var fails int
	err = jsonUnmarshal(startIn(t, cg, childCmd("hammer")), &fails)
	stop.Store(true)
	wg.Wait()
	if err != nil || rerr != nil {
		t.Fatal(err, rerr)
	}
	if fails != 0 {
		t.Fatalf("%d of 20000 opens of an allowed device failed during %d replaces", fails, replaces)
	}
	t.Logf("%d replaces, no failed open", replaces)
	if ids := attachedIDs(t, cg, 1); !slices.Contains(ids, mustID(t, v)) {
		t.Fatalf("attached %v is not ours", ids)
	}
}

func mustID(t *testing.T, v *V2) ebpf.ProgramID {
	id, err := v.ProgramID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Another process (here: a fresh V2 from the id) can take over and detach the program.
func TestOpenV2(t *testing.T) {
	root := v2Root(t)
	cg := mkCgroup(t, root, "v2-open")
	v, err := AttachV2(cg, PodDefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	id := mustID(t, v)
	// The first handle goes away without detaching, as when the process that attached exits.
	v.prog.Close()
	v.cg.Close()
	if _, err := OpenV2(cg, id+1000, nil); err == nil {
		t.Fatal("OpenV2 of a program that is not attached: no error")
	}
	w, err := OpenV2(cg, id, PodDefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Replace([]Rule{DenyAll()}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	attachedIDs(t, cg, 0)
}
