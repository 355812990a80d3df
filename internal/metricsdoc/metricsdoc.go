// Package metricsdoc checks a package's Prometheus metrics against
// docs/metrics.md and promlint in tests, so the document and the names
// cannot drift apart.
//
// docs/metrics.md has one section per name prefix, headed
// "## Title (`prefix*`)", with a table whose rows are
// "| `name` | type | labels | meaning |": the full name is prefix+name,
// labels are comma-separated ("—" or empty for none) and may carry their
// values in parentheses.
package metricsdoc

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// Entry is one metric the document lists.
type Entry struct {
	// Name is the full name; Section the prefix of its section.
	Name, Section string
	// Type is counter, gauge, histogram or summary.
	Type string
	// Labels are the label names, sorted.
	Labels []string
}

var (
	headingRE = regexp.MustCompile("^## .*\\(`([a-z_:]+)\\*`\\)")
	rowRE     = regexp.MustCompile("^\\|\\s*`([a-z_:]+)`\\s*\\|([^|]*)\\|([^|]*)\\|")
	parenRE   = regexp.MustCompile(`\([^)]*\)`)
	fqNameRE  = regexp.MustCompile(`fqName: "([^"]+)"`)
)

// Parse reads the metric tables of a document shaped as docs/metrics.md.
func Parse(r io.Reader) (map[string]Entry, error) {
	out := map[string]Entry{}
	section := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			section = ""
			if m := headingRE.FindStringSubmatch(line); m != nil {
				section = m[1]
			}
			continue
		}
		m := rowRE.FindStringSubmatch(line)
		if m == nil || section == "" {
			continue
		}
		e := Entry{Name: section + m[1], Section: section, Type: strings.TrimSpace(m[2]), Labels: []string{}}
		for _, l := range strings.Split(parenRE.ReplaceAllString(m[3], ""), ",") {
			if l = strings.TrimSpace(l); l != "" && l != "—" {
				e.Labels = append(e.Labels, l)
			}
		}
		sort.Strings(e.Labels)
		if _, dup := out[e.Name]; dup {
			return nil, errors.Newf("metricsdoc: %s listed twice", e.Name)
		}
		out[e.Name] = e
	}
	return out, sc.Err()
}

// Document parses docs/metrics.md of the module the test runs in.
func Document(t testing.TB) map[string]Entry {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test's directory")
		dir = parent
	}
	f, err := os.Open(filepath.Join(dir, "docs", "metrics.md"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	doc, err := Parse(f)
	require.NoError(t, err)
	return doc
}

// Registry is a prometheus.Registry that remembers the names of what is
// registered with it.
type Registry struct {
	*prometheus.Registry
	names []string
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{Registry: prometheus.NewRegistry()} }

// Register registers c and records the names it describes.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.record(c)
	return nil
}

// MustRegister is prometheus.Registry's, and records the names cs
// describe.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	r.Registry.MustRegister(cs...)
	for _, c := range cs {
		r.record(c)
	}
}

// record adds the names c describes.
func (r *Registry) record(c prometheus.Collector) {
	ch := make(chan *prometheus.Desc, 16)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
			r.names = append(r.names, m[1])
		}
	}
}

// Names returns the names registered, sorted.
func (r *Registry) Names() []string {
	out := slices.Clone(r.names)
	slices.Sort(out)
	return slices.Compact(out)
}

// Check gathers reg, which must have at least one series of every metric
// registered (the test makes them), and requires that promlint finds no
// problem and that the metrics whose names begin with section are exactly
// those of the document's section of that prefix, with the same type and
// label names.
func Check(t testing.TB, reg *Registry, section string) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)

	gathered := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		gathered[mf.GetName()] = mf
	}
	for _, n := range reg.Names() {
		require.Contains(t, gathered, n, "%s is registered but has no series: the test must make one", n)
	}

	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	require.NoError(t, err)
	require.Empty(t, problems, "promlint")

	doc := Document(t)
	var want, got []string
	for n, e := range doc {
		if e.Section == section {
			want = append(want, n)
		}
	}
	for n, mf := range gathered {
		if !strings.HasPrefix(n, section) || inOtherSection(doc, n, section) {
			continue
		}
		got = append(got, n)
		e, ok := doc[n]
		if !ok {
			continue // reported by the comparison below
		}
		require.Equal(t, e.Type, strings.ToLower(mf.GetType().String()), "type of %s in docs/metrics.md", n)
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
			sort.Strings(labels)
			require.Equal(t, e.Labels, labels, "labels of %s in docs/metrics.md", n)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	require.Equal(t, want, got, "metrics of section %s* in docs/metrics.md and registered", section)
}

// inOtherSection reports whether name belongs to a longer prefix than
// section (clientmanager_session_x is not in the clientmanager_ section).
func inOtherSection(doc map[string]Entry, name, section string) bool {
	if e, ok := doc[name]; ok {
		return e.Section != section
	}
	for _, e := range doc {
		if len(e.Section) > len(section) && strings.HasPrefix(e.Section, section) && strings.HasPrefix(name, e.Section) {
			return true
		}
	}
	return false
}
