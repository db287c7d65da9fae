package mounts

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func specWith(mounts ...specs.Mount) *specs.Spec {
	return &specs.Spec{Root: &specs.Root{Path: "/run/c/rootfs"}, Mounts: append([]specs.Mount{
		{Destination: "/dev", Source: "/dev", Options: []string{"rbind"}}, // keep /dev out of these tests
	}, mounts...)}
}

func TestPlanOptions(t *testing.T) {
	const atime = unix.MOUNT_ATTR__ATIME
	tests := []struct {
		name string
		m    specs.Mount
		want Mount
	}{
		{"tmpfs flags and data", specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=65536k", "ro"}},
			Mount{Type: "tmpfs", Source: "tmpfs",
				Attr:    Attr{Set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_RDONLY},
				SBFlags: []string{"ro"}, Data: []Param{{Key: "mode", Value: "1777"}, {Key: "size", Value: "65536k"}}}},
		{"later option wins", specs.Mount{Destination: "/tmp", Type: "tmpfs", Options: []string{"ro", "nosuid", "rw", "suid", "exec", "noexec"}},
			Mount{Type: "tmpfs", Source: "tmpfs", Attr: Attr{Set: unix.MOUNT_ATTR_NOEXEC, Clr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID},
				SBFlags: []string{"ro", "rw"}}},
		{"atime family", specs.Mount{Destination: "/a", Type: "tmpfs", Options: []string{"noatime", "nodiratime", "strictatime"}},
			Mount{Type: "tmpfs", Source: "tmpfs", Attr: Attr{Set: unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_STRICTATIME, Clr: atime}}},
		{"relatime", specs.Mount{Destination: "/a", Type: "tmpfs", Options: []string{"noatime", "relatime"}},
			Mount{Type: "tmpfs", Source: "tmpfs", Attr: Attr{Clr: atime}}},
		{"norelatime is strictatime", specs.Mount{Destination: "/a", Type: "tmpfs", Options: []string{"norelatime"}},
			Mount{Type: "tmpfs", Source: "tmpfs", Attr: Attr{Set: unix.MOUNT_ATTR_STRICTATIME, Clr: atime}}},
		{"superblock flags", specs.Mount{Destination: "/a", Type: "tmpfs", Options: []string{"sync", "dirsync", "lazytime", "async", "nolazytime", "nomand"}},
			Mount{Type: "tmpfs", Source: "tmpfs", SBFlags: []string{"sync", "dirsync", "lazytime", "async", "nolazytime", "nomand"}}},
		{"no-ops", specs.Mount{Destination: "/a", Type: "tmpfs", Options: []string{"defaults", "silent", "loud"}},
			Mount{Type: "tmpfs", Source: "tmpfs"}},
		{"symfollow", specs.Mount{Destination: "/a", Type: "tmpfs", Options: []string{"nosymfollow"}},
			Mount{Type: "tmpfs", Source: "tmpfs", Attr: Attr{Set: unix.MOUNT_ATTR_NOSYMFOLLOW}}},
		{"flag parameter", specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"newinstance", "ptmxmode=0666", "gid=5"}},
			Mount{Type: "devpts", Source: "devpts", Data: []Param{{Key: "newinstance", Flag: true}, {Key: "ptmxmode", Value: "0666"}, {Key: "gid", Value: "5"}}}},
		{"value with =", specs.Mount{Destination: "/o", Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "xino=off"}},
			Mount{Type: "overlay", Source: "overlay", Data: []Param{{Key: "lowerdir", Value: "/a:/b"}, {Key: "upperdir", Value: "/u"}, {Key: "workdir", Value: "/w"}, {Key: "xino", Value: "off"}}}},
		{"bind", specs.Mount{Destination: "/data", Source: "/srv/data", Options: []string{"bind", "ro", "nosuid"}},
			Mount{Source: "/srv/data", Bind: true, Attr: Attr{Set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID}}},
		{"rbind with recursive attributes", specs.Mount{Destination: "/data", Type: "none", Source: "/srv/data",
			Options: []string{"rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime", "rnosymfollow", "rw"}},
			Mount{Source: "/srv/data", Bind: true, Recursive: true, Attr: Attr{Clr: unix.MOUNT_ATTR_RDONLY},
				RecAttr: Attr{Set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NOATIME | unix.MOUNT_ATTR_NOSYMFOLLOW, Clr: atime}}},
		{"recursive clears", specs.Mount{Destination: "/data", Source: "/srv", Options: []string{"rbind", "rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow", "rstrictatime"}},
			Mount{Source: "/srv", Bind: true, Recursive: true, RecAttr: Attr{Set: unix.MOUNT_ATTR_STRICTATIME,
				Clr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW | atime}}},
		{"recursive attributes fold into a new filesystem", specs.Mount{Destination: "/t", Type: "tmpfs", Options: []string{"rro", "rnosuid"}},
			Mount{Type: "tmpfs", Source: "tmpfs", Attr: Attr{Set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID}}},
		{"type bind", specs.Mount{Destination: "/data", Type: "bind", Source: "/srv"},
			Mount{Source: "/srv", Bind: true}},
		{"relative source", specs.Mount{Destination: "/data", Source: "vol", Options: []string{"bind"}},
			Mount{Source: "/bundle/vol", Bind: true}},
		{"propagation", specs.Mount{Destination: "/data", Source: "/srv", Options: []string{"rbind", "rshared", "slave", "private", "runbindable", "rprivate", "shared", "rslave", "unbindable"}},
			Mount{Source: "/srv", Bind: true, Recursive: true, Propagation: []uint64{
				unix.MS_SHARED | unix.MS_REC, unix.MS_SLAVE, unix.MS_PRIVATE, unix.MS_UNBINDABLE | unix.MS_REC,
				unix.MS_PRIVATE | unix.MS_REC, unix.MS_SHARED, unix.MS_SLAVE | unix.MS_REC, unix.MS_UNBINDABLE}}},
		{"idmap with mappings", specs.Mount{Destination: "/data", Source: "/srv", Options: []string{"rbind", "ridmap"},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}, GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}},
			Mount{Source: "/srv", Bind: true, Recursive: true, IDMap: &IDMap{Recursive: true,
				UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}, GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}}}},
		{"clean destination", specs.Mount{Destination: "/a/../b//c/", Type: "tmpfs"},
			Mount{Type: "tmpfs", Source: "tmpfs"}},
		{"proc allow-list", specs.Mount{Destination: "/proc/net/dev", Source: "/var/lib/lxcfs/proc/net/dev", Options: []string{"bind"}},
			Mount{Source: "/var/lib/lxcfs/proc/net/dev", Bind: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Plan(specWith(tt.m), Options{BundleDir: "/bundle"})
			if err != nil {
				t.Fatal(err)
			}
			got := p.Mounts[1]
			want := tt.want
			want.Field = "mounts[1]"
			want.Destination = strings.TrimSuffix(strings.ReplaceAll(strings.ReplaceAll(tt.m.Destination, "/a/../", "/"), "//", "/"), "/")
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			// The plan must survive the trip to the child.
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var back RootfsPlan
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Mounts, p.Mounts) || back.String() != p.String() {
				t.Errorf("JSON round trip changed the plan:\n%s\n%s", p, &back)
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		name  string
		spec  *specs.Spec
		opts  Options
		field string
		is    error
		msg   string
	}{
		{"no root", &specs.Spec{}, Options{}, "root.path", ErrInvalid, "missing"},
		{"relative root without bundle", &specs.Spec{Root: &specs.Root{Path: "rootfs"}}, Options{}, "root.path", ErrInvalid, "relative"},
		{"host root", &specs.Spec{Root: &specs.Root{Path: "/"}}, Options{}, "root.path", ErrInvalid, "host root"},
		{"relative destination", specWith(specs.Mount{Destination: "tmp", Type: "tmpfs"}), Options{}, "mounts[1]", ErrInvalid, "absolute"},
		{"destination /", specWith(specs.Mount{Destination: "/..", Type: "tmpfs"}), Options{}, "mounts[1]", ErrInvalid, "whole root"},
		{"no type", specWith(specs.Mount{Destination: "/x", Source: "x"}), Options{}, "mounts[1]", ErrInvalid, "no filesystem type"},
		{"bad type", specWith(specs.Mount{Destination: "/x", Type: "a,b"}), Options{}, "mounts[1]", ErrInvalid, "filesystem type"},
		{"bind without source", specWith(specs.Mount{Destination: "/x", Options: []string{"bind"}}), Options{}, "mounts[1]", ErrInvalid, "needs a source"},
		{"relative bind without bundle", specWith(specs.Mount{Destination: "/x", Source: "v", Options: []string{"bind"}}), Options{}, "mounts[1]", ErrInvalid, "relative bind source"},
		{"data on bind", specWith(specs.Mount{Destination: "/x", Source: "/v", Options: []string{"bind", "mode=755"}}), Options{}, "mounts[1]", ErrUnsupported, `"mode=755"`},
		{"sync on bind", specWith(specs.Mount{Destination: "/x", Source: "/v", Options: []string{"bind", "sync"}}), Options{}, "mounts[1]", ErrUnsupported, `"sync"`},
		{"remount", specWith(specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"remount"}}), Options{}, "mounts[1]", ErrInvalid, "remount"},
		{"mand", specWith(specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"mand"}}), Options{}, "mounts[1]", ErrUnsupported, "mand"},
		{"iversion", specWith(specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"iversion"}}), Options{}, "mounts[1]", ErrUnsupported, "iversion"},
		{"fstab only", specWith(specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"noauto"}}), Options{}, "mounts[1]", ErrUnsupported, "fstab"},
		{"x- option", specWith(specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"x-systemd.automount"}}), Options{}, "mounts[1]", ErrUnsupported, "fstab"},
		{"crun extension", specWith(specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"tmpcopyup"}}), Options{}, "mounts[1]", ErrUnsupported, "crun"},
		{"empty option", specWith(specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{""}}), Options{}, "mounts[1]", ErrInvalid, "empty option"},
		{"empty key", specWith(specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"=1"}}), Options{}, "mounts[1]", ErrInvalid, "empty key"},
		{"idmap on tmpfs", specWith(specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"idmap"}}), Options{UserNamespace: true}, "mounts[1]", ErrUnsupported, "bind"},
		{"idmap without userns", specWith(specs.Mount{Destination: "/x", Source: "/v", Options: []string{"bind", "idmap"}}), Options{}, "mounts[1]", ErrInvalid, "user namespace"},
		{"mappings without idmap", specWith(specs.Mount{Destination: "/x", Source: "/v", Options: []string{"bind"}, UIDMappings: []specs.LinuxIDMapping{{Size: 1}}}), Options{}, "mounts[1]", ErrInvalid, "without the idmap"},
		{"half mappings", specWith(specs.Mount{Destination: "/x", Source: "/v", Options: []string{"bind", "idmap"}, UIDMappings: []specs.LinuxIDMapping{{Size: 1}}}), Options{}, "mounts[1]", ErrInvalid, "both"},
		{"tmpfs on /proc", specWith(specs.Mount{Destination: "/proc", Type: "tmpfs"}), Options{}, "mounts[1]", ErrUnsafe, "/proc"},
		{"tmpfs in /proc", specWith(specs.Mount{Destination: "/proc/sys", Type: "tmpfs"}), Options{}, "mounts[1]", ErrUnsafe, "/proc"},
		{"bind not on the list", specWith(specs.Mount{Destination: "/proc/sysrq-trigger", Source: "/x", Options: []string{"bind"}}), Options{}, "mounts[1]", ErrUnsafe, "allow"},
		{"bind sneaking into /proc", specWith(specs.Mount{Destination: "/x/../proc/kcore", Source: "/x", Options: []string{"bind"}}), Options{}, "mounts[1]", ErrUnsafe, "allow"},
		{"propagation", &specs.Spec{Root: &specs.Root{Path: "/r"}, Linux: &specs.Linux{RootfsPropagation: "everywhere"}}, Options{}, "linux.rootfsPropagation", ErrInvalid, "everywhere"},
		{"masked relative", &specs.Spec{Root: &specs.Root{Path: "/r"}, Linux: &specs.Linux{MaskedPaths: []string{"/ok", "proc/kcore"}}}, Options{}, "linux.maskedPaths[1]", ErrInvalid, "absolute"},
		{"readonly root", &specs.Spec{Root: &specs.Root{Path: "/r"}, Linux: &specs.Linux{ReadonlyPaths: []string{"/"}}}, Options{}, "linux.readonlyPaths[0]", ErrInvalid, "whole root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Plan(tt.spec, tt.opts)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.Field != tt.field || !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q (field %q), want field %q, %v, containing %q", err, e.Field, tt.field, tt.is, tt.msg)
			}
		})
	}
}

func TestPlanDev(t *testing.T) {
	dests := func(p *RootfsPlan) []string {
		var out []string
		for _, m := range p.Mounts {
			out = append(out, m.Field+":"+m.Destination)
		}
		return out
	}
	tests := []struct {
		name    string
		mounts  []specs.Mount
		private bool
		want    []string
	}{
		{"no /dev in the spec", []specs.Mount{{Destination: "/proc", Type: "proc"}},
			true, []string{"libjail:/dev", "libjail:/dev/pts", "libjail:/dev/shm", "mounts[0]:/proc"}},
		{"spec's own /dev tmpfs", []specs.Mount{{Destination: "/proc", Type: "proc"}, {Destination: "/dev", Type: "tmpfs"}, {Destination: "/dev/shm", Type: "tmpfs"}},
			true, []string{"mounts[0]:/proc", "mounts[1]:/dev", "libjail:/dev/pts", "mounts[2]:/dev/shm"}},
		{"/dev bound", []specs.Mount{{Destination: "/dev", Source: "/dev", Options: []string{"rbind"}}},
			false, []string{"mounts[0]:/dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Plan(&specs.Spec{Root: &specs.Root{Path: "/r"}, Mounts: tt.mounts}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if p.PrivateDev() != tt.private || !reflect.DeepEqual(dests(p), tt.want) {
				t.Errorf("private %v, mounts %q; want %v, %q", p.PrivateDev(), dests(p), tt.private, tt.want)
			}
		})
	}
	p, _ := Plan(&specs.Spec{Root: &specs.Root{Path: "/r"}}, Options{UserNamespace: true})
	for _, d := range p.Mounts[1].Data {
		if d.Key == "gid" {
			t.Errorf("devpts in a user namespace gets %v; gid 5 may not be mapped", d)
		}
	}
}

func TestPlanString(t *testing.T) {
	p, err := Plan(&specs.Spec{
		Root:   &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{{Destination: "/data", Source: "/srv", Options: []string{"rbind", "rro", "nosuid", "rslave"}}},
		Linux:  &specs.Linux{RootfsPropagation: "rprivate", MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"}},
	}, Options{BundleDir: "/b"})
	if err != nil {
		t.Fatal(err)
	}
	want := `root /b/rootfs ro propagation=rprivate
libjail: tmpfs tmpfs on /dev (nosuid,strictatime,mode=755,size=65536k)
libjail: devpts devpts on /dev/pts (nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5)
libjail: tmpfs shm on /dev/shm (nosuid,nodev,noexec,mode=1777,size=65536k)
mounts[0]: rbind /srv on /data (nosuid,rro,rslave)
dev: private tmpfs, symlinks fd stdin stdout stderr ptmx
mask /proc/kcore
readonly /proc/sys
`
	if got := p.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if p.Rootfs() != "/b/rootfs" {
		t.Errorf("Rootfs() = %q", p.Rootfs())
	}
}

// BenchmarkPlan plans the mounts of a spec like the ones container engines send.
func BenchmarkPlan(b *testing.B) {
	spec := &specs.Spec{
		Root: &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/etc/hosts", Source: "/var/lib/c/hosts", Options: []string{"rbind", "rprivate"}},
		},
		Linux: &specs.Linux{
			MaskedPaths:   []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Plan(spec, Options{BundleDir: "/run/bundle"}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPlanMountLabel(t *testing.T) {
	const label = "system_u:object_r:container_file_t:s0:c1,c2"
	spec := &specs.Spec{
		Root: &specs.Root{Path: "/r"},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc"},
			{Destination: "/tmp", Type: "tmpfs", Options: []string{"size=1m"}},
			{Destination: "/data", Source: "/srv", Options: []string{"bind"}},
		},
		Linux: &specs.Linux{MountLabel: label},
	}
	p, err := Plan(spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range p.Mounts {
		for _, d := range m.Data {
			if d.Key == "context" {
				got[m.Destination] = d.Value
			}
		}
	}
	want := map[string]string{"/dev": label, "/dev/pts": label, "/dev/shm": label, "/tmp": label}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("contexts %v, want %v", got, want)
	}
	spec.Mounts[1].Options = append(spec.Mounts[1].Options, "context=x")
	if _, err := Plan(spec, Options{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "mounts[1]") {
		t.Errorf("context= and mountLabel: %v", err)
	}
}
