package wizard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// GitHub opens a pull request for a review branch. It is optional: without it review
// mode only pushes the branch.
type GitHub struct {
	Token  string // a token allowed to create pull requests; never logged
	Repo   string // owner/name
	APIURL string // default https://api.github.com
	Client *http.Client
}

var githubRepoRE = regexp.MustCompile(`^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$`)

// GitHubRepoFromURL returns owner/name of a github.com remote URL (https, ssh or scp
// form), or "".
func GitHubRepoFromURL(remote string) string {
	var p string
	switch {
	case strings.HasPrefix(remote, "git@github.com:"):
		p = strings.TrimPrefix(remote, "git@github.com:")
	default:
		u, err := url.Parse(remote)
		if err != nil || u.Hostname() != "github.com" || (u.Scheme != "https" && u.Scheme != "ssh") {
			return ""
		}
		p = strings.TrimPrefix(u.Path, "/")
	}
	p = strings.TrimSuffix(strings.TrimSuffix(p, "/"), ".git")
	if !githubRepoRE.MatchString(p) {
		return ""
	}
	return p
}

// openPullRequest opens a pull request from head into base and returns its URL.
func (g *GitHub) openPullRequest(ctx context.Context, head, base, title, body string) (string, error) {
	api := g.APIURL
	if api == "" {
		api = "https://api.github.com"
	}
	c := g.Client
	if c == nil {
		c = &http.Client{Timeout: 15 * time.Second}
	}
	payload, _ := json.Marshal(map[string]any{"title": title, "head": head, "base": base, "body": body, "maintainer_can_modify": false})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(api, "/")+"/repos/"+g.Repo+"/pulls", bytes.NewReader(payload))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+g.Token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("open pull request on %s: %w", g.Repo, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &e)
		return "", fmt.Errorf("open pull request on %s: %s: %.200s", g.Repo, resp.Status, e.Message)
	}
	var pr struct {
		HTMLURL string `json:"html_url"`
	}
	if err := json.Unmarshal(data, &pr); err != nil || pr.HTMLURL == "" {
		return "", fmt.Errorf("open pull request on %s: unexpected answer", g.Repo)
	}
	return pr.HTMLURL, nil
}
