package wizard

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"

	"github.com/firemountain/hermes-gitops/schema"
)

const (
	remoteName    = "origin"
	reviewPrefix  = "wizard/"
	remoteRefsDir = "refs/remotes/" + remoteName + "/"
)

// gitRepo is the server's clone of the desired-state repository: a bare clone, so there
// is no worktree and no index to keep in step, and nothing but git objects on disk. Its
// state is the remote branch head as last fetched (head): a submission's commit is built
// directly in the object store on top of it and pushed, and only once the remote has it
// does head move (direct mode). A failed push therefore leaves nothing to undo but
// unreferenced objects, which hold encrypted values only.
//
// It is not safe for concurrent use; the server serializes every call.
type gitRepo struct {
	dir    string
	url    string
	branch string
	review bool
	auth   transport.AuthMethod

	r *git.Repository

	head      plumbing.Hash // the remote branch head, as last fetched or pushed
	lastFetch time.Time

	idsTree plumbing.Hash     // tenants/ tree the cache below was read from
	ids     map[string]string // tenant id → app

	sopsDir   string                   // where .sops.yaml files of the tree are written for sops
	sopsFiles map[string]plumbing.Hash // .sops.yaml path → blob written there

	// beforePush, when set (tests), runs after the remote advertised its refs and right
	// before the pack is sent: the moment another writer can slip in.
	beforePush func(ref plumbing.ReferenceName, commit plumbing.Hash)
}

// errPushRejected means the remote refused the update (it moved, or a hook declined);
// fetching and building the commit again may succeed.
type errPushRejected struct{ reason string }

func (e errPushRejected) Error() string { return "push rejected: " + e.reason }

// errBranchExists means a review branch for the tenant is already on the remote.
var errBranchExists = errors.New("a review branch for this tenant already exists")

func (g *gitRepo) branchRef() plumbing.ReferenceName {
	return plumbing.NewBranchReferenceName(g.branch)
}
func (g *gitRepo) remoteBranchRef() plumbing.ReferenceName {
	return plumbing.ReferenceName(remoteRefsDir + g.branch)
}

// reviewBranch is the branch a tenant's submission is pushed to in review mode.
func reviewBranch(id string) string { return reviewPrefix + id }

func (g *gitRepo) refSpecs() []gitconfig.RefSpec {
	specs := []gitconfig.RefSpec{gitconfig.RefSpec("+refs/heads/" + g.branch + ":" + remoteRefsDir + g.branch)}
	if g.review {
		specs = append(specs, gitconfig.RefSpec("+refs/heads/"+reviewPrefix+"*:"+remoteRefsDir+reviewPrefix+"*"))
	}
	return specs
}

// sopsConfigDir is the directory of the clone where the .sops.yaml files of the
// repository are written for sops, which reads its configuration from a file.
const sopsConfigDir = "hermes-wizard-sops"

// openRepo makes a bare clone of the remote in dir, or opens the one already there, and
// fetches.
func openRepo(ctx context.Context, dir, url, branch string, review bool, auth transport.AuthMethod) (*gitRepo, error) {
	g := &gitRepo{dir: dir, url: url, branch: branch, review: review, auth: auth,
		sopsDir: filepath.Join(dir, sopsConfigDir), sopsFiles: map[string]plumbing.Hash{}}
	r, err := git.PlainOpen(dir)
	switch {
	case errors.Is(err, git.ErrRepositoryNotExists):
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			return nil, fmt.Errorf("clone dir %s: not empty and not a git clone; use an empty or new directory", dir)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("clone dir: %w", err)
		}
		r, err = git.PlainCloneContext(ctx, dir, true, &git.CloneOptions{
			URL: url, Auth: auth, RemoteName: remoteName, ReferenceName: g.branchRef(),
			SingleBranch: true, Tags: git.NoTags,
		})
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("clone %s (branch %s): %w", redactURL(url), branch, err)
		}
	case err != nil:
		return nil, fmt.Errorf("open clone %s: %w", dir, err)
	default:
		if _, err := r.Worktree(); !errors.Is(err, git.ErrIsBareRepository) {
			return nil, fmt.Errorf("clone dir %s is not a bare clone made by hermesctl serve; use another --clone-dir", dir)
		}
		rem, err := r.Remote(remoteName)
		if err != nil {
			return nil, fmt.Errorf("clone %s: no remote %q: %w", dir, remoteName, err)
		}
		if urls := rem.Config().URLs; len(urls) == 0 || urls[0] != url {
			return nil, fmt.Errorf("clone dir %s is a clone of another remote; use another --clone-dir", dir)
		}
	}
	g.r = r
	if err := g.refresh(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// refresh fetches the remote and moves head to the remote branch head.
func (g *gitRepo) refresh(ctx context.Context) error {
	err := g.r.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName, RefSpecs: g.refSpecs(), Auth: g.auth, Tags: git.NoTags, Prune: true, Force: true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetch %s: %w", redactURL(g.url), err)
	}
	g.lastFetch = time.Now()
	ref, err := g.r.Reference(g.remoteBranchRef(), true)
	if err != nil {
		return fmt.Errorf("remote %s has no branch %s: %w", redactURL(g.url), g.branch, err)
	}
	return g.moveTo(ref.Hash())
}

// moveTo sets head, and the local branch with it (for people looking at the clone).
func (g *gitRepo) moveTo(h plumbing.Hash) error {
	if h == g.head {
		return nil
	}
	if err := g.r.Storer.SetReference(plumbing.NewHashReference(g.branchRef(), h)); err != nil {
		return err
	}
	g.head = h
	return nil
}

// resetClean puts the clone back at the remote branch head after a failure: fetched
// again when the remote answers, else the head last fetched.
func (g *gitRepo) resetClean(ctx context.Context) error {
	if err := g.refresh(ctx); err == nil {
		return nil
	}
	ref, err := g.r.Reference(g.remoteBranchRef(), true)
	if err != nil {
		return err
	}
	return g.moveTo(ref.Hash())
}

// headFS is the file tree of head as an fs.FS.
func (g *gitRepo) headFS() (fs.FS, error) {
	c, err := object.GetCommit(g.r.Storer, g.head)
	if err != nil {
		return nil, err
	}
	t, err := c.Tree()
	if err != nil {
		return nil, err
	}
	return treeFS{root: t, s: g.r.Storer}, nil
}

// sopsConfig returns the .sops.yaml that governs rel in head (the nearest one in rel's
// directory or above, as sops searches), written to disk for sops, and the path sops
// must be given for rel so that the creation rules' path_regex match as in a checkout.
func (g *gitRepo) sopsConfig(rel string) (conf, file string, err error) {
	c, err := object.GetCommit(g.r.Storer, g.head)
	if err != nil {
		return "", "", err
	}
	root, err := c.Tree()
	if err != nil {
		return "", "", err
	}
	for dir := path.Dir(rel); ; dir = path.Dir(dir) {
		for _, name := range []string{".sops.yaml", ".sops.yml"} {
			p := path.Join(dir, name)
			e, err := root.FindEntry(p)
			if err != nil || !e.Mode.IsFile() {
				continue
			}
			disk := filepath.Join(g.sopsDir, filepath.FromSlash(p))
			if g.sopsFiles[p] != e.Hash {
				if err := g.writeBlob(e.Hash, disk); err != nil {
					return "", "", fmt.Errorf("%s: %w", p, err)
				}
				g.sopsFiles[p] = e.Hash
			}
			return disk, filepath.Join(g.sopsDir, filepath.FromSlash(rel)), nil
		}
		if dir == "." {
			return "", "", fmt.Errorf("no .sops.yaml in the repository governs %s", rel)
		}
	}
}

func (g *gitRepo) writeBlob(h plumbing.Hash, file string) error {
	b, err := g.r.BlobObject(h)
	if err != nil {
		return err
	}
	rd, err := b.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, 1<<20))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// tenantIDs returns every tenant id in the head tree with its app. Ids are file names:
// tenants/<app>/<id>.yaml.
func (g *gitRepo) tenantIDs() (map[string]string, error) {
	c, err := object.GetCommit(g.r.Storer, g.head)
	if err != nil {
		return nil, err
	}
	root, err := c.Tree()
	if err != nil {
		return nil, err
	}
	e, err := root.FindEntry(schema.TenantsDir)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	if e.Hash == g.idsTree && g.ids != nil {
		return g.ids, nil
	}
	tenants, err := object.GetTree(g.r.Storer, e.Hash)
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, appDir := range tenants.Entries {
		if appDir.Mode != filemode.Dir {
			continue
		}
		t, err := object.GetTree(g.r.Storer, appDir.Hash)
		if err != nil {
			return nil, err
		}
		for _, f := range t.Entries {
			if ext := path.Ext(f.Name); f.Mode.IsFile() && (ext == ".yaml" || ext == ".yml") {
				ids[strings.TrimSuffix(f.Name, ext)] = appDir.Name
			}
		}
	}
	g.idsTree, g.ids = e.Hash, ids
	return ids, nil
}

// pendingIDs returns the tenants with a review branch on the remote, as last fetched.
func (g *gitRepo) pendingIDs() (map[string]plumbing.Hash, error) {
	out := map[string]plumbing.Hash{}
	if !g.review {
		return out, nil
	}
	refs, err := g.r.References()
	if err != nil {
		return nil, err
	}
	defer refs.Close()
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if id, ok := strings.CutPrefix(ref.Name().String(), remoteRefsDir+reviewPrefix); ok && ref.Type() == plumbing.HashReference {
			out[id] = ref.Hash()
		}
		return nil
	})
	return out, err
}

// fileAt returns the blob hash of a path in a commit, if it is there.
func (g *gitRepo) fileAt(commit plumbing.Hash, rel string) (plumbing.Hash, bool) {
	c, err := object.GetCommit(g.r.Storer, commit)
	if err != nil {
		return plumbing.ZeroHash, false
	}
	t, err := c.Tree()
	if err != nil {
		return plumbing.ZeroHash, false
	}
	e, err := t.FindEntry(rel)
	if err != nil {
		return plumbing.ZeroHash, false
	}
	return e.Hash, true
}

// commitFile writes a commit on top of parent that adds one file, straight into the
// object store (no index, no worktree), and returns it with every object it created:
// exactly what the remote, which has parent, is missing.
func (g *gitRepo) commitFile(parent plumbing.Hash, rel string, data []byte, msg string, sig object.Signature) (plumbing.Hash, []plumbing.Hash, error) {
	pc, err := object.GetCommit(g.r.Storer, parent)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	blob := g.r.Storer.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	blob.SetSize(int64(len(data)))
	w, err := blob.Writer()
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	bh, err := g.r.Storer.SetEncodedObject(blob)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	objs := []plumbing.Hash{bh}
	root, err := g.putPath(pc.TreeHash, strings.Split(rel, "/"), bh, &objs)
	if err != nil {
		return plumbing.ZeroHash, nil, fmt.Errorf("%s: %w", rel, err)
	}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: root, ParentHashes: []plumbing.Hash{parent}}
	h, err := g.store(c)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	return h, append(objs, h), nil
}

// putPath returns the tree hash of tree with the blob added at the path parts, storing
// every new tree.
func (g *gitRepo) putPath(tree plumbing.Hash, parts []string, blob plumbing.Hash, objs *[]plumbing.Hash) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !tree.IsZero() {
		t, err := object.GetTree(g.r.Storer, tree)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = slices.Clone(t.Entries)
	}
	name := parts[0]
	i := slices.IndexFunc(entries, func(e object.TreeEntry) bool { return e.Name == name })
	if len(parts) == 1 {
		if i >= 0 {
			return plumbing.ZeroHash, errors.New("already exists")
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: blob})
	} else {
		var sub plumbing.Hash
		if i >= 0 {
			if entries[i].Mode != filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%s is not a directory", name)
			}
			sub = entries[i].Hash
		}
		h, err := g.putPath(sub, parts[1:], blob, objs)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if i >= 0 {
			entries[i].Hash = h
		} else {
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		}
	}
	slices.SortFunc(entries, func(a, b object.TreeEntry) int { return cmp.Compare(gitSortKey(a), gitSortKey(b)) })
	h, err := g.store(&object.Tree{Entries: entries})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	*objs = append(*objs, h)
	return h, nil
}

// gitSortKey orders tree entries as git does: a directory sorts as if its name ended
// in "/".
func gitSortKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

func (g *gitRepo) store(o interface {
	Encode(plumbing.EncodedObject) error
}) (plumbing.Hash, error) {
	obj := g.r.Storer.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return g.r.Storer.SetEncodedObject(obj)
}

// push updates ref on the remote from old to commit, sending exactly objs. It is a
// compare-and-swap: when the remote ref is not at old (another writer got there first)
// it fails with errPushRejected, and git's receive-pack checks old again under its ref
// lock. go-git's Repository.Push is not used because it works out what to send by
// walking the whole history the remote has, which grows with every tenant ever added;
// the server knows exactly which objects are new.
func (g *gitRepo) push(ctx context.Context, ref plumbing.ReferenceName, old, commit plumbing.Hash, objs []plumbing.Hash) error {
	ep, err := transport.NewEndpoint(g.url)
	if err != nil {
		return err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return err
	}
	sess, err := cl.NewReceivePackSession(ep, g.auth)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redactURL(g.url), err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return fmt.Errorf("list refs of %s: %w", redactURL(g.url), err)
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return err
	}
	var cur plumbing.Hash
	if r, ok := refs[ref]; ok {
		cur = r.Hash()
	}
	switch {
	case cur == commit:
		return nil // pushed before, the answer was lost
	case cur != old && old.IsZero():
		return errBranchExists
	case cur != old:
		return errPushRejected{reason: "the remote branch moved"}
	}
	if g.beforePush != nil {
		g.beforePush(ref, commit)
	}
	var pack bytes.Buffer
	if _, err := packfile.NewEncoder(&pack, g.r.Storer, false).Encode(objs, 0); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: commit}}
	req.Packfile = io.NopCloser(&pack)
	rs, err := sess.ReceivePack(ctx, req)
	if rs != nil && rs.Error() != nil {
		// The remote answered and refused: its ref moved under the lock, or a hook said no.
		return errPushRejected{reason: rs.Error().Error()}
	}
	if err != nil {
		return fmt.Errorf("push to %s: %w", redactURL(g.url), err)
	}
	return nil
}

// advance moves the clone to a commit the remote branch now has.
func (g *gitRepo) advance(commit plumbing.Hash) error {
	if err := g.r.Storer.SetReference(plumbing.NewHashReference(g.remoteBranchRef(), commit)); err != nil {
		return err
	}
	return g.moveTo(commit)
}

// landed reports whether a commit whose push failed is on the remote after all (the
// remote took it, the answer was lost), as the last fetch saw it.
func (g *gitRepo) landed(b *built) bool {
	if !g.review {
		return g.head == b.commit
	}
	pending, err := g.pendingIDs()
	return err == nil && pending[b.id] == b.commit
}

// discard deletes the loose objects of a commit the remote did not take, so that a
// failed submission leaves nothing behind in the clone. They are new objects (the tenant
// file's encryption is random, so no other commit shares them); best effort.
func (g *gitRepo) discard(objs []plumbing.Hash) {
	d, ok := g.r.Storer.(interface{ DeleteLooseObject(plumbing.Hash) error })
	if !ok {
		return
	}
	for _, h := range objs {
		_ = d.DeleteLooseObject(h)
	}
}

// notePending records a review branch the remote now has.
func (g *gitRepo) notePending(id string, commit plumbing.Hash) error {
	return g.r.Storer.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(remoteRefsDir+reviewPrefix+id), commit))
}
