package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// local runs commands on this machine with os/exec and writes files to the local
// filesystem. It is the transport for a worker that is the machine hermesctl runs on,
// and the reference the SSH transport is tested against.
type local struct {
	name   string
	st     counters
	closed atomic.Bool
}

// NewLocal returns a Transport for the local machine, named name in errors. Commands
// are executed directly (argv, no shell).
func NewLocal(name string) Transport { return &local{name: name} }

// waitDelay bounds how long a local command's I/O may outlive the command (a background
// child holding its stdout, a stdin reader that never returns).
const waitDelay = 2 * time.Second

func (l *local) Name() string { return l.name }
func (l *local) Stats() Stats { return l.st.snapshot() }
func (l *local) Close() error { l.closed.Store(true); return nil }
func (l *local) errorf(op string, err error) error {
	return fmt.Errorf("worker %s: %s: %w", l.name, op, err)
}

func (l *local) check(op string, argv []string) error {
	if l.closed.Load() {
		return l.errorf(op, ErrClosed)
	}
	if len(argv) == 0 || argv[0] == "" {
		return l.errorf(op, errors.New("empty argv"))
	}
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return l.errorf(op, fmt.Errorf("argument %d contains a NUL byte", i))
		}
	}
	return nil
}

func (l *local) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	op := opName("run", argv)
	if err := l.check(op, argv); err != nil {
		return err
	}
	l.st.roundTrips.Add(1)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = countingReader{stdin, &l.st.sent}
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	t := newTail(stderrTail)
	cmd.Stdout = countingWriter{stdout, &l.st.received}
	cmd.Stderr = countingWriter{io.MultiWriter(stderr, t), &l.st.received}
	cmd.WaitDelay = waitDelay
	return l.result(ctx, op, cmd.Run(), t)
}

func (l *local) Interactive(ctx context.Context, argv []string, in io.Reader, out io.Writer, term string, rows, cols int) error {
	op := opName("interactive", argv)
	if err := l.check(op, argv); err != nil {
		return err
	}
	l.st.roundTrips.Add(1)
	term, rows, cols = ptyDefaults(term, rows, cols)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// No pseudo-terminal here (no pty package is available): the command gets in and out
	// as they are. A terminal passed as *os.File is inherited directly, so the command
	// still talks to the person's terminal.
	cmd.Stdin = in
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "TERM="+term, "LINES="+strconv.Itoa(rows), "COLUMNS="+strconv.Itoa(cols))
	cmd.WaitDelay = waitDelay
	return l.result(ctx, op, cmd.Run(), nil)
}

// result turns the outcome of a local command into the transport's errors.
func (l *local) result(ctx context.Context, op string, err error, stderr *tail) error {
	if ctxErr := ctx.Err(); ctxErr != nil && err != nil {
		return l.errorf(op, ctxErr)
	}
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		// ErrWaitDelay: the command exited 0 but something kept its I/O open past
		// waitDelay; the command itself succeeded.
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		x := &ExitError{Code: ee.ExitCode()}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			x.Code = 128 + int(ws.Signal())
			x.Signal = signalName(ws.Signal())
		}
		if stderr != nil {
			x.Stderr = stderr.String()
		}
		return l.errorf(op, x)
	}
	return l.errorf(op, err)
}

// signalName is the name of sig as SSH reports it: "KILL", "TERM".
func signalName(sig syscall.Signal) string {
	for name, s := range sshSignals {
		if s == sig {
			return name
		}
	}
	return strconv.Itoa(int(sig))
}

var sshSignals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE,
	"HUP": syscall.SIGHUP, "ILL": syscall.SIGILL, "INT": syscall.SIGINT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

func (l *local) Upload(ctx context.Context, path string, content io.Reader, mode fs.FileMode, uid, gid int) error {
	op := "upload " + path
	if l.closed.Load() {
		return l.errorf(op, ErrClosed)
	}
	if err := checkUploadPath(path); err != nil {
		return l.errorf(op, err)
	}
	l.st.roundTrips.Add(1)
	if err := l.upload(ctx, filepath.Clean(path), content, fileMode(mode), uid, gid); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return l.errorf(op, ctxErr)
		}
		return l.errorf(op, err)
	}
	return nil
}

func (l *local) upload(ctx context.Context, path string, content io.Reader, mode fs.FileMode, uid, gid int) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// CreateTemp makes the file 0600 with O_EXCL: nobody else can open it while it fills.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".upload-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if content == nil {
		content = eofReader{}
	}
	if _, err := io.Copy(countingWriter{f, &l.st.sent}, sourceReader{ctxReader{ctx, content}}); err != nil {
		return fmt.Errorf("write content: %w", err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if uid != -1 || gid != -1 {
		if err := f.Chown(uid, gid); err != nil { // -1 leaves that id as it is
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// checkUploadPath accepts absolute paths of files (not "/", no trailing slash).
func checkUploadPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is not absolute", p)
	}
	if strings.HasSuffix(p, "/") || strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("path %q does not name a file", p)
	}
	return nil
}

// ptyDefaults fills in a terminal type and size when the caller has none.
func ptyDefaults(term string, rows, cols int) (string, int, int) {
	if term == "" {
		term = "xterm-256color"
	}
	if rows <= 0 {
		rows = 24
	}
	if cols <= 0 {
		cols = 80
	}
	return term, rows, cols
}
