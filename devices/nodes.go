package devices

import (
	"fmt"
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Node is one device node to create under the container's /dev. It is plain data so the parent can
// plan it and send it to the child as JSON.
type Node struct {
	Path     string `json:"path"`     // absolute, under /dev, clean
	Type     rune   `json:"type"`     // 'c', 'b', 'u' (unbuffered char, same as 'c') or 'p' (fifo)
	Major    int64  `json:"major"`    // 0 for 'p'
	Minor    int64  `json:"minor"`    // 0 for 'p'
	FileMode uint32 `json:"fileMode"` // permission bits only (07777)
	UID      uint32 `json:"uid"`
	GID      uint32 `json:"gid"`
}

func (n Node) String() string {
	return fmt.Sprintf("%c %d:%d %s %04o %d:%d", n.Type, n.Major, n.Minor, n.Path, n.FileMode, n.UID, n.GID)
}

// ifmt is the S_IF* type of the node.
func (n Node) ifmt() uint32 {
	switch n.Type {
	case 'b':
		return unix.S_IFBLK
	case 'p':
		return unix.S_IFIFO
	default:
		return unix.S_IFCHR
	}
}

// DefaultNodes are the char devices every container gets (mode 0666, owned by root), as the OCI
// runtime spec requires them.
func DefaultNodes() []Node {
	c := func(p string, major, minor int64) Node {
		return Node{Path: p, Type: 'c', Major: major, Minor: minor, FileMode: 0o666}
	}
	return []Node{
		c("/dev/null", 1, 3),
		c("/dev/zero", 1, 5),
		c("/dev/full", 1, 7),
		c("/dev/random", 1, 8),
		c("/dev/urandom", 1, 9),
		c("/dev/tty", 5, 0),
	}
}

// PlanNodes validates linux.devices and turns it into nodes, followed by the default nodes not
// overridden by a spec entry of the same path when withDefaults is set. Errors are *SpecError
// wrapping ErrInvalidNode and name the entry.
func PlanNodes(spec []specs.LinuxDevice, withDefaults bool) ([]Node, error) {
	out := make([]Node, 0, len(spec)+6)
	seen := make(map[string]int, len(spec))
	for i, d := range spec {
		n, err := planNode(i, d)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[n.Path]; dup {
			return nil, nodeErr(i, "path", "%q duplicates linux.devices[%d]", d.Path, j)
		}
		seen[n.Path] = i
		out = append(out, n)
	}
	if withDefaults {
		for _, n := range DefaultNodes() {
			if _, ok := seen[n.Path]; !ok {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

func planNode(i int, d specs.LinuxDevice) (Node, error) {
	if !path.IsAbs(d.Path) {
		return Node{}, nodeErr(i, "path", "%q is not absolute", d.Path)
	}
	p := path.Clean(d.Path)
	if !strings.HasPrefix(p, "/dev/") {
		return Node{}, nodeErr(i, "path", "%q is not under /dev", d.Path)
	}
	n := Node{Path: p, FileMode: 0o666}
	switch d.Type {
	case "c", "b", "u", "p":
		n.Type = rune(d.Type[0])
	default:
		return Node{}, nodeErr(i, "type", "%q is not one of c, b, u, p", d.Type)
	}
	if n.Type == 'p' {
		if d.Major != 0 || d.Minor != 0 {
			return Node{}, nodeErr(i, "major", "a fifo has no major/minor (got %d:%d)", d.Major, d.Minor)
		}
	} else {
		if d.Major < 0 || d.Major > 0xfff {
			return Node{}, nodeErr(i, "major", "%d is out of range 0..4095", d.Major)
		}
		if d.Minor < 0 || d.Minor > 0xfffff {
			return Node{}, nodeErr(i, "minor", "%d is out of range 0..1048575", d.Minor)
		}
		n.Major, n.Minor = d.Major, d.Minor
	}
	if d.FileMode != nil {
		// Specs carry either Go permission bits or a raw st_mode (e.g. 020666 from some engines);
		// accept a raw type only when it agrees with "type".
		m := uint32(*d.FileMode)
		if m&^uint32(os.ModePerm|0o7000|unix.S_IFMT) != 0 {
			return Node{}, nodeErr(i, "fileMode", "%#o has bits other than permissions", m)
		}
		if t := m & unix.S_IFMT; t != 0 && t != n.ifmt() {
			return Node{}, nodeErr(i, "fileMode", "%#o has a file type that contradicts type %q", m, d.Type)
		}
		n.FileMode = m & 0o7777
	}
	if d.UID != nil {
		n.UID = *d.UID
	}
	if d.GID != nil {
		n.GID = *d.GID
	}
	return n, nil
}
