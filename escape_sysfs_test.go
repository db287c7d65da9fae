package libjail

import (
	"os"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/testutil"
)

// defaultCaps is the usual container default (as `runc spec` writes it): root, but without
// CAP_SYS_ADMIN, which could simply remount or unmount what the spec protects.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// sameValue returns what writing back leaves unchanged: a file's current value (the bracketed
// choice of a sysfs selector), so an attack that gets through changes nothing on this host.
func sameValue(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	s := strings.TrimSpace(string(b))
	if m := regexp.MustCompile(`\[(\w+)\]`).FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return s
}

// TestEscapeSysfsProcWrites: a root container with the default capabilities and no seccomp, whose
// spec mounts /sys read-only, masks /proc/kcore, /proc/keys and /sys/firmware and makes /proc/sys
// and /proc/sysrq-trigger read-only, writes kernel settings through /sys and /proc/sys (their
// current values, so nothing changes if a write gets through), opens sysrq-trigger, and tries to
// remount or unmount the protections. Every write must fail, and the host values stay.
//
// With CAP_SYS_ADMIN the container owns its mount namespace and can remount or unmount all of
// this: read-only and masked paths are not a boundary against it (the last subtest records it).
func TestEscapeSysfsProcWrites(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := escapeRootfs(t)
	const thp, ratelimit = "/sys/kernel/mm/transparent_hugepage/enabled", "/proc/sys/kernel/printk_ratelimit"
	thpVal, rlVal := sameValue(t, thp), sameValue(t, ratelimit)
	ops := []string{
		"write", thp, thpVal, "write", ratelimit, rlVal, "openw", "/proc/sysrq-trigger",
		"read", "/proc/kcore", "read", "/proc/keys", "open", "/sys/firmware/acpi",
		"remount-rw", "/sys", "remount-rw", "/proc/sys", "umount", "/proc/keys", "umount", "/sys/firmware",
		"read", "/proc/keys",
	}
	protect := func(spec *specs.Spec, caps []string) *specs.Spec {
		spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
		spec.Linux.MaskedPaths = []string{"/proc/kcore", "/proc/keys", "/sys/firmware"}
		spec.Linux.ReadonlyPaths = []string{"/proc/sys", "/proc/sysrq-trigger"}
		return spec
	}

	res := mustAttack(t, protect(attackSpec(t, rootfs, ops...), defaultCaps), Options{})
	assert.Equal(t, "open EROFS", res["write "+thp], "ESCAPE: wrote sysfs")
	assert.Equal(t, "open EROFS", res["write "+ratelimit], "ESCAPE: wrote /proc/sys")
	assert.NotEqual(t, "ok", res["openw /proc/sysrq-trigger"], "ESCAPE: opened sysrq-trigger for writing") // ENOENT where the kernel has none
	assert.Equal(t, "content:", res["read /proc/keys"], "ESCAPE: /proc/keys readable")
	assert.NotContains(t, res["read /proc/kcore"], "content:E", "ESCAPE: /proc/kcore readable")
	assert.NotEqual(t, "ok", res["open /sys/firmware/acpi"], "ESCAPE: /sys/firmware not masked")
	for _, k := range []string{"remount-rw /sys", "remount-rw /proc/sys", "umount /proc/keys", "umount /sys/firmware"} {
		assert.Equal(t, "EPERM", res[k], "ESCAPE: %s", k)
	}
	assert.Equal(t, thpVal, sameValue(t, thp))
	assert.Equal(t, rlVal, sameValue(t, ratelimit))

	t.Run("every capability (not defended)", func(t *testing.T) {
		// Only what cannot change the host: remount and unmount, then read the masked file.
		res, err := attack(t, protect(attackSpec(t, rootfs, "remount-rw", "/sys", "umount", "/proc/keys", "read", "/proc/keys"), allCaps(t)), Options{})
		t.Logf("with CAP_SYS_ADMIN (not a defended configuration): err %v, saw %v", err, res)
	})
}
