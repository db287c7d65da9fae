package libjail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// HookKind is one of the spec's six hook lists.
type HookKind string

const (
	HookPrestart        HookKind = "prestart" // deprecated by the spec; run with createRuntime, as runc does
	HookCreateRuntime   HookKind = "createRuntime"
	HookCreateContainer HookKind = "createContainer"
	HookStartContainer  HookKind = "startContainer"
	HookPoststart       HookKind = "poststart"
	HookPoststop        HookKind = "poststop"
)

// HookError is a hook that failed: which list, which entry, and why (its stderr included).
type HookError struct {
	Kind  HookKind
	Index int
	Path  string
	Err   error
}

func (e *HookError) Error() string {
	return fmt.Sprintf("hooks.%s[%d] %s: %v", e.Kind, e.Index, e.Path, e.Err)
}

func (e *HookError) Unwrap() error { return e.Err }

// hookList returns the spec's hooks of one kind.
func hookList(h *specs.Hooks, kind HookKind) []specs.Hook {
	if h == nil {
		return nil
	}
	switch kind {
	case HookPrestart:
		return h.Prestart //nolint:staticcheck // deprecated in the spec, still honoured
	case HookCreateRuntime:
		return h.CreateRuntime
	case HookCreateContainer:
		return h.CreateContainer
	case HookStartContainer:
		return h.StartContainer
	case HookPoststart:
		return h.Poststart
	case HookPoststop:
		return h.Poststop
	}
	return nil
}

// validateHooks checks every hook at plan time: an absolute path and a positive timeout.
func validateHooks(h *specs.Hooks) error {
	for _, kind := range []HookKind{HookPrestart, HookCreateRuntime, HookCreateContainer, HookStartContainer, HookPoststart, HookPoststop} {
		for i, hk := range hookList(h, kind) {
			field := fmt.Sprintf("hooks.%s[%d]", kind, i)
			if hk.Path == "" || hk.Path[0] != '/' {
				return specErr(field+".path", "%q is not absolute", hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				return specErr(field+".timeout", "%d is not positive", *hk.Timeout)
			}
		}
	}
	return nil
}

// runHooks runs hooks in order, each with the state as JSON on stdin and its own timeout; the
// first failure stops the list.
func runHooks(ctx context.Context, kind HookKind, hooks []specs.Hook, state *specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	stateJSON, err := json.Marshal(state)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		if err := runHook(ctx, h, stateJSON); err != nil {
			return &HookError{Kind: kind, Index: i, Path: h.Path, Err: err}
		}
	}
	return nil
}

func runHook(ctx context.Context, h specs.Hook, state []byte) error {
	if h.Timeout != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{} // the hook's env is exactly the spec's, never the agent's
	}
	cmd.Stdin = bytes.NewReader(state)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timeout)", ctx.Err())
		}
		if s := bytes.TrimSpace(stderr.Bytes()); len(s) > 0 {
			return fmt.Errorf("%w: %s", err, s)
		}
		return err
	}
	return nil
}
