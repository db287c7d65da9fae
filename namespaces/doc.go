// Package namespaces owns Linux.Namespaces, Linux.UIDMappings, Linux.GIDMappings and
// Linux.TimeOffsets of the OCI runtime spec.
package namespaces
