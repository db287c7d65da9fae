// Package syncpipe is the typed protocol between a container's parent (the agent) and its child
// (the container's init before execve).
package syncpipe
