package devices

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrVerify marks a cgroup whose devices.list, read back after writing, is not the planned state.
var ErrVerify = errors.New("device cgroup does not hold the planned rules")

// V1Write is one write to a cgroup v1 devices file.
type V1Write struct {
	File string `json:"file"` // "devices.allow" or "devices.deny"
	Line string `json:"line"` // e.g. "c 1:3 rwm"
}

func (w V1Write) String() string { return w.File + " < " + w.Line }

func (w V1Write) rule() Rule {
	r, _ := parseListLine(w.Line)
	r.Allow = w.File == "devices.allow"
	return r
}

// V1Transition returns the shortest list of writes that moves a v1 devices cgroup holding current
// to target (both read from "deny all", see Rule).
//
// Writes that widen come before writes that narrow, so a running process never loses, even for a
// moment, a device it keeps. An 'a' line (which clears every exception at once, and which the kernel
// refuses on a cgroup with children) is written only when the default verdict must change; allowing
// everything from a deny-by-default cgroup is written as "c *:* rwm" and "b *:* rwm" instead, which
// allow the same and also work under a parent that does not allow all. The two changes of default
// that remain cannot be made without a transient: to deny by default from allow (every device is
// denied until the exceptions are back) and to allow by default with denied exceptions from deny
// (everything is allowed until the denials are written).
func V1Transition(current, target []Rule) []V1Write {
	return transition(effective(current), effective(target))
}

func transition(cur, tgt state) []V1Write {
	var widen, narrow []V1Write
	add := func(allow bool, k key, acc access) {
		r := Rule{Type: k.typ, Major: k.major, Minor: k.minor, Access: acc.String(), Allow: allow}
		if allow {
			widen = append(widen, V1Write{"devices.allow", r.line()})
		} else {
			narrow = append(narrow, V1Write{"devices.deny", r.line()})
		}
	}
	switch {
	case tgt.allowsAll() && cur.allowsAll():
		return nil
	case tgt.allowsAll() && !cur.allow:
		for _, typ := range []rune{'c', 'b'} {
			k := key{typ, Wildcard, Wildcard}
			if miss := accAll &^ cur.find(k); miss != 0 {
				add(true, k, miss)
			}
		}
	case tgt.allow != cur.allow:
		reset := V1Write{"devices.deny", "a *:* rwm"}
		if tgt.allow {
			reset.File = "devices.allow"
		}
		out := []V1Write{reset}
		for _, e := range tgt.ex {
			out = append(out, V1Write{map[bool]string{true: "devices.deny", false: "devices.allow"}[tgt.allow],
				Rule{Type: e.typ, Major: e.major, Minor: e.minor, Access: e.acc.String()}.line()})
		}
		return out
	default:
		// Same default: exceptions grant (deny mode) or take away (allow mode) access. Adding to a
		// grant or removing from a denial widens; the opposite narrows.
		for _, e := range tgt.ex {
			if miss := e.acc &^ cur.find(e.key); miss != 0 {
				add(!tgt.allow, e.key, miss)
			}
		}
		for _, e := range cur.ex {
			if extra := e.acc &^ tgt.find(e.key); extra != 0 {
				add(tgt.allow, e.key, extra)
			}
		}
	}
	return append(widen, narrow...)
}

// ApplyV1 moves the v1 devices cgroup at dir to target with the writes of V1Transition from what
// its devices.list holds, then reads devices.list back and fails with ErrVerify unless it holds
// the planned state. A write the kernel refuses (EPERM: the parent does not allow as much; EINVAL:
// an 'a' line on a cgroup with children) fails with its errno.
func ApplyV1(dir string, target []Rule) error {
	if err := validateRules(target); err != nil {
		return err
	}
	cur, err := readV1(dir)
	if err != nil {
		return err
	}
	writes := transition(cur, effective(target))
	if err := writeV1(dir, writes); err != nil {
		return err
	}
	return verifyV1(dir, cur, writes)
}

func writeV1(dir string, writes []V1Write) error {
	for _, w := range writes {
		p := filepath.Join(dir, w.File)
		f, err := os.OpenFile(p, os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("device rules: %w", err)
		}
		_, err = f.WriteString(w.Line)
		f.Close()
		if err != nil {
			return fmt.Errorf("device rules: write %q: %w", w.Line, err)
		}
	}
	return nil
}

// verifyV1 checks devices.list against cur with writes replayed on it. In allow-by-default mode the
// kernel lists only "a *:* rwm", so only the default can be checked there.
func verifyV1(dir string, cur state, writes []V1Write) error {
	want := cur
	want.ex = append([]exception(nil), cur.ex...)
	for _, w := range writes {
		want.apply(w.rule())
	}
	got, err := readV1(dir)
	if err != nil {
		return err
	}
	if want.allow {
		want.ex = nil
	}
	if !got.equal(want) {
		return fmt.Errorf("%s: %w: have %v, want %v", dir, ErrVerify, got, want)
	}
	return nil
}

// readV1 parses dir's devices.list into a state.
func readV1(dir string) (state, error) {
	b, err := os.ReadFile(filepath.Join(dir, "devices.list"))
	if err != nil {
		return state{}, fmt.Errorf("device rules: %w", err)
	}
	return parseList(b)
}

func parseList(b []byte) (state, error) {
	var s state
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		r, err := parseListLine(sc.Text())
		if err != nil {
			return state{}, err
		}
		r.Allow = true
		s.apply(r)
	}
	if err := sc.Err(); err != nil {
		return state{}, fmt.Errorf("devices.list: %w", err)
	}
	return s, nil
}

// parseListLine parses "c 1:3 rwm", "b 8:* r" or "a *:* rwm".
func parseListLine(line string) (Rule, error) {
	bad := fmt.Errorf("devices.list: bad line %q", line)
	f := strings.Fields(line)
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("abc", f[0]) {
		return Rule{}, bad
	}
	mm := strings.Split(f[1], ":")
	if len(mm) != 2 {
		return Rule{}, bad
	}
	r := Rule{Type: rune(f[0][0]), Access: f[2]}
	for i, p := range []*int64{&r.Major, &r.Minor} {
		if mm[i] == "*" {
			*p = Wildcard
			continue
		}
		n, err := strconv.ParseInt(mm[i], 10, 64)
		if err != nil || n < 0 {
			return Rule{}, bad
		}
		*p = n
	}
	if _, err := parseAccess(r.Access); err != nil || r.Access == "" {
		return Rule{}, bad
	}
	return r, nil
}
