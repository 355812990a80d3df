package debughttp

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

//go:embed ui.html
var uiSource string

// page is the status page: server-rendered, then refreshed by its script,
// which polls the JSON and renders the same markup.
var page = template.Must(template.New("ui").Funcs(template.FuncMap{
	"since":   since,
	"clock":   func(t time.Time) string { return t.Format("15:04:05.000") },
	"latency": latency,
	"dash":    dash,

	"stateClass":   stateClass,
	"breakerClass": breakerClass,
	"rowClass":     rowClass,
}).Parse(uiSource))

// The colours of the page, as CSS classes: ok (green), warn (amber), bad
// (red), off (grey). The page's script has the same rules.

// stateClass colours a node's state: online is ok; connecting and
// stopping are on their way; gone is history; suspect and unreachable are
// bad.
func stateClass(s string) string {
	switch s {
	case "online":
		return "ok"
	case "connecting", "stopping":
		return "warn"
	case "gone":
		return "off"
	}
	return "bad"
}

// breakerClass colours a breaker: closed ok, half-open warn, open bad.
func breakerClass(b string) string {
	switch b {
	case "closed":
		return "ok"
	case "half-open":
		return "warn"
	}
	return "bad"
}

// rowClass colours a node's row: by its state, or by its breaker when it
// is online.
func rowClass(state, breaker string) string {
	if state != "online" {
		return stateClass(state)
	}
	return breakerClass(breaker)
}

type pageData struct {
	Snapshot
	RefreshMS int64
}

func (h *Handler) ui(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	if err := page.Execute(&b, pageData{Snapshot: h.Snapshot(), RefreshMS: h.cfg.Refresh.Milliseconds()}); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes()) // an error means the client went away
}

// since prints how long before now t was, as the page's script does: "-"
// for none, else seconds with one decimal below a minute, then minutes
// and seconds.
func since(now time.Time, t *time.Time) string {
	if t == nil {
		return "-"
	}
	d := now.Sub(*t)
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return d.Truncate(time.Second).String()
}

// latency prints milliseconds with up to three decimals, or "-".
func latency(ms float64) string {
	if ms <= 0 {
		return "-"
	}
	return strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
