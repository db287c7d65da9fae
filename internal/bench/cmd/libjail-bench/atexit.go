package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// atExit holds the cleanups of what this process created, run by the deferred normal path and
// by an interrupt (SIGINT, SIGTERM, SIGHUP) alike, each once.
var atExit struct {
	sync.Mutex
	fs []func()
}

// onExit registers f and returns the function that runs it (once); callers defer that.
func onExit(f func()) func() {
	once := sync.OnceFunc(f)
	atExit.Lock()
	atExit.fs = append(atExit.fs, once)
	atExit.Unlock()
	return once
}

func runAtExit() {
	atExit.Lock()
	fs := atExit.fs
	atExit.fs = nil
	atExit.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// handleSignals makes an interrupted benchmark remove what it created before it exits.
func handleSignals() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-ch
		runAtExit()
		os.Exit(128 + int(s.(syscall.Signal)))
	}()
}
