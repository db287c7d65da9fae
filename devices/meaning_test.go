package devices

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func init() {
	children["opens"] = func() (any, error) {
		if err := waitGate(); err != nil {
			return nil, err
		}
		blk := filepath.Join(os.Getenv("DISK"), "loop0")
		return map[string]string{
			"null r": tryOpen("/dev/null", unix.O_RDONLY), "null w": tryOpen("/dev/null", unix.O_WRONLY),
			"null rw": tryOpen("/dev/null", unix.O_RDWR), "zero r": tryOpen("/dev/zero", unix.O_RDONLY),
			"zero rw": tryOpen("/dev/zero", unix.O_RDWR), "full w": tryOpen("/dev/full", unix.O_WRONLY),
			"kmsg r": tryOpen("/dev/kmsg", unix.O_RDONLY), "tty r": tryOpen("/dev/tty", unix.O_RDONLY),
			"blk r": tryOpen(blk, unix.O_RDONLY), "blk rw": tryOpen(blk, unix.O_RDWR),
		}, nil
	}
}

// The same rules give the same opens on v1 (the kernel's own rule engine) and on v2 (our program).
func TestSameMeaningV1V2(t *testing.T) {
	v1, v2 := v1Root(t), v2Root(t)
	nodes := diskNode(t)
	for _, tc := range []struct {
		name  string
		rules []Rule
	}{
		{"pod defaults", PodDefaultRules()},
		{"allow all but a write bit", r(t, "allow a *:* rwm", "deny c 1:3 w", "deny b 7:* r")},
		{"access split over two grants", r(t, "deny a *:* rwm", "allow c 1:3 r", "allow c 1:* w", "allow b 7:0 r")},
		{"allow mode, exact removal only", r(t, "allow a *:* rwm", "deny c 1:* r", "allow c 1:5 r", "deny c 1:5 rw")},
		{"wildcards", r(t, "deny a *:* rwm", "allow c *:* rwm", "allow b 7:* r")},
		{"wider deny does not narrow", r(t, "deny a *:* rwm", "allow c 1:3 rwm", "deny c *:* rwm")},
		{"partial removal", r(t, "deny a *:* rwm", "allow c 1:3 rwm", "allow c 1:5 rwm", "deny c 1:3 w", "deny c 1:5 r")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1 := mkCgroup(t, v1, "meaning-v1")
			if err := ApplyV1(c1, tc.rules); err != nil {
				t.Fatal(err)
			}
			c2 := mkCgroup(t, v2, "meaning-v2")
			v, err := AttachV2(c2, tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { v.Close() })
			var got1, got2 map[string]string
			if err := jsonUnmarshal(startIn(t, c1, childCmd("opens", "DISK="+nodes)), &got1); err != nil {
				t.Fatal(err)
			}
			if err := jsonUnmarshal(startIn(t, c2, childCmd("opens", "DISK="+nodes)), &got2); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got1, got2) {
				t.Fatalf("v1 %v\nv2 %v", got1, got2)
			}
			t.Logf("%v", got1)
		})
	}
}
