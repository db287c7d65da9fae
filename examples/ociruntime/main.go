package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail"
)

// defaultRoot is where container state lives unless --root says otherwise.
const defaultRoot = "/run/libjail"

// globals are the options given before the command.
type globals struct {
	root   string
	log    *slog.Logger
	logOut io.Closer // the --log file, when one was opened
	toFile bool      // errors go to a log file besides stderr
}

// commands are the subcommands; each parses its own flags from args.
var commands = map[string]func(g *globals, args []string) error{
	"create": cmdCreate, "start": cmdStart, "state": cmdState, "kill": cmdKill, "delete": cmdDelete,
	"run": cmdRun, "exec": cmdExec, "ps": cmdPs, "pause": cmdPause, "resume": cmdResume,
	"update": cmdUpdate, "features": cmdFeatures, "list": cmdList,
}

// usages are the commands' synopses, in the order help lists them.
var usages = []struct{ name, text string }{
	{"create", "create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] ID"},
	{"start", "start ID"},
	{"state", "state ID"},
	{"kill", "kill [--all] ID [SIGNAL]"},
	{"delete", "delete [--force] ID"},
	{"run", "run [--bundle DIR] [--pid-file FILE] [--detach] [--keep] [--no-pivot] ID"},
	{"exec", "exec [--process FILE] [--detach] [--pid-file FILE] [--cwd DIR] [--env K=V] [--user UID[:GID]] ID [CMD ARGS...]"},
	{"ps", "ps [--format table|json] ID [PS ARGS...]"},
	{"pause", "pause ID"},
	{"resume", "resume ID"},
	{"update", "update [--resources FILE|-] [--memory N] [--pids-limit N] [--cpu-quota N] ... ID"},
	{"features", "features"},
	{"list", "list [--format table|json] [--quiet]"},
}

func usageOf(name string) string {
	for _, u := range usages {
		if u.name == name {
			return u.text
		}
	}
	return name
}

// exitError carries a process's exit status out of run or exec: it is not an error to report.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	libjail.Init() // first thing: in a container's child this never returns
	os.Exit(mainExit(os.Args[1:]))
}

func mainExit(args []string) int {
	fs := flag.NewFlagSet("ociruntime", flag.ContinueOnError)
	fs.Usage = func() { usage(fs.Output()) }
	root := fs.String("root", defaultRoot, "directory of container state")
	logPath := fs.String("log", "", "log file (default: stderr)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	debug := fs.Bool("debug", false, "log debug messages")
	// Accepted for compatibility with runc's callers; they change nothing here.
	fs.Bool("systemd-cgroup", false, "not supported: refused when set")
	fs.String("rootless", "auto", "ignored")
	fs.String("criu", "criu", "ignored")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	g, err := newGlobals(*root, *logPath, *logFormat, *debug)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer g.close()
	if fs.Lookup("systemd-cgroup").Value.String() == "true" {
		return g.fail(errors.New("--systemd-cgroup is not supported"))
	}
	if fs.NArg() == 0 {
		usage(os.Stderr)
		return 1
	}
	name := fs.Arg(0)
	run, ok := commands[name]
	if !ok {
		return g.fail(fmt.Errorf("unknown command %q", name))
	}
	g.log.Debug("command", "name", name, "args", fs.Args()[1:])
	err = run(g, fs.Args()[1:])
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return g.fail(err)
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ociruntime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND ...")
	for _, u := range usages {
		fmt.Fprintln(w, "  "+u.text)
	}
}

func newGlobals(root, logPath, format string, debug bool) (*globals, error) {
	g := &globals{root: root}
	var w io.Writer = os.Stderr
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--log: %w", err)
		}
		w, g.logOut, g.toFile = f, f, true
	}
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: logrusLevels}
	switch format {
	case "text":
		g.log = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		g.log = slog.New(slog.NewJSONHandler(w, opts))
	default:
		g.close()
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return g, nil
}

// logrusLevels writes levels in lower case ("error", "warning"), as the logs of runc that callers
// such as containerd parse.
func logrusLevels(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		lvl := strings.ToLower(a.Value.String())
		if lvl == "warn" {
			lvl = "warning"
		}
		a.Value = slog.StringValue(lvl)
	}
	return a
}

func (g *globals) close() {
	if g.logOut != nil {
		g.logOut.Close()
	}
}

// fail reports err to the log and, when the log is a file, to stderr too; the exit status is 1.
func (g *globals) fail(err error) int {
	if g.toFile {
		g.log.Error(err.Error())
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// flags makes a command's flag set; errors are returned, not printed twice.
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses a command's flags and checks its count of positional arguments (max < 0: any).
func parse(fs *flag.FlagSet, args []string, min, max int) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w (usage: %s)", fs.Name(), err, usageOf(fs.Name()))
	}
	if n := fs.NArg(); n < min || (max >= 0 && n > max) {
		return fmt.Errorf("%s: wrong number of arguments (usage: %s)", fs.Name(), usageOf(fs.Name()))
	}
	return nil
}

// alias registers a second (short) name for a flag already defined.
func alias(fs *flag.FlagSet, short, long string) {
	f := fs.Lookup(long)
	fs.Var(f.Value, short, "alias of --"+long)
}
