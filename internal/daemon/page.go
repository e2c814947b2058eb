package daemon

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"short": shortRev,
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return humanDuration(time.Since(t)) + " ago"
	},
	"dur":   func(d time.Duration) string { return humanDuration(d) },
	"clock": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"join":  strings.Join,
}).Parse(pageHTML))

// pageData is what the status page shows.
type pageData struct {
	Status
	Phases []phaseCount
	Total  int
	Now    time.Time
}

type phaseCount struct {
	Name string
	N    int
}

// handlePage renders the status page: server-side, no JavaScript, refreshed by the
// browser every 15 s.
func (d *Daemon) handlePage(w http.ResponseWriter, r *http.Request) {
	st := d.Status()
	data := pageData{Status: st, Total: len(st.Tenants), Now: time.Now()}
	for _, p := range Phases {
		data.Phases = append(data.Phases, phaseCount{Name: p, N: st.Phases[p]})
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, data); err != nil {
		d.log.Error("status page", "err", err)
		writeText(w, http.StatusInternalServerError, "status page: template error\n")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
