// Package transport runs commands and writes files on a worker, over SSH or on the local
// machine. Everything that touches a worker goes through a Transport.
//
// Commands are argv, never shell lines: the local transport executes them directly, the
// SSH transport sends internal/shellquote.Join(argv) to the remote shell.
//
// # Round trips
//
// Round trips are the cost the reconciler budgets for, so every Transport counts them in
// Stats().RoundTrips with one rule:
//
//   - each Run, Interactive or Upload call counts 1, whatever its outcome (a call
//     rejected before touching the worker, for an empty argv, a NUL byte in argv, a
//     relative upload path or a closed transport, counts 0);
//   - each connection setup counts 1: every attempt to dial, handshake and authenticate
//     a new SSH connection, including the first one, redials after a drop, and attempts
//     that fail.
//
// So N Run calls on a fresh SSH transport count N+1; a Run that finds the connection
// dropped and redials counts 2. Keepalives are not counted (they are background traffic,
// visible in BytesSent/BytesReceived). The local transport never connects, so N calls
// count N.
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
)

// Transport runs commands and writes files on one worker. Implementations are safe for
// concurrent use.
type Transport interface {
	// Run executes argv on the worker (no shell on the local side; over ssh the line is
	// shellquote.Join(argv)), feeding stdin, writing stdout/stderr (nil readers and
	// writers are allowed). A non-zero exit returns an error wrapping *ExitError.
	// Cancelling ctx kills the command and returns an error wrapping ctx.Err().
	Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error

	// Interactive runs argv attached to in and out, for commands that talk to a person
	// (`hermesctl auth login`). Over ssh the command gets a pseudo-terminal of type term
	// and size rows×cols, and its stdout and stderr both go to out. The local transport
	// has no pseudo-terminal: the command runs with in/out as its stdin/stdout/stderr
	// and TERM, LINES and COLUMNS set in its environment.
	Interactive(ctx context.Context, argv []string, in io.Reader, out io.Writer, term string, rows, cols int) error

	// Upload writes content to the absolute path atomically: missing parents are
	// created (0755, owned by the connecting user), the content goes to a temporary
	// file in path's directory (over ssh inside a private temporary directory there,
	// see sshTransport.Upload), which is synced, given mode (and uid/gid unless -1) and
	// renamed over path. A failure, including a content reader that fails midway,
	// leaves any previous file untouched and no temporary file. A nil content writes
	// an empty file.
	Upload(ctx context.Context, path string, content io.Reader, mode fs.FileMode, uid, gid int) error

	// Name is the worker's name, used to start error messages.
	Name() string

	// Stats returns the counters so far (see the package documentation for the
	// round-trip rule).
	Stats() Stats

	// Close releases the connection. Operations after Close fail with ErrClosed.
	Close() error
}

// Stats are a transport's cumulative counters.
type Stats struct {
	RoundTrips    int64 // Run/Interactive/Upload calls plus connection setups
	BytesSent     int64 // bytes written to the network (ssh) or to commands and files (local)
	BytesReceived int64 // bytes read from the network (ssh) or from commands (local)
	Reconnects    int64 // connections dialled again after an established one dropped
}

// ExitError reports a command that ran and exited unsuccessfully.
type ExitError struct {
	Code   int    // exit status; 128+n when killed by signal n, as a shell reports it
	Signal string // the signal's name without "SIG" ("KILL") when killed by one
	Stderr string // the last 4 KiB of the command's standard error
}

func (e *ExitError) Error() string {
	var b strings.Builder
	if e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s (exit status %d)", e.Signal, e.Code)
	} else {
		fmt.Fprintf(&b, "exit status %d", e.Code)
	}
	if line := lastLine(e.Stderr); line != "" {
		b.WriteString(": ")
		b.WriteString(line)
	}
	return b.String()
}

// lastLine returns the last non-empty line of s, cut to 200 bytes, for error messages.
func lastLine(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

var (
	// ErrConnectionLost is wrapped by the error of an operation during which the
	// connection to the worker died. The command may or may not have run.
	ErrConnectionLost = errors.New("connection lost")
	// ErrClosed is wrapped by the error of an operation on a closed transport.
	ErrClosed = errors.New("transport closed")
)

// stderrTail is how much of a failed command's standard error ExitError keeps.
const stderrTail = 4 << 10

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// counters are the atomic form of Stats.
type counters struct {
	roundTrips, sent, received, reconnects atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		RoundTrips:    c.roundTrips.Load(),
		BytesSent:     c.sent.Load(),
		BytesReceived: c.received.Load(),
		Reconnects:    c.reconnects.Load(),
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// ctxReader fails with ctx's error once ctx is done, so that a copy stops between reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// sourceError marks an error returned by the caller's reader (stdin, upload content),
// so that it is not mistaken for a failure of the worker or the connection.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read input: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// sourceReader wraps the errors of r, except io.EOF, in *sourceError.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// eofReader is an empty reader, for a nil content.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// gate passes writes to w until closed, then drops them. A cancelled operation closes
// its gates before returning so that a session still winding down in the background
// never writes into the caller's buffers after the call has returned.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// fileMode keeps the permission and special bits of mode, the ones a file can be given.
func fileMode(mode fs.FileMode) fs.FileMode {
	return mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// opName names an operation on argv for error messages: "run docker".
func opName(verb string, argv []string) string {
	if len(argv) == 0 {
		return verb
	}
	return verb + " " + argv[0]
}
