package capabilities

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var dockerDefault = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

func TestPlan(t *testing.T) {
	const last = capability.CAP_CHECKPOINT_RESTORE
	c := func(cs ...capability.Cap) []capability.Cap { return append([]capability.Cap{}, cs...) }
	empty := Set{c(), c(), c(), c(), c()}
	for _, tc := range []struct {
		name     string
		spec     *specs.LinuxCapabilities
		last     capability.Cap
		want     Set
		warnings []string // substrings, one per expected warning
		err      error
	}{
		{name: "nil section: nothing", spec: nil, want: empty},
		{name: "empty section: nothing", spec: &specs.LinuxCapabilities{}, want: empty},
		{
			name: "sorted and deduplicated",
			spec: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_KILL", "CAP_CHOWN", "CAP_KILL"},
				Effective: []string{"CAP_KILL"},
				Permitted: []string{"CAP_KILL", "CAP_CHOWN"},
			},
			want: Set{
				Bounding:    c(capability.CAP_CHOWN, capability.CAP_KILL),
				Effective:   c(capability.CAP_KILL),
				Permitted:   c(capability.CAP_CHOWN, capability.CAP_KILL),
				Inheritable: c(), Ambient: c(),
			},
		},
		{
			name: "ambient",
			spec: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"},
				Effective:   []string{"CAP_NET_BIND_SERVICE"},
				Permitted:   []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"},
				Inheritable: []string{"CAP_NET_BIND_SERVICE"},
				Ambient:     []string{"CAP_NET_BIND_SERVICE"},
			},
			want: Set{
				Bounding:    c(capability.CAP_NET_BIND_SERVICE, capability.CAP_NET_RAW),
				Effective:   c(capability.CAP_NET_BIND_SERVICE),
				Permitted:   c(capability.CAP_NET_BIND_SERVICE, capability.CAP_NET_RAW),
				Inheritable: c(capability.CAP_NET_BIND_SERVICE),
				Ambient:     c(capability.CAP_NET_BIND_SERVICE),
			},
		},
		{
			name: "unknown names are warnings",
			spec: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_KILL", "CAP_FLY", "cap_chown"},
				Permitted: []string{"CAP_FLY"},
			},
			want:     Set{Bounding: c(capability.CAP_KILL), Effective: c(), Permitted: c(), Inheritable: c(), Ambient: c()},
			warnings: []string{"field=process.capabilities.bounding name=CAP_FLY", "name=cap_chown", "field=process.capabilities.permitted name=CAP_FLY"},
		},
		{
			name:     "beyond this kernel's last cap is a warning",
			spec:     &specs.LinuxCapabilities{Bounding: []string{"CAP_BPF", "CAP_CHECKPOINT_RESTORE", "CAP_KILL"}},
			last:     capability.CAP_PERFMON,
			want:     Set{Bounding: c(capability.CAP_KILL), Effective: c(), Permitted: c(), Inheritable: c(), Ambient: c()},
			warnings: []string{"not supported by this kernel", "not supported by this kernel"},
		},
		{
			name:     "every name unknown",
			spec:     &specs.LinuxCapabilities{Bounding: []string{"CAP_FLY", "kill"}, Ambient: []string{"CAP_BPF"}},
			last:     capability.CAP_PERFMON,
			err:      ErrUnknown,
			warnings: []string{"CAP_FLY", "kill", "CAP_BPF"},
		},
		{
			name:     "every name unknown, repeated across sets",
			spec:     &specs.LinuxCapabilities{Bounding: []string{"CAP_FLY"}, Permitted: []string{"CAP_FLY"}},
			err:      ErrUnknown,
			warnings: []string{"CAP_FLY", "CAP_FLY"},
		},
		{
			name: "effective outside permitted",
			spec: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}},
			err:  ErrInvalid,
		},
		{
			name: "ambient outside inheritable",
			spec: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"}},
			err:  ErrInvalid,
		},
		{
			name: "inheritable outside bounding",
			spec: &specs.LinuxCapabilities{Inheritable: []string{"CAP_KILL"}},
			err:  ErrInvalid,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logged bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logged, nil))
			l := tc.last
			if l == 0 {
				l = last
			}
			got, err := plan(tc.spec, log, l)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
			if logged.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tc.warnings) {
				t.Fatalf("%d warnings, want %d:\n%s", len(lines), len(tc.warnings), logged.String())
			}
			for i, w := range tc.warnings {
				if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], w) {
					t.Errorf("warning %d: %q, want it to contain %q", i, lines[i], w)
				}
			}
			if err != nil {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestPlanErrorsNameFields(t *testing.T) {
	_, err := plan(&specs.LinuxCapabilities{Bounding: []string{"CAP_FLY", "CAP_SWIM"}}, nil, capability.CAP_CHECKPOINT_RESTORE)
	if err == nil || !strings.Contains(err.Error(), "process.capabilities") || !strings.Contains(err.Error(), "CAP_FLY, CAP_SWIM") {
		t.Fatalf("err %v: want it to name the field and list the names", err)
	}
	_, err = plan(&specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_CHOWN"},
		Permitted: []string{"CAP_CHOWN"}, Effective: []string{"CAP_KILL", "CAP_CHOWN", "CAP_SYS_ADMIN"}}, nil, capability.CAP_CHECKPOINT_RESTORE)
	if want := "process.capabilities.effective: invalid capability sets: CAP_KILL, CAP_SYS_ADMIN not in permitted"; err == nil || err.Error() != want {
		t.Fatalf("err %v, want %q", err, want)
	}
}

func TestSetStringJSON(t *testing.T) {
	s, err := plan(&specs.LinuxCapabilities{Bounding: dockerDefault, Permitted: []string{"CAP_KILL", "CAP_CHOWN"},
		Effective: []string{"CAP_KILL"}}, nil, capability.CAP_CHECKPOINT_RESTORE)
	if err != nil {
		t.Fatal(err)
	}
	want := "bounding=chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,net_bind_service,net_raw,sys_chroot,mknod,audit_write,setfcap" +
		" effective=kill permitted=chown,kill inheritable=none ambient=none"
	if s.String() != want {
		t.Fatalf("String() =\n%s\nwant\n%s", s, want)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"bounding":[0,1,3,4,5,6,7,8,10,13,18,27,29,31],"effective":[5],"permitted":[0,5],"inheritable":[],"ambient":[]}`; string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	var back Set
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("JSON round trip: %s, %v", back, err)
	}
	inh, prm, eff, bnd, amb := s.Masks()
	if inh != 0 || prm != 1<<0|1<<5 || eff != 1<<5 || bnd != 0xa80425fb || amb != 0 {
		t.Fatalf("Masks() = %x %x %x %x %x", inh, prm, eff, bnd, amb)
	}
}

func TestPlanKernel(t *testing.T) {
	// Plan reads the running kernel's last capability: every name the library knows up to it works.
	var all []string
	supported, err := capability.ListSupported()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range supported {
		all = append(all, Name(c))
	}
	s, err := Plan(&specs.LinuxCapabilities{Bounding: all, Permitted: all, Effective: all}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Bounding) != len(supported) || len(s.Effective) != len(supported) {
		t.Fatalf("planned %s from %d names", s, len(all))
	}
}
