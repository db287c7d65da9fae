package cgroups

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OOMEvent reports that the kernel's OOM handling ran in the cgroup.
type OOMEvent struct {
	// Count is how many OOM occurrences this event folds together (at least 1).
	Count uint64 `json:"count"`
	// Kills is, on v2, the cgroup's oom_kill counter when the event was read (0 on v1). The kernel
	// counts the OOM before the kill, so it may not include this event's kill yet.
	Kills uint64 `json:"kills,omitempty"`
}

// OOMEvents watches the v1 memory controller through an eventfd registered on memory.oom_control,
// or, without one, the cgroup2 memory.events file with inotify.
func (m *fsManager) OOMEvents() (<-chan OOMEvent, func(), error) {
	if d := m.controllerDir("memory"); d != "" {
		ch, stop, err := oomV1(d)
		if err != nil {
			return nil, nil, &FieldError{Field: "oom events", Err: err}
		}
		return ch, stop, nil
	}
	if m.dirFor("memory") != "" {
		ch, stop, err := oomV2(m.v2)
		if err != nil {
			return nil, nil, &FieldError{Field: "oom events", Err: err}
		}
		return ch, stop, nil
	}
	return nil, nil, fmt.Errorf("oom events: %w: no memory controller on this %s machine", ErrNotSupported, m.plan.Layout)
}

// watcher runs one reader goroutine and stops it by closing its file (the Go poller wakes the read).
type watcher struct {
	ch   chan OOMEvent
	done chan struct{}
	once sync.Once
	f    *os.File
	keep []*os.File
}

func newWatcher(f *os.File, keep ...*os.File) *watcher {
	return &watcher{ch: make(chan OOMEvent, 1), done: make(chan struct{}), f: f, keep: keep}
}

func (w *watcher) stop() {
	w.once.Do(func() {
		close(w.done)
		w.f.Close()
		for _, k := range w.keep {
			k.Close()
		}
	})
}

func (w *watcher) send(ev OOMEvent) bool {
	select {
	case w.ch <- ev:
		return true
	case <-w.done:
		return false
	}
}

func oomV1(dir string) (<-chan OOMEvent, func(), error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, nil, os.NewSyscallError("eventfd", err)
	}
	ef := os.NewFile(uintptr(efd), "oom-eventfd")
	ctl, err := os.OpenFile(filepath.Join(dir, "memory.oom_control"), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		ef.Close()
		return nil, nil, err
	}
	if err := writeFile(dir, "cgroup.event_control", fmt.Sprintf("%d %d", efd, ctl.Fd())); err != nil {
		ef.Close()
		ctl.Close()
		return nil, nil, err
	}
	w := newWatcher(ef, ctl)
	go func() {
		defer close(w.ch)
		defer w.stop()
		buf := make([]byte, 8)
		for {
			if _, err := ef.Read(buf); err != nil {
				return
			}
			// The kernel also signals the eventfd when the cgroup is removed.
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				return
			}
			if !w.send(OOMEvent{Count: binary.NativeEndian.Uint64(buf)}) {
				return
			}
		}
	}()
	return w.ch, w.stop, nil
}

func oomV2(dir string) (<-chan OOMEvent, func(), error) {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, nil, os.NewSyscallError("inotify_init1", err)
	}
	f := os.NewFile(uintptr(ifd), "oom-inotify")
	if _, err := unix.InotifyAddWatch(ifd, filepath.Join(dir, "memory.events"), unix.IN_MODIFY); err != nil {
		f.Close()
		return nil, nil, &os.PathError{Op: "inotify_add_watch", Path: filepath.Join(dir, "memory.events"), Err: err}
	}
	// cgroupfs removes a cgroup's files without telling inotify, and the directory reports no
	// IN_DELETE_SELF either: the parent's IN_DELETE naming it is what tells the cgroup is gone.
	parent, name := filepath.Split(filepath.Clean(dir))
	pwd, err := unix.InotifyAddWatch(ifd, parent, unix.IN_DELETE|unix.IN_ONLYDIR)
	if err != nil {
		f.Close()
		return nil, nil, &os.PathError{Op: "inotify_add_watch", Path: parent, Err: err}
	}
	ev, err := readKV(dir, "memory.events")
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	last := ev["oom"]
	w := newWatcher(f)
	go func() {
		defer close(w.ch)
		defer w.stop()
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			gone, changed := false, false
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				e := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(e.Len)]
				switch {
				case e.Mask&unix.IN_IGNORED != 0:
					gone = true // the file or the parent went away
				case int(e.Wd) == pwd:
					gone = gone || e.Mask&unix.IN_DELETE != 0 && string(bytes.TrimRight(nameBytes, "\x00")) == name
				default:
					changed = true
				}
				off += unix.SizeofInotifyEvent + int(e.Len)
			}
			if gone {
				return
			}
			if !changed {
				continue
			}
			ev, err := readKV(dir, "memory.events")
			if err != nil {
				return
			}
			if ev["oom"] > last {
				if !w.send(OOMEvent{Count: ev["oom"] - last, Kills: ev["oom_kill"]}) {
					return
				}
				last = ev["oom"]
			}
		}
	}()
	return w.ch, w.stop, nil
}
