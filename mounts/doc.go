// Package mounts owns Root, Mounts, Linux.RootfsPropagation, Linux.MaskedPaths and
// Linux.ReadonlyPaths of the OCI runtime spec, and the switch into the new root.
package mounts
