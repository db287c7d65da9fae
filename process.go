package libjail

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/capabilities"
)

// processPlan is the planned process: what the child execs and as whom.
type processPlan struct {
	Args           []string
	Env            []string
	Cwd            string
	UID, GID       uint32
	AdditionalGids []uint32
	Umask          *uint32
	Rlimits        []rlimit
	NoNewPrivs     bool
	OOMScoreAdj    *int
}

type rlimit struct {
	Name       string
	Resource   int
	Soft, Hard uint64
}

// ErrInvalidSpec is wrapped by every planning error about the spec itself.
var ErrInvalidSpec = errors.New("invalid spec")

func specErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, args...))
}

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// planProcess validates spec.process. canRaise tells whether this process may raise hard limits
// (CAP_SYS_RESOURCE); without it, an rlimit above the current hard limit is an error naming it.
func planProcess(p *specs.Process, canRaise bool) (processPlan, error) {
	if p == nil {
		return processPlan{}, specErr("process", "missing")
	}
	if len(p.Args) == 0 && p.CommandLine == "" {
		return processPlan{}, specErr("process.args", "empty")
	}
	if p.CommandLine != "" {
		return processPlan{}, specErr("process.commandLine", "is for Windows")
	}
	if p.User.Username != "" {
		return processPlan{}, specErr("process.user.username", "%q: names are not resolved; give uid and gid", p.User.Username)
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return processPlan{}, specErr("process.cwd", "%q is not absolute", cwd)
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return processPlan{}, specErr(fmt.Sprintf("process.env[%d]", i), "%q is not NAME=value", e)
		}
	}
	plan := processPlan{
		Args: p.Args, Env: p.Env, Cwd: path.Clean(cwd),
		UID: p.User.UID, GID: p.User.GID, AdditionalGids: p.User.AdditionalGids, Umask: p.User.Umask,
		NoNewPrivs: p.NoNewPrivileges, OOMScoreAdj: p.OOMScoreAdj,
	}
	if a := p.OOMScoreAdj; a != nil && (*a < -1000 || *a > 1000) {
		return processPlan{}, specErr("process.oomScoreAdj", "%d is outside [-1000, 1000]", *a)
	}
	seen := map[string]bool{}
	for i, r := range p.Rlimits {
		field := fmt.Sprintf("process.rlimits[%d]", i)
		res, ok := rlimitNames[r.Type]
		if !ok {
			return processPlan{}, specErr(field, "unknown type %q", r.Type)
		}
		if seen[r.Type] {
			return processPlan{}, specErr(field, "duplicate %s", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return processPlan{}, specErr(field, "%s soft limit %d is above hard limit %d", r.Type, r.Soft, r.Hard)
		}
		if !canRaise {
			var cur unix.Rlimit
			if err := unix.Getrlimit(res, &cur); err == nil && r.Hard > cur.Max {
				return processPlan{}, specErr(field, "%s hard limit %d is above the current hard limit %d and CAP_SYS_RESOURCE is missing", r.Type, r.Hard, cur.Max)
			}
		}
		plan.Rlimits = append(plan.Rlimits, rlimit{Name: r.Type, Resource: res, Soft: r.Soft, Hard: r.Hard})
	}
	return plan, nil
}

// haveCap reports whether the calling thread has capability c in its effective set.
func haveCap(c capability.Cap) bool {
	cur, err := capabilities.Current()
	return err == nil && slices.Contains(cur.Effective, c)
}

// lookPath finds the program in the container's root (the child has entered it) using the
// spec's PATH, as a shell in the container would.
func lookPath(arg0 string, env []string) (string, error) {
	if strings.Contains(arg0, "/") {
		return arg0, nil
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, arg0)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: %w in PATH %q", arg0, unix.ENOENT, pathEnv)
}

// applyRlimits sets each planned rlimit on this process (prlimit on pid 0: the whole process).
func (p *processPlan) applyRlimits() error {
	for _, r := range p.Rlimits {
		l := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
		if err := unix.Prlimit(0, r.Resource, &l, nil); err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
	}
	return nil
}

// switchUser sets groups, gid and uid. Go's setres*id change every thread of the process.
func (p *processPlan) switchUser(userNS bool) error {
	groups := make([]int, len(p.AdditionalGids))
	for i, g := range p.AdditionalGids {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil {
		// Inside a user namespace whose setgroups is "deny", only an empty list was possible.
		if !(userNS && len(groups) == 0 && errors.Is(err, unix.EPERM)) {
			return fmt.Errorf("setgroups %v: %w", groups, err)
		}
	}
	// Go applies set*id to every thread of the process, which is slow under load: skip the calls
	// that would change nothing (the common root container).
	if r, e, sv := unix.Getresgid(); r != int(p.GID) || e != int(p.GID) || sv != int(p.GID) {
		if err := unix.Setresgid(int(p.GID), int(p.GID), int(p.GID)); err != nil {
			return fmt.Errorf("setresgid %d: %w", p.GID, err)
		}
	}
	if r, e, sv := unix.Getresuid(); r != int(p.UID) || e != int(p.UID) || sv != int(p.UID) {
		if err := unix.Setresuid(int(p.UID), int(p.UID), int(p.UID)); err != nil {
			return fmt.Errorf("setresuid %d: %w", p.UID, err)
		}
	}
	return nil
}
