package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Layout of the cache dir in git mode.
const (
	cloneDir    = "repo.git" // bare clone, kept across restarts
	treesDir    = "trees"    // trees/<commit>: exported commit trees
	currentLink = "current"  // symlink to the tree of the revision in force
	remoteName  = "origin"
	// objectCacheSize bounds go-git's object cache (its default is 96 MiB).
	objectCacheSize = 8 * cache.MiByte
)

// gitSource fetches a branch or tag of a remote into a bare clone in the cache dir and
// exports each new commit's tree to trees/<commit> (written to a temp dir and renamed,
// so a tree dir is complete or absent). The loader reads that tree: the very commit, not
// a working copy that could be half updated.
type gitSource struct {
	cfg  Config
	log  *slog.Logger
	repo *git.Repository
	auth transport.AuthMethod
}

func newGitSource(cfg Config, log *slog.Logger) *gitSource {
	return &gitSource{cfg: cfg, log: log}
}

func (g *gitSource) kind() string             { return "git" }
func (g *gitSource) location() string         { return redactURL(g.cfg.GitURL) }
func (g *gitSource) changes() <-chan struct{} { return nil }
func (g *gitSource) close()                   {}

func (g *gitSource) ref() string {
	if g.cfg.Tag != "" {
		return "tag " + g.cfg.Tag
	}
	return "branch " + g.cfg.Branch
}

func (g *gitSource) open(ctx context.Context) error {
	dir := filepath.Join(g.cfg.CacheDir, cloneDir)
	if err := os.MkdirAll(filepath.Join(g.cfg.CacheDir, treesDir), 0o700); err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRU(objectCacheSize))
	repo, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.Init(st, nil) // bare
	}
	if err != nil {
		return fmt.Errorf("git cache %s: %w", dir, err)
	}
	// Point origin at the configured remote (it may have changed since the last run).
	if r, err := repo.Remote(remoteName); err == nil {
		if urls := r.Config().URLs; len(urls) != 1 || urls[0] != g.cfg.GitURL {
			if err := repo.DeleteRemote(remoteName); err != nil {
				return fmt.Errorf("git cache: %w", err)
			}
		}
	}
	if _, err := repo.Remote(remoteName); errors.Is(err, git.ErrRemoteNotFound) {
		if _, err := repo.CreateRemote(&gitconfig.RemoteConfig{Name: remoteName, URLs: []string{g.cfg.GitURL}}); err != nil {
			return fmt.Errorf("git cache: %w", err)
		}
	}
	auth, err := gitAuth(g.cfg.GitURL, g.cfg.Auth)
	if err != nil {
		return fmt.Errorf("git remote %s: %w", g.location(), err)
	}
	g.repo, g.auth = repo, auth
	return nil
}

// refs returns the refspec to fetch and the local ref it lands in.
func (g *gitSource) refs() (gitconfig.RefSpec, plumbing.ReferenceName) {
	if g.cfg.Tag != "" {
		name := plumbing.NewTagReferenceName(g.cfg.Tag)
		return gitconfig.RefSpec("+" + name.String() + ":" + name.String()), name
	}
	local := plumbing.NewRemoteReferenceName(remoteName, g.cfg.Branch)
	return gitconfig.RefSpec("+" + plumbing.NewBranchReferenceName(g.cfg.Branch).String() + ":" + local.String()), local
}

func (g *gitSource) fetch(ctx context.Context) (*Snapshot, error) {
	spec, local := g.refs()
	err := g.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName, RefSpecs: []gitconfig.RefSpec{spec}, Auth: g.auth, Force: true, Tags: git.NoTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("git fetch %s (%s): %s", g.location(), g.ref(), redactText(err.Error()))
	}
	ref, err := g.repo.Reference(local, true)
	if err != nil {
		return nil, fmt.Errorf("git %s: %s not found on the remote: %w", g.location(), g.ref(), err)
	}
	commit, err := g.commit(ref.Hash())
	if err != nil {
		return nil, fmt.Errorf("git %s (%s): %w", g.location(), g.ref(), err)
	}
	rev := commit.Hash.String()
	dir := filepath.Join(g.cfg.CacheDir, treesDir, rev)
	if _, err := os.Stat(dir); err != nil {
		start := time.Now()
		if err := exportTree(ctx, commit, dir); err != nil {
			return nil, fmt.Errorf("git %s: read the tree of %s: %w", g.location(), shortRev(rev), err)
		}
		g.log.Debug("exported commit tree", "revision", shortRev(rev), "dir", dir, "duration", time.Since(start).Round(time.Millisecond))
	}
	subject, _, _ := strings.Cut(commit.Message, "\n")
	return &Snapshot{Revision: rev, Dir: dir, FS: os.DirFS(dir), Subject: subject, Author: commit.Author.Name, Time: commit.Committer.When}, nil
}

// commit resolves a fetched ref to its commit, peeling an annotated tag.
func (g *gitSource) commit(h plumbing.Hash) (*object.Commit, error) {
	if c, err := g.repo.CommitObject(h); err == nil {
		return c, nil
	}
	tag, err := g.repo.TagObject(h)
	if err != nil {
		return nil, fmt.Errorf("%s is neither a commit nor a tag: %w", h, err)
	}
	return tag.Commit()
}

// activate points current at the revision in force (atomically: a new symlink renamed
// over the old one) and removes the other exported trees.
func (g *gitSource) activate(snap *Snapshot) {
	link := filepath.Join(g.cfg.CacheDir, currentLink)
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join(treesDir, snap.Revision), tmp); err == nil {
		if err := os.Rename(tmp, link); err != nil {
			g.log.Warn("cannot update the current tree link", "err", err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(g.cfg.CacheDir, treesDir))
	for _, e := range entries {
		if e.Name() != snap.Revision {
			os.RemoveAll(filepath.Join(g.cfg.CacheDir, treesDir, e.Name()))
		}
	}
}

// exportTree writes a commit's tree to dst: into a temp dir first, renamed at the end,
// so dst is complete or absent. Regular and executable files only: symlinks and
// submodules are not part of a desired state (a symlink could point out of the tree).
func exportTree(ctx context.Context, commit *object.Commit, dst string) error {
	tree, err := commit.Tree()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	err = tree.Files().ForEach(func(f *object.File) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil
		}
		if !filepath.IsLocal(filepath.FromSlash(f.Name)) {
			return fmt.Errorf("unsafe path %q in the tree", f.Name)
		}
		p := filepath.Join(tmp, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if f.Mode == filemode.Executable {
			mode = 0o755
		}
		r, err := f.Reader()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		defer r.Close()
		out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, r); err != nil {
			out.Close()
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		return out.Close()
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	ok = true
	return nil
}

// gitAuth builds the credentials for a remote: an ssh key (or the ssh-agent) verified
// against known_hosts, or an HTTPS token as basic auth.
func gitAuth(rawURL string, a GitAuth) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("remote URL: %s", redactText(err.Error()))
	}
	switch ep.Protocol {
	case "ssh":
		user := ep.User
		if user == "" {
			user = "git"
		}
		var helper *gitssh.HostKeyCallbackHelper
		var auth transport.AuthMethod
		if a.SSHKeyFile != "" {
			pk, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, a.SSHKeyPassphrase)
			if err != nil {
				return nil, fmt.Errorf("ssh key %s: %w", a.SSHKeyFile, err)
			}
			helper, auth = &pk.HostKeyCallbackHelper, pk
		} else {
			cb, err := gitssh.NewSSHAgentAuth(user)
			if err != nil {
				return nil, fmt.Errorf("no ssh key (--git-ssh-key) and no ssh-agent: %w", err)
			}
			helper, auth = &cb.HostKeyCallbackHelper, cb
		}
		var files []string
		if a.KnownHostsFile != "" {
			files = []string{a.KnownHostsFile}
		}
		db, err := gitssh.NewKnownHostsDb(files...)
		if err != nil {
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
		port := ep.Port
		if port == 0 {
			port = 22
		}
		helper.HostKeyCallback = db.HostKeyCallback()
		helper.HostKeyAlgorithms = db.HostKeyAlgorithms(fmt.Sprintf("%s:%d", ep.Host, port))
		return auth, nil
	case "http", "https":
		if a.Token == "" {
			return nil, nil
		}
		user := a.Username
		if user == "" {
			user = "x-access-token"
		}
		return &githttp.BasicAuth{Username: user, Password: a.Token}, nil
	}
	return nil, nil
}

// redactURL removes credentials from a URL for logs and the status page.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil && u.Scheme != "" {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	return raw
}

var urlCreds = regexp.MustCompile(`(https?://)[^/@\s]+@`)

// redactText removes credentials embedded in URLs inside an error message.
func redactText(s string) string { return urlCreds.ReplaceAllString(s, "${1}xxxxx@") }
