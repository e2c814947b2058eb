package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/firemountain/hermes-gitops/internal/testenv"
)

func TestRun(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		out, errOut, err := run(t, tr, "sh", "-c", "echo out; echo err >&2")
		if err != nil || out != "out\n" || errOut != "err\n" {
			t.Errorf("run = %q, %q, %v; want out, err, nil", out, errOut, err)
		}

		_, _, err = run(t, tr, "sh", "-c", "echo first >&2; echo 'it broke' >&2; exit 3")
		ee := exitCode(t, err)
		if ee.Code != 3 || ee.Stderr != "first\nit broke\n" || ee.Signal != "" {
			t.Errorf("ExitError = %+v, want code 3 and the stderr", ee)
		}
		if want := "worker edge-1: run sh: exit status 3: it broke"; err.Error() != want {
			t.Errorf("error = %q, want %q", err, want)
		}

		var stdout bytes.Buffer
		if err := tr.Run(ctxT(t), []string{"tr", "a-z", "A-Z"}, strings.NewReader("piped stdin\n"), &stdout, nil); err != nil {
			t.Fatal(err)
		}
		if stdout.String() != "PIPED STDIN\n" {
			t.Errorf("stdin through tr = %q", stdout.String())
		}

		// A large stdin and stdout, both ways at once.
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		stdout.Reset()
		if err := tr.Run(ctxT(t), []string{"cat"}, bytes.NewReader(big), &stdout, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stdout.Bytes(), big) {
			t.Errorf("cat of 1 MiB returned %d bytes", stdout.Len())
		}
	})
}

func TestRunStderrTail(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		// 10,000 bytes of stderr, then a last line: ExitError keeps the last 4 KiB.
		_, errOut, err := run(t, tr, "sh", "-c", "head -c 10000 /dev/zero | tr '\\0' x >&2; echo >&2; echo last >&2; exit 1")
		ee := exitCode(t, err)
		if len(ee.Stderr) != 4096 || !strings.HasSuffix(ee.Stderr, "x\nlast\n") {
			t.Errorf("Stderr has %d bytes ending %q; want the last 4096", len(ee.Stderr), ee.Stderr[max(0, len(ee.Stderr)-20):])
		}
		if len(errOut) != 10000+1+5 {
			t.Errorf("the stderr writer got %d bytes, want all 10006", len(errOut))
		}
	})
}

func TestRunSignal(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		_, _, err := run(t, tr, "sh", "-c", "kill -TERM $$")
		ee := exitCode(t, err)
		if ee.Code != 128+int(syscall.SIGTERM) {
			t.Errorf("ExitError = %+v, want code 143", ee)
		}
	})
}

// nasty strings must come back from the worker exactly as sent.
var nasty = []string{
	"", " ", "'", "''", `"`, `\`, `'\''`, "$HOME", "${HOME}", "$(touch /tmp/pwned)",
	"`touch /tmp/pwned`", "a;b", "a && b", "a || b", "a|b", "*", "?", "[a-z]", "~", "~root",
	"#", "!", "!!", "-n", "-e", "--", "-", "{a,b}", "<", ">", "&", "(", ")", "%s", `\n`,
	"\t", "héllo wörld", "日本語", "\xff\xfe", "a=b", "IFS=x", "'; rm -rf / #",
}

func TestRunNastyArgv(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		argv := append([]string{"printf", `%s\n`}, nasty...)
		out := mustRun(t, tr, argv...)
		want := strings.Join(nasty, "\n") + "\n"
		if out != want {
			t.Errorf("printf returned\n%q\nwant\n%q", out, want)
		}
		// Newlines inside arguments, separated by NUL.
		words := []string{"a\nb", "\n", "x\r\ny", "end\n"}
		out = mustRun(t, tr, append([]string{"printf", `%s\0`}, words...)...)
		if got := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00"); strings.Join(got, "|") != strings.Join(words, "|") {
			t.Errorf("printf returned %q, want %q", got, words)
		}
	})
}

func TestRunBadArgv(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		if err := tr.Run(ctxT(t), nil, nil, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "worker edge-1: ") {
			t.Errorf("empty argv: err = %v", err)
		}
		if err := tr.Run(ctxT(t), []string{"echo", "a\x00b"}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "NUL") {
			t.Errorf("NUL in argv: err = %v", err)
		}
		if n := tr.Stats().RoundTrips; n != 0 {
			t.Errorf("rejected calls counted %d round trips", n)
		}
	})
}

func TestRunNotFound(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		_, _, err := run(t, tr, "no-such-program-hermes")
		if err == nil || !strings.HasPrefix(err.Error(), "worker edge-1: run no-such-program-hermes: ") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestRunCancel: cancelling the context returns ctx.Err() promptly, stops the command
// on the worker, and leaves the transport usable. The command writes in a loop: a root
// login (as in CI) gets no signal from sshd (OpenSSH signals only privilege-separated
// sessions), and a command then stops at its next write to the closed channel.
func TestRunCancel(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		marker := fmt.Sprintf("hermes-cancel-%d-%d", os.Getpid(), time.Now().UnixNano())
		ctx, cancel := context.WithCancel(ctxT(t))
		pr, pw := io.Pipe()
		errc := make(chan error, 1)
		go func() {
			script := "echo started; while :; do echo tick; sleep 0.05; done # " + marker
			errc <- tr.Run(ctx, []string{"sh", "-c", script}, nil, pw, nil)
		}()
		if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || line != "started\n" {
			t.Fatalf("read %q, %v", line, err)
		}
		pgrep := testenv.LookPath(t, "pgrep")
		if err := exec.Command(pgrep, "-f", marker).Run(); err != nil {
			t.Fatalf("pgrep does not see the running command: %v", err)
		}
		cancel()
		go io.Copy(io.Discard, pr) // output written before the cancel took effect
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "worker edge-1: run sh: ") {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		pw.Close()
		waitFor(t, "the remote command to stop", 10*time.Second, func() bool {
			return exec.Command(pgrep, "-f", marker).Run() != nil
		})
		if out := mustRun(t, tr, "echo", "still usable"); out != "still usable\n" {
			t.Errorf("after cancel: %q", out)
		}
	})
}

func TestInteractiveLocal(t *testing.T) {
	tr := NewLocal("edge-1")
	var out bytes.Buffer
	err := tr.Interactive(ctxT(t), []string{"sh", "-c", `read x; echo "got:$x"; test -t 0 || echo notty; echo "$TERM $LINES $COLUMNS"; echo err >&2`},
		strings.NewReader("hello\n"), &out, "vt100", 30, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := "got:hello\nnotty\nvt100 30 100\nerr\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	ee := exitCode(t, tr.Interactive(ctxT(t), []string{"sh", "-c", "exit 4"}, nil, nil, "", 0, 0))
	if ee.Code != 4 {
		t.Errorf("code %d, want 4", ee.Code)
	}
}

func TestUpload(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		dir := t.TempDir()
		for _, tc := range []struct {
			name string
			mode os.FileMode
		}{{".env", 0o600}, {"config.yaml", 0o644}, {"run.sh", 0o755}} {
			path := filepath.Join(dir, "a", "b", tc.name) // parents do not exist yet
			content := "content of " + tc.name + "\n"
			if err := tr.Upload(ctxT(t), path, strings.NewReader(content), tc.mode, -1, -1); err != nil {
				t.Fatalf("upload %s: %v", tc.name, err)
			}
			assertFile(t, path, content, tc.mode)
		}
		assertEntries(t, filepath.Join(dir, "a", "b"), ".env", "config.yaml", "run.sh")

		// Replacing an existing file, with a new mode.
		path := filepath.Join(dir, "a", "b", "config.yaml")
		if err := tr.Upload(ctxT(t), path, strings.NewReader("v2\n"), 0o600, -1, -1); err != nil {
			t.Fatal(err)
		}
		assertFile(t, path, "v2\n", 0o600)

		// An empty file, from a nil reader.
		empty := filepath.Join(dir, "empty")
		if err := tr.Upload(ctxT(t), empty, nil, 0o640, -1, -1); err != nil {
			t.Fatal(err)
		}
		assertFile(t, empty, "", 0o640)

		// A large file.
		big := bytes.Repeat([]byte("hermes\n"), 300_000) // 2.1 MB
		if err := tr.Upload(ctxT(t), filepath.Join(dir, "big"), bytes.NewReader(big), 0o644, -1, -1); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "big")); !bytes.Equal(got, big) {
			t.Errorf("big file: %d bytes, want %d", len(got), len(big))
		}

		if err := tr.Upload(ctxT(t), "relative/path", strings.NewReader("x"), 0o644, -1, -1); err == nil {
			t.Error("a relative path was accepted")
		}
	})
}

var errBoom = errors.New("boom: the content source failed")

// failingReader returns some bytes, then an error.
type failingReader struct{ sent bool }

func (r *failingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, "NEW CONTENT, PARTIAL"), nil
	}
	return 0, errBoom
}

func TestUploadFailureKeepsOldFile(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		dir := t.TempDir()
		path := filepath.Join(dir, ".env")
		if err := tr.Upload(ctxT(t), path, strings.NewReader("OLD=1\n"), 0o600, -1, -1); err != nil {
			t.Fatal(err)
		}
		err := tr.Upload(ctxT(t), path, &failingReader{}, 0o644, -1, -1)
		if err == nil {
			t.Fatal("an upload whose reader failed succeeded")
		}
		if !strings.Contains(err.Error(), errBoom.Error()) || !strings.HasPrefix(err.Error(), "worker edge-1: upload "+path+": ") {
			t.Errorf("err = %v", err)
		}
		assertFile(t, path, "OLD=1\n", 0o600)
		assertEntries(t, dir, ".env") // no temporary file or directory left

		// A cancelled context fails the upload the same way.
		ctx, cancel := context.WithCancel(ctxT(t))
		cancel()
		if err := tr.Upload(ctx, path, strings.NewReader("NEW=1\n"), 0o600, -1, -1); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled upload: err = %v", err)
		}
		assertFile(t, path, "OLD=1\n", 0o600)
		assertEntries(t, dir, ".env")
	})
}

func TestUploadOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root", "changing a file's owner needs root")
	}
	transports(t, func(t *testing.T, tr Transport) {
		dir := t.TempDir()
		path := filepath.Join(dir, "owned")
		for _, tc := range []struct{ uid, gid, wantUID, wantGID int }{
			{1234, 5678, 1234, 5678},
			{-1, -1, 0, 0}, // a new file is the connecting user's (root)
			{4321, -1, 4321, 0},
			{-1, 8765, 0, 8765},
		} {
			if err := tr.Upload(ctxT(t), path, strings.NewReader("x"), 0o600, tc.uid, tc.gid); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != tc.wantUID || int(st.Gid) != tc.wantGID {
				t.Errorf("upload with %d:%d: owner %d:%d, want %d:%d", tc.uid, tc.gid, st.Uid, st.Gid, tc.wantUID, tc.wantGID)
			}
		}
	})
}

// TestUploadConcurrent: uploads racing on one path each land whole, never mixed.
func TestUploadConcurrent(t *testing.T) {
	transports(t, func(t *testing.T, tr Transport) {
		dir := t.TempDir()
		path := filepath.Join(dir, "shared")
		var wg sync.WaitGroup
		contents := map[string]bool{}
		for i := range 10 {
			c := strings.Repeat(fmt.Sprintf("writer %d\n", i), 5000)
			contents[c] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := tr.Upload(ctxT(t), path, strings.NewReader(c), 0o644, -1, -1); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !contents[string(got)] {
			t.Errorf("the file holds a mix of uploads (%d bytes)", len(got))
		}
		assertEntries(t, dir, "shared")
	})
}

func TestStatsLocal(t *testing.T) {
	tr := NewLocal("edge-1")
	for range 3 {
		mustRun(t, tr, "true")
	}
	run(t, tr, "false")
	if err := tr.Upload(ctxT(t), filepath.Join(t.TempDir(), "f"), strings.NewReader("12345"), 0o644, -1, -1); err != nil {
		t.Fatal(err)
	}
	mustRun(t, tr, "echo", "hi")
	st := tr.Stats()
	if st.RoundTrips != 6 || st.Reconnects != 0 || st.BytesSent != 5 || st.BytesReceived != 3 {
		t.Errorf("Stats = %+v, want 6 round trips, 5 bytes sent, 3 received", st)
	}
	tr.Close()
	if err := tr.Run(ctxT(t), []string{"true"}, nil, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func assertFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Errorf("%s: content %q, want %q", path, got, content)
	}
}

func assertEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}
