package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The applets below are just enough of the usual tools for the reconciler's isolation and
// verification checks (`docker exec c ls -1a /data/hermes`, `cat /proc/self/status`, ...).
// Their output follows the GNU tools where a test is likely to look at it.

// ls supports -1 (the only layout anyway), -a, -l and -n (both: numeric owners).
func ls(args []string, stdout, stderr io.Writer) int {
	var all, long bool
	var targets []string
	for _, a := range args {
		if len(a) > 1 && a[0] == '-' {
			for _, c := range a[1:] {
				switch c {
				case '1':
				case 'a':
					all = true
				case 'l', 'n':
					long = true
				default:
					fmt.Fprintf(stderr, "ls: invalid option -- '%c'\nusage: ls [-1aln] [FILE]...\n", c)
					return 2
				}
			}
			continue
		}
		targets = append(targets, a)
	}
	if len(targets) == 0 {
		targets = []string{"."}
	}
	rc := 0
	for i, target := range targets {
		fi, err := os.Lstat(target)
		if err != nil {
			fmt.Fprintf(stderr, "ls: cannot access '%s': %s\n", target, errText(err))
			rc = 2
			continue
		}
		if !fi.IsDir() {
			printEntry(stdout, target, target, fi, long)
			continue
		}
		entries, err := os.ReadDir(target)
		if err != nil {
			fmt.Fprintf(stderr, "ls: cannot open directory '%s': %s\n", target, errText(err))
			rc = 2
			continue
		}
		if len(targets) > 1 {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			fmt.Fprintf(stdout, "%s:\n", target)
		}
		if all {
			for _, dot := range []string{".", ".."} {
				if fi, err := os.Lstat(filepath.Join(target, dot)); err == nil {
					printEntry(stdout, dot, filepath.Join(target, dot), fi, long)
				}
			}
		}
		for _, e := range entries {
			if !all && strings.HasPrefix(e.Name(), ".") {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				fmt.Fprintf(stderr, "ls: cannot access '%s': %s\n", filepath.Join(target, e.Name()), errText(err))
				rc = 2
				continue
			}
			printEntry(stdout, e.Name(), filepath.Join(target, e.Name()), fi, long)
		}
	}
	return rc
}

// printEntry prints a name, or in long format `-rw------- 1 10000 10000 12 2026-05-20 10:00 .env`.
func printEntry(w io.Writer, name, path string, fi fs.FileInfo, long bool) {
	if !long {
		fmt.Fprintln(w, name)
		return
	}
	nlink, uid, gid := owner(fi)
	line := fmt.Sprintf("%s %d %d %d %d %s %s", modeString(fi.Mode()), nlink, uid, gid, fi.Size(),
		fi.ModTime().UTC().Format("2006-01-02 15:04"), name)
	if fi.Mode()&fs.ModeSymlink != 0 {
		if dest, err := os.Readlink(path); err == nil {
			line += " -> " + dest
		}
	}
	fmt.Fprintln(w, line)
}

func modeString(m fs.FileMode) string {
	b := []byte("----------")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m.Perm()&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	if m&fs.ModeSetuid != 0 {
		b[3] = sOrS(b[3], 's')
	}
	if m&fs.ModeSetgid != 0 {
		b[6] = sOrS(b[6], 's')
	}
	if m&fs.ModeSticky != 0 {
		b[9] = sOrS(b[9], 't')
	}
	return string(b)
}

func sOrS(x, lower byte) byte {
	if x == '-' {
		return lower - 'a' + 'A'
	}
	return lower
}

// errText is the GNU tools' wording of the common errors.
func errText(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// cat copies files (or stdin, for no argument or "-") to stdout.
func cat(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"-"}
	}
	rc := 0
	for _, name := range args {
		if name == "-" {
			if _, err := io.Copy(stdout, stdin); err != nil {
				fmt.Fprintf(stderr, "cat: -: %v\n", err)
				rc = 1
			}
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "cat: %s: %s\n", name, errText(err))
			rc = 1
			continue
		}
		_, err = io.Copy(stdout, f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "cat: %s: %s\n", name, errText(err))
			rc = 1
		}
	}
	return rc
}

// touch creates files that do not exist and updates the times of those that do.
func touch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "touch: missing file operand")
		return 1
	}
	rc := 0
	now := time.Now()
	for _, name := range args {
		err := os.Chtimes(name, now, now)
		if errors.Is(err, fs.ErrNotExist) {
			var f *os.File
			if f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
				err = f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "touch: cannot touch '%s': %s\n", name, errText(err))
			rc = 1
		}
	}
	return rc
}

// rm removes files; -f ignores missing ones, -r removes directories recursively.
func rm(args []string, stdout, stderr io.Writer) int {
	var force, recursive bool
	var names []string
	for _, a := range args {
		if len(a) > 1 && a[0] == '-' {
			for _, c := range a[1:] {
				switch c {
				case 'f':
					force = true
				case 'r', 'R':
					recursive = true
				default:
					fmt.Fprintf(stderr, "rm: invalid option -- '%c'\nusage: rm [-fr] FILE...\n", c)
					return 1
				}
			}
			continue
		}
		names = append(names, a)
	}
	if len(names) == 0 && !force {
		fmt.Fprintln(stderr, "rm: missing operand")
		return 1
	}
	rc := 0
	for _, name := range names {
		fi, err := os.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist) && force:
			continue
		case err != nil:
		case fi.IsDir() && !recursive:
			fmt.Fprintf(stderr, "rm: cannot remove '%s': Is a directory\n", name)
			rc = 1
			continue
		case fi.IsDir():
			err = os.RemoveAll(name)
		default:
			err = os.Remove(name)
		}
		if err != nil {
			fmt.Fprintf(stderr, "rm: cannot remove '%s': %s\n", name, errText(err))
			rc = 1
		}
	}
	return rc
}

// env prints the environment; running a command under a changed one is not supported.
func env(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "env: only `env` without arguments is supported by the stand-in")
		return 2
	}
	for _, kv := range os.Environ() {
		fmt.Fprintln(stdout, kv)
	}
	return 0
}

// id prints `uid=10000 gid=10000 groups=10000` (there is no /etc/passwd to name them),
// or with -u / -g just the number.
func id(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
	case len(args) == 1 && args[0] == "-u":
		fmt.Fprintln(stdout, os.Getuid())
		return 0
	case len(args) == 1 && args[0] == "-g":
		fmt.Fprintln(stdout, os.Getgid())
		return 0
	default:
		fmt.Fprintln(stderr, "usage: id [-u|-g]")
		return 2
	}
	groups, _ := os.Getgroups()
	if len(groups) == 0 {
		groups = []int{os.Getgid()}
	}
	gs := make([]string, len(groups))
	for i, g := range groups {
		gs[i] = fmt.Sprint(g)
	}
	fmt.Fprintf(stdout, "uid=%d gid=%d groups=%s\n", os.Getuid(), os.Getgid(), strings.Join(gs, ","))
	return 0
}
