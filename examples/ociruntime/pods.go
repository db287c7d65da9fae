package main

import (
	"context"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail"
)

// podsDir is the directory under the root that holds the pod records.
const podsDir = "pods"

// newContainer plans and creates a container.
func newContainer(g *globals, id string, spec *specs.Spec, opts libjail.Options) (*libjail.Container, error) {
	c, err := libjail.New(id, spec, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Create(context.Background()); err != nil {
		return nil, err
	}
	return c, nil
}

// leavePod drops a destroyed container from its pod.
func leavePod(g *globals, id string, spec *specs.Spec) error { return nil }
