package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/pkg/sftp"
)

// Upload writes the file with SFTP in one session. sftp cannot give a file its mode
// when creating it (the server uses 0666 minus its umask), so the content is not
// written to a bare temporary file, whose first moments would be readable by others,
// but into a temporary directory next to path: the directory is made private (0700)
// before the file is created in it, the file is written, synced (fsync@openssh.com),
// given mode and owner, then renamed over path (posix-rename@openssh.com, atomic) and
// the directory removed. On failure the temporary directory and file are removed; only
// a connection that dies midway can leave a ".<name>.upload-*" directory behind.
func (t *sshTransport) Upload(ctx context.Context, p string, content io.Reader, mode fs.FileMode, uid, gid int) error {
	op := "upload " + p
	if err := checkUploadPath(p); err != nil {
		return t.errorf(op, err)
	}
	p = path.Clean(p)
	if content == nil {
		content = eofReader{}
	}
	if t.isClosed() {
		return t.errorf(op, ErrClosed)
	}
	t.st.roundTrips.Add(1)
	release, err := t.acquire(ctx)
	if err != nil {
		return t.errorf(op, err)
	}
	defer release()
	s, c, err := t.session(ctx)
	if err != nil {
		return t.errorf(op, err)
	}
	defer s.Close()
	fail := func(err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return t.errorf(op, ctxErr)
		}
		var status *sftp.StatusError
		if errors.As(err, &status) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrExist) {
			return t.errorf(op, err) // the server answered: the connection is fine
		}
		if lerr, ok := t.lost(c, err); ok {
			return t.errorf(op, lerr)
		}
		return t.errorf(op, err)
	}
	w, err := s.StdinPipe()
	if err != nil {
		return fail(err)
	}
	r, err := s.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		return fail(fmt.Errorf("start sftp: %w", err))
	}
	client, err := sftp.NewClientPipe(r, w)
	if err != nil {
		return fail(fmt.Errorf("start sftp: %w", err))
	}
	defer client.Close()
	// Cancellation closes the session, which fails the sftp request in flight.
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		s.Close()
	})
	defer stop()
	if err := sftpUpload(client, p, sourceReader{ctxReader{ctx, content}}, fileMode(mode), uid, gid); err != nil {
		return fail(err)
	}
	return nil
}

func sftpUpload(c *sftp.Client, p string, content io.Reader, mode fs.FileMode, uid, gid int) (err error) {
	if _, ok := c.HasExtension("posix-rename@openssh.com"); !ok {
		return errors.New("the sftp server lacks posix-rename@openssh.com: cannot replace the file atomically")
	}
	dir, base := path.Dir(p), path.Base(p)
	if err := c.MkdirAll(dir); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmpDir := path.Join(dir, "."+base+".upload-"+hex.EncodeToString(rnd[:]))
	if err := c.Mkdir(tmpDir); err != nil {
		return fmt.Errorf("create temporary directory %s: %w", tmpDir, err)
	}
	tmp := path.Join(tmpDir, base)
	defer func() {
		if err != nil {
			c.Remove(tmp)
			c.RemoveDirectory(tmpDir)
		}
	}()
	if err := c.Chmod(tmpDir, 0o700); err != nil {
		return fmt.Errorf("chmod temporary directory: %w", err)
	}
	f, err := c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	closeErr := func(err error) error {
		f.Close()
		return err
	}
	if _, err := io.Copy(f, content); err != nil {
		return closeErr(fmt.Errorf("write content: %w", err))
	}
	if ext, ok := c.HasExtension("fsync@openssh.com"); ok && ext == "1" {
		if err := f.Sync(); err != nil {
			return closeErr(fmt.Errorf("fsync: %w", err))
		}
	}
	if err := f.Chmod(mode); err != nil {
		return closeErr(fmt.Errorf("chmod: %w", err))
	}
	if uid != -1 || gid != -1 {
		if uid == -1 || gid == -1 {
			// SFTP sets both ids at once: keep the one not given.
			fi, err := f.Stat()
			if err != nil {
				return closeErr(fmt.Errorf("stat: %w", err))
			}
			st, ok := fi.Sys().(*sftp.FileStat)
			if !ok {
				return closeErr(errors.New("stat: the sftp server reported no owner"))
			}
			if uid == -1 {
				uid = int(st.UID)
			}
			if gid == -1 {
				gid = int(st.GID)
			}
		}
		if err := f.Chown(uid, gid); err != nil {
			return closeErr(fmt.Errorf("chown %d:%d: %w", uid, gid, err))
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if err := c.PosixRename(tmp, p); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	if err := c.RemoveDirectory(tmpDir); err != nil {
		// The file is in place; only the empty temporary directory is left.
		return fmt.Errorf("remove temporary directory %s: %w", tmpDir, err)
	}
	return nil
}
