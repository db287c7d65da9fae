// Package probe defines what the static probe program reports from inside a container, so tests
// assert on what the container really got rather than on what libjail meant to do.
//
// The program itself is internal/probe/cmd/libjail-probe; tests build it statically and put it in
// the container's root (see internal/fixtures).
package probe

// Report is what the probe prints, as one JSON object, on its standard output.
type Report struct {
	PID         int                  `json:"pid"`
	PPID        int                  `json:"ppid"`
	UID         int                  `json:"uid"`
	GID         int                  `json:"gid"`
	EUID        int                  `json:"euid"`
	Groups      []int                `json:"groups"`
	Umask       int                  `json:"umask"`
	Hostname    string               `json:"hostname"`
	Domainname  string               `json:"domainname"`
	Cwd         string               `json:"cwd"`
	Env         []string             `json:"env"`
	Namespaces  map[string]uint64    `json:"namespaces"` // /proc/self/ns/<type> inode
	Mountinfo   []string             `json:"mountinfo"`
	Status      map[string]string    `json:"status"` // selected /proc/self/status lines: Cap*, Seccomp, NoNewPrivs
	Rlimits     map[string][2]uint64 `json:"rlimits"`
	Cgroup      []string             `json:"cgroup"`
	OOMScoreAdj string               `json:"oomScoreAdj"`
	FDs         map[string]string    `json:"fds"`   // fd number -> link target
	Opens       map[string]string    `json:"opens"` // path asked with -open -> "ok" or the error
	Uptime      string               `json:"uptime"`
	Reads       map[string]string    `json:"reads,omitempty"`       // contents of the files asked with -read (trimmed)
	Personality string               `json:"personality,omitempty"` // /proc/self/personality
	IOPrio      int                  `json:"ioprio"`                // ioprio_get(IOPRIO_WHO_PROCESS, pid)
	Sched       [3]int               `json:"sched"`                 // sched_getattr(pid): policy, nice, priority
	CPUs        []int                `json:"cpus,omitempty"`        // sched_getaffinity(pid): the main thread's cpus
	Keyring     int32                `json:"keyring"`               // the session keyring's serial (0: none)
	Winsize     [2]int               `json:"winsize"`               // rows, columns of stdin's terminal (0, 0: not a terminal)
	Errors      []string             `json:"errors,omitempty"`      // what the probe itself could not read
}
