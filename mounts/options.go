package mounts

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Attr is a change of mount attributes as mount_setattr(2) takes it: MOUNT_ATTR_* bits to set and
// to clear. Bits in neither are left as they are, so a bind keeps the flags of its source unless an
// option names them.
type Attr struct {
	Set uint64 `json:"set,omitempty"`
	Clr uint64 `json:"clr,omitempty"`
}

// Empty reports whether the change does nothing.
func (a Attr) Empty() bool { return a.Set == 0 && a.Clr == 0 }

// Param is one filesystem parameter handed to fsconfig(2): key=value, or a bare flag.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	Flag  bool   `json:"flag,omitempty"`
}

func (p Param) String() string {
	if p.Flag {
		return p.Key
	}
	return p.Key + "=" + p.Value
}

// IDMap asks for an idmapped mount. Without explicit mappings the container's user namespace is
// used.
type IDMap struct {
	Recursive   bool                   `json:"recursive,omitempty"`
	UIDMappings []specs.LinuxIDMapping `json:"uidMappings,omitempty"`
	GIDMappings []specs.LinuxIDMapping `json:"gidMappings,omitempty"`
}

// attrBits are the mount attributes an option changes, with the atime mode kept apart because
// the kernel treats MOUNT_ATTR__ATIME as one field, not three bits.
type attrOpt struct {
	set, clr uint64
	atime    int64 // -1: no atime change; else the MOUNT_ATTR_* atime value
}

// attrOptions are the per-mount flags of mount(8). Each also exists with an "r" prefix (rro,
// rnosuid...) meaning the same attribute applied to the whole tree with mount_setattr(2).
//
// "atime" and "nostrictatime" fall back to relatime, the kernel's default when neither noatime nor
// strictatime is asked; "norelatime" means "update atime on every access", i.e. strictatime.
var attrOptions = map[string]attrOpt{
	"ro":            {set: unix.MOUNT_ATTR_RDONLY, atime: -1},
	"rw":            {clr: unix.MOUNT_ATTR_RDONLY, atime: -1},
	"nosuid":        {set: unix.MOUNT_ATTR_NOSUID, atime: -1},
	"suid":          {clr: unix.MOUNT_ATTR_NOSUID, atime: -1},
	"nodev":         {set: unix.MOUNT_ATTR_NODEV, atime: -1},
	"dev":           {clr: unix.MOUNT_ATTR_NODEV, atime: -1},
	"noexec":        {set: unix.MOUNT_ATTR_NOEXEC, atime: -1},
	"exec":          {clr: unix.MOUNT_ATTR_NOEXEC, atime: -1},
	"nosymfollow":   {set: unix.MOUNT_ATTR_NOSYMFOLLOW, atime: -1},
	"symfollow":     {clr: unix.MOUNT_ATTR_NOSYMFOLLOW, atime: -1},
	"nodiratime":    {set: unix.MOUNT_ATTR_NODIRATIME, atime: -1},
	"diratime":      {clr: unix.MOUNT_ATTR_NODIRATIME, atime: -1},
	"noatime":       {atime: unix.MOUNT_ATTR_NOATIME},
	"atime":         {atime: unix.MOUNT_ATTR_RELATIME},
	"relatime":      {atime: unix.MOUNT_ATTR_RELATIME},
	"norelatime":    {atime: unix.MOUNT_ATTR_STRICTATIME},
	"strictatime":   {atime: unix.MOUNT_ATTR_STRICTATIME},
	"nostrictatime": {atime: unix.MOUNT_ATTR_RELATIME},
}

// sbOptions are the superblock flags of mount(8), passed to fsconfig(2) by their kernel names.
// They only make sense when a filesystem is created, never for a bind.
var sbOptions = map[string]string{
	"sync":       "sync",
	"async":      "async",
	"dirsync":    "dirsync",
	"lazytime":   "lazytime",
	"nolazytime": "nolazytime",
	"nomand":     "nomand",
}

// propagationOptions map to the MS_* propagation flags applied after the mount is attached.
var propagationOptions = map[string]uint64{
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// refusedOptions are options seen in the wild that libjail does not honour; each is an error
// rather than silently ignored (fail closed).
var refusedOptions = map[string]error{
	"remount":      fmt.Errorf("%w: remount is not a container mount", ErrInvalid),
	"mand":         fmt.Errorf("%w: mandatory locking was removed from Linux 5.15", ErrUnsupported),
	"iversion":     fmt.Errorf("%w: i_version is chosen by the filesystem, not by mount flags", ErrUnsupported),
	"noiversion":   fmt.Errorf("%w: i_version is chosen by the filesystem, not by mount flags", ErrUnsupported),
	"tmpcopyup":    fmt.Errorf("%w: tmpcopyup (a crun extension)", ErrUnsupported),
	"copy-symlink": fmt.Errorf("%w: copy-symlink (a crun extension)", ErrUnsupported),
	"src-nofollow": fmt.Errorf("%w: src-nofollow (a crun extension)", ErrUnsupported),
	"dst-nofollow": fmt.Errorf("%w: dst-nofollow (a crun extension; destinations never follow links out of the root)", ErrUnsupported),
	"auto":         errFstab,
	"noauto":       errFstab,
	"user":         errFstab,
	"users":        errFstab,
	"nouser":       errFstab,
	"owner":        errFstab,
	"group":        errFstab,
	"nofail":       errFstab,
	"_netdev":      errFstab,
}

var errFstab = fmt.Errorf("%w: an fstab-only option of mount(8) that means nothing to the kernel", ErrUnsupported)

// options is the parsed form of one mount's option list.
type options struct {
	bind, rbind bool
	idmap       *IDMap
	attr        attrAcc
	recAttr     attrAcc
	sb          []string
	data        []Param
	propagation []uint64
}

// attrAcc accumulates attribute options in order, later options overriding earlier ones.
type attrAcc struct {
	set, clr uint64
	atime    int64
}

func (a *attrAcc) add(o attrOpt) {
	a.set = a.set&^o.clr | o.set
	a.clr = a.clr&^o.set | o.clr
	if o.atime >= 0 {
		a.atime = o.atime
	}
}

func (a attrAcc) attr() Attr {
	out := Attr{Set: a.set, Clr: a.clr}
	if a.atime >= 0 {
		out.Clr |= unix.MOUNT_ATTR__ATIME
		out.Set |= uint64(a.atime)
	}
	return out
}

// parseOptions splits a mount's option list into its families. It never looks at the filesystem:
// anything that is not a known mount(8) option is a filesystem parameter, validated by the kernel
// when the filesystem is configured.
func parseOptions(opts []string) (options, error) {
	o := options{attr: attrAcc{atime: -1}, recAttr: attrAcc{atime: -1}}
	for _, s := range opts {
		switch {
		case s == "":
			return o, fmt.Errorf("%w: empty option", ErrInvalid)
		case s == "bind":
			o.bind = true
		case s == "rbind":
			o.bind, o.rbind = true, true
		case s == "idmap" || s == "ridmap":
			if o.idmap == nil {
				o.idmap = &IDMap{}
			}
			o.idmap.Recursive = o.idmap.Recursive || s == "ridmap"
		case s == "defaults":
			// rw,suid,dev,exec,async: what a new mount has anyway.
		case s == "silent" || s == "loud":
			// Only the kernel log's verbosity about this mount; nothing to honour.
		case refusedOptions[s] != nil:
			return o, fmt.Errorf("option %q: %w", s, refusedOptions[s])
		case strings.HasPrefix(s, "x-") || strings.HasPrefix(s, "comment="):
			return o, fmt.Errorf("option %q: %w", s, errFstab)
		default:
			if a, ok := attrOptions[s]; ok {
				o.attr.add(a)
				if s == "ro" || s == "rw" {
					// A new filesystem also gets a read-only superblock, as mount(2) does.
					o.sb = append(o.sb, s)
				}
				continue
			}
			if a, ok := attrOptions[strings.TrimPrefix(s, "r")]; ok && strings.HasPrefix(s, "r") {
				o.recAttr.add(a)
				continue
			}
			if f, ok := sbOptions[s]; ok {
				o.sb = append(o.sb, f)
				continue
			}
			if p, ok := propagationOptions[s]; ok {
				o.propagation = append(o.propagation, p)
				continue
			}
			k, v, hasValue := strings.Cut(s, "=")
			if k == "" {
				return o, fmt.Errorf("option %q: %w: empty key", s, ErrInvalid)
			}
			o.data = append(o.data, Param{Key: k, Value: v, Flag: !hasValue})
		}
	}
	return o, nil
}
