package testutil

import (
	"errors"
	"os"

	"github.com/cilium/ebpf"
)

// DeviceProgramIDs lists the ids of every cgroup device BPF program loaded in the kernel, for
// leak checks (take it before and after; other processes may load their own).
func DeviceProgramIDs() ([]ebpf.ProgramID, error) {
	var ids []ebpf.ProgramID
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		info, err := p.Info()
		p.Close()
		if err == nil && info.Type == ebpf.CGroupDevice {
			ids = append(ids, id)
		}
	}
}
