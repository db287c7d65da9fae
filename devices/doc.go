// Package devices owns Linux.Devices (device nodes) and Linux.Resources.Devices (device rules) of
// the OCI runtime spec.
package devices
