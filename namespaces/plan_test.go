package namespaces

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestPlanErrors(t *testing.T) {
	regular := filepath.Join(t.TempDir(), "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	ns := func(typ, path string) specs.LinuxNamespace {
		return specs.LinuxNamespace{Type: specs.LinuxNamespaceType(typ), Path: path}
	}
	one := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
	withMaps := func(s *specs.Spec, u, g []specs.LinuxIDMapping) *specs.Spec {
		s.Linux.UIDMappings, s.Linux.GIDMappings = u, g
		return s
	}
	linux := func(n ...specs.LinuxNamespace) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Namespaces: n}}
	}
	tests := []struct {
		name  string
		spec  *specs.Spec
		field string
		err   error
	}{
		{"unknown type", linux(ns("pid", ""), ns("pidx", "")), "linux.namespaces[1].type", ErrUnknownType},
		{"empty type", linux(ns("", "")), "linux.namespaces[0].type", ErrUnknownType},
		{"duplicate", linux(ns("net", ""), ns("network", ""), ns("network", "")), "linux.namespaces[0].type", ErrUnknownType},
		{"duplicate type", linux(ns("network", ""), ns("ipc", ""), ns("network", "/proc/self/ns/net")), "linux.namespaces[2].type", ErrDuplicate},
		{"relative path", linux(ns("network", "proc/self/ns/net")), "linux.namespaces[0].path", ErrNotNamespace},
		{"missing path", linux(ns("network", "/nonexistent/libjail")), "linux.namespaces[0].path", os.ErrNotExist},
		{"regular file", linux(ns("network", regular)), "linux.namespaces[0].path", ErrNotNamespace},
		{"proc file", linux(ns("uts", "/proc/self/status")), "linux.namespaces[0].path", ErrNotNamespace},
		{"fifo (must not block)", linux(ns("uts", fifo)), "linux.namespaces[0].path", ErrNotNamespace},
		{"device", linux(ns("uts", "/dev/null")), "linux.namespaces[0].path", ErrNotNamespace},
		{"directory", linux(ns("uts", "/proc/self/ns")), "linux.namespaces[0].path", ErrNotNamespace},
		{"wrong type", linux(ns("ipc", "/proc/self/ns/net")), "linux.namespaces[0].path", ErrWrongType},
		{"wrong type by name", linux(ns("mount", "/proc/self/ns/pid")), "linux.namespaces[0].path", ErrWrongType},
		{"uid mappings without user ns", withMaps(linux(ns("pid", "")), one, nil), "linux.uidMappings", ErrNoUserNS},
		{"gid mappings without user ns", withMaps(linux(ns("pid", "")), nil, one), "linux.gidMappings", ErrNoUserNS},
		{"mappings with joined user ns", withMaps(linux(ns("user", "/proc/self/ns/user")), one, one), "linux.uidMappings", ErrNoUserNS},
		{"user ns without uid mappings", withMaps(linux(ns("user", "")), nil, one), "linux.uidMappings", ErrNoMappings},
		{"user ns without gid mappings", withMaps(linux(ns("user", "")), one, nil), "linux.gidMappings", ErrNoMappings},
		{"zero size", withMaps(linux(ns("user", "")), []specs.LinuxIDMapping{{HostID: 1}}, one), "linux.uidMappings[0].size", ErrMappings},
		{"overlap inside", withMaps(linux(ns("user", "")), one,
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}, {ContainerID: 5, HostID: 5000, Size: 10}}), "linux.gidMappings", ErrMappings},
		{"overlap on host", withMaps(linux(ns("user", "")),
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}, {ContainerID: 100, HostID: 1005, Size: 10}}, one), "linux.uidMappings", ErrMappings},
		{"beyond 2^32", withMaps(linux(ns("user", "")), []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1 << 31, Size: 1 << 31}, {ContainerID: 1 << 31, HostID: 0, Size: 1}}, one), "linux.uidMappings[0]", ErrMappings},
		{"time offsets without time ns", &specs.Spec{Linux: &specs.Linux{TimeOffsets: map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1}}}}, "linux.timeOffsets", ErrTimeOffsets},
		{"time offsets with joined time ns", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{ns("time", "/proc/self/ns/time")},
			TimeOffsets: map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1}}}}, "linux.timeOffsets", ErrTimeOffsets},
		{"unknown clock", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{ns("time", "")},
			TimeOffsets: map[string]specs.LinuxTimeOffset{"realtime": {Secs: 1}}}}, `linux.timeOffsets["realtime"]`, ErrTimeOffsets},
		{"nanoseconds", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{ns("time", "")},
			TimeOffsets: map[string]specs.LinuxTimeOffset{"monotonic": {Nanosecs: 1e9}}}}, `linux.timeOffsets["monotonic"].nanosecs`, ErrTimeOffsets},
		{"hostname without uts", &specs.Spec{Hostname: "h", Linux: &specs.Linux{}}, "hostname", ErrNeedUTS},
		{"hostname without linux", &specs.Spec{Hostname: "h"}, "hostname", ErrNeedUTS},
		{"hostname with joined uts", &specs.Spec{Hostname: "h", Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{ns("uts", "/proc/self/ns/uts")}}}, "hostname", ErrNeedUTS},
		{"domainname without uts", &specs.Spec{Domainname: "d", Linux: &specs.Linux{}}, "domainname", ErrNeedUTS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Plan(tt.spec)
			if err == nil {
				t.Fatalf("Plan succeeded: %s", p)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("error %q: want field %q", err, tt.field)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %q: want errors.Is %v", err, tt.err)
			}
		})
	}
}

func TestPlanKeepsErrno(t *testing.T) {
	_, err := Plan(&specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "ipc", Path: "/nonexistent"}}}})
	var pe *os.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v does not carry the *os.PathError", err)
	}
}

func TestPlanValid(t *testing.T) {
	spec := &specs.Spec{
		Hostname: "c1",
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: "time"}, {Type: "network", Path: "/proc/self/ns/net"}, {Type: "pid"}, {Type: "user"},
				{Type: "uts"}, {Type: "mount"}, {Type: "ipc", Path: "/proc/self/ns/ipc"}, {Type: "cgroup"},
			},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 1000, Size: 1}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
			TimeOffsets: map[string]specs.LinuxTimeOffset{"boottime": {Secs: -5, Nanosecs: 7}, "monotonic": {Secs: 60}},
		},
	}
	p, err := Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	const want = "user=new mount=new pid=new network=/proc/self/ns/net ipc=/proc/self/ns/ipc uts=new cgroup=new time=new" +
		" uid_map=[0 100000 1000;1000 1000 1] gid_map=[0 100000 65536] timens_offsets=[monotonic 60 0;boottime -5 7]"
	if got := p.String(); got != want {
		t.Errorf("String:\n got %s\nwant %s", got, want)
	}
	for _, typ := range Types {
		if wantNew := typ != Network && typ != IPC; p.Creates(typ) != wantNew {
			t.Errorf("Creates(%s) = %v", typ, !wantNew)
		}
	}
	if p.Path(Network) != "/proc/self/ns/net" || p.Path(PID) != "" {
		t.Errorf("Path: net %q pid %q", p.Path(Network), p.Path(PID))
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back NSPlan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, p) {
		t.Errorf("JSON round trip changed the plan:\n%s\n%s", p, &back)
	}
	if !strings.Contains(string(b), `"type":"network","path":"/proc/self/ns/net"`) {
		t.Errorf("JSON: %s", b)
	}

	empty, err := Plan(&specs.Spec{})
	if err != nil || len(empty.Namespaces) != 0 || empty.String() != "(parent's namespaces)" {
		t.Errorf("empty spec: %v %v", empty, err)
	}
}

func TestPinErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pod")
	one := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
	tests := []struct {
		name  string
		types []Type
		opts  PinOptions
		err   error
	}{
		{"pid in existing user ns", []Type{Network, PID}, PinOptions{UserNS: "/proc/self/ns/user"}, ErrNotPinnable},
		{"unknown", []Type{"net"}, PinOptions{}, ErrUnknownType},
		{"duplicate", []Type{IPC, IPC}, PinOptions{}, ErrDuplicate},
		{"user without mappings", []Type{User, Network}, PinOptions{UIDMappings: one}, ErrNoMappings},
		{"mappings without user", []Type{Network}, PinOptions{UIDMappings: one, GIDMappings: one}, ErrNoUserNS},
		{"user and UserNS", []Type{User}, PinOptions{UIDMappings: one, GIDMappings: one, UserNS: "/proc/self/ns/user"}, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Pin(dir, tt.types, tt.opts); !errors.Is(err, tt.err) {
				t.Errorf("Pin: %v, want %v", err, tt.err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("Pin left %s behind", dir)
			}
		})
	}
}

func TestOwningUserNSNotNamespace(t *testing.T) {
	f, err := OwningUserNS("/proc/self/status")
	if !errors.Is(err, ErrNotNamespace) {
		t.Errorf("OwningUserNS(/proc/self/status) = %v, %v; want ErrNotNamespace", f, err)
	}
}

// FuzzPlan: any spec section, however malformed, gives a plan or an error, never a panic or a hang.
func FuzzPlan(f *testing.F) {
	f.Add([]byte(`{"hostname":"h","linux":{"namespaces":[{"type":"uts"},{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":1,"size":1}],"gidMappings":[{"containerID":0,"hostID":1,"size":1}]}}`))
	f.Add([]byte(`{"linux":{"namespaces":[{"type":"time"}],"timeOffsets":{"boottime":{"secs":-1,"nanosecs":999999999}}}}`))
	f.Add([]byte(`{"linux":{"namespaces":[{"type":"network","path":"/proc/self/ns/net"},{"type":"network"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec specs.Spec
		if json.Unmarshal(data, &spec) != nil {
			return
		}
		if spec.Linux != nil {
			for i := range spec.Linux.Namespaces {
				// Only paths this test controls: the fuzzer must not open arbitrary host files.
				if p := spec.Linux.Namespaces[i].Path; p != "" && !strings.HasPrefix(p, "/proc/self/ns/") {
					spec.Linux.Namespaces[i].Path = "/proc/self/ns/" + filepath.Base(p)
				}
			}
		}
		p, err := Plan(&spec)
		if err == nil {
			_ = p.String()
			if _, err := json.Marshal(p); err != nil {
				t.Fatal(err)
			}
		} else if !errors.As(err, new(*FieldError)) {
			t.Fatalf("error without a field: %v", err)
		}
	})
}
