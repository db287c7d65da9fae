package cgroups

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The v2 watcher cannot meet a real memory.events on this machine's unified hierarchy (no memory
// controller there), so it watches a real file with the same format: inotify behaves the same.
func TestOOMWatcherV2OnFile(t *testing.T) {
	// A cgroup directory with a sibling, whose removal must not end the watch.
	dir, sibling := filepath.Join(t.TempDir(), "cg"), ""
	sibling = filepath.Join(filepath.Dir(dir), "other")
	for _, d := range []string{dir, sibling} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "memory.events")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
	events, stop, err := oomV2(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	write("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n") // no new OOM: no event
	write("low 0\nhigh 0\nmax 9\noom 3\noom_kill 2\n")
	select {
	case ev := <-events:
		if ev.Count != 2 || ev.Kills != 2 {
			t.Errorf("event %+v, want 2 OOMs, 2 kills", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	if err := os.Remove(sibling); err != nil {
		t.Fatal(err)
	}
	select {
	case ev, ok := <-events:
		t.Fatalf("removing a sibling: event %+v, open %v", ev, ok)
	case <-time.After(200 * time.Millisecond):
	}
	// The file going away (as with rmdir of the cgroup) closes the channel.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("unexpected event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed when the file went away")
	}
}

// cgroupfs gives no event on the file when the cgroup goes: the parent's IN_DELETE closes the channel.
func TestOOMWatcherV2ClosesOnRmdir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cg")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.events"), []byte("oom 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	events, stop, err := oomV2(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// A hard link keeps the file's inode alive, as cgroupfs does: no IN_IGNORED for it.
	if err := os.Link(filepath.Join(dir, "memory.events"), filepath.Join(filepath.Dir(dir), "keep")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "memory.events")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("unexpected event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed when the directory went away")
	}
}
