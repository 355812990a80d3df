package opsdoc

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/clientmanager/bulkhead"
	"github.com/coordkit/clientmanager/retry"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

// section is one table of docs/operations.md and the config it documents.
type section struct {
	config any
	// elsewhere lists the exported fields the table leaves out, and why.
	elsewhere map[string]string
	// render overrides the rendering of some fields' defaults.
	render map[string]func(v reflect.Value) string
}

func sections() map[string]section {
	return map[string]section{
		"session.Config": {
			config: session.DefaultConfig(),
			render: map[string]func(reflect.Value) string{
				"Retry": func(v reflect.Value) string {
					p := v.Interface().(retry.Policy)
					return fmt.Sprintf("%d attempts, %s", p.Attempts, backoff(p.Backoff))
				},
			},
		},
		"session.WatchConfig": {
			config:    session.DefaultWatchConfig("querynode"),
			elsewhere: map[string]string{"Role": "the argument of DefaultWatchConfig"},
		},
		"clientmanager.Config": {
			config:    clientmanager.DefaultConfig(),
			elsewhere: map[string]string{"SessionConfig": "the session.Config table (checked equal below)"},
			render: map[string]func(reflect.Value) string{
				"Balancer":    func(v reflect.Value) string { return balancerName(v.Interface().(balancer.Config)) },
				"Breaker":     func(v reflect.Value) string { return breakerDefaults(v.Interface().(breaker.Config)) },
				"Bulkhead":    func(v reflect.Value) string { return bulkheadDefaults(v.Interface().(bulkhead.Config)) },
				"RetryBudget": func(v reflect.Value) string { return budgetDefaults(v.Interface().(clientmanager.RetryBudget)) },
			},
		},
		"startup.Config": {
			config: startup.DefaultConfig(),
			elsewhere: map[string]string{
				"Session":       "the component's own session: no default",
				"SessionConfig": "the session.Config table (checked equal below)",
			},
		},
	}
}

// The sub-configs documented in another table are the same defaults.
func TestSharedDefaultsAreTheSame(t *testing.T) {
	require.Equal(t, session.DefaultConfig(), clientmanager.DefaultConfig().SessionConfig)
	require.Equal(t, session.DefaultConfig(), startup.DefaultConfig().SessionConfig)
}

// Every row of docs/operations.md's default tables gives the default that
// DefaultConfig returns, and every field of those configs has a row.
func TestOperationsDocDefaults(t *testing.T) {
	rows := parseTables(t, filepath.Join("..", "..", "docs", "operations.md"))
	secs := sections()
	for name, sec := range secs {
		t.Run(name, func(t *testing.T) {
			doc, ok := rows[name]
			require.True(t, ok, "docs/operations.md has no table headed (`%s`)", name)
			cfg := reflect.ValueOf(sec.config)
			documented := map[string]bool{}
			for _, r := range doc {
				want := strings.Split(r.value, r.sep)
				if r.sep == "" || len(r.fields) == 1 {
					want = []string{r.value}
				}
				require.Len(t, want, len(r.fields), "row %v: one default per field, separated by %q", r.fields, r.sep)
				for i, f := range r.fields {
					fv := cfg.FieldByName(f)
					require.True(t, fv.IsValid(), "row %v: %s has no field %s", r.fields, name, f)
					documented[f] = true
					got := renderField(sec, f, fv)
					require.True(t, matches(want[i], got),
						"docs/operations.md, %s.%s: the table says %q, DefaultConfig gives %q", name, f, want[i], got)
				}
			}
			for i := range cfg.NumField() {
				f := cfg.Type().Field(i)
				if !f.IsExported() || sec.elsewhere[f.Name] != "" {
					continue
				}
				require.True(t, documented[f.Name], "%s.%s has no row in docs/operations.md", name, f.Name)
			}
		})
	}
}

// matches reports whether a table cell gives want: the cell is want, or
// want followed by ": explanation" or " (explanation)". Case is ignored:
// the tables name an enum's Go constant (Reregister), String gives
// "reregister".
func matches(cell, want string) bool {
	cell, want = strings.ToLower(cell), strings.ToLower(want)
	return cell == want || strings.HasPrefix(cell, want+": ") || strings.HasPrefix(cell, want+" (")
}

// row is one row of a default table: the fields named in its first cell
// (`A` × `B`, `A` / `B`), their separator and the default cell.
type row struct {
	fields []string
	sep    string
	value  string
}

var (
	headingRE = regexp.MustCompile("^## .*\\(`([A-Za-z.]+)`\\)")
	fieldRE   = regexp.MustCompile("`([A-Za-z]+)`")
)

// parseTables returns the rows of every table under a heading that names
// a config, such as "## Sessions (`session.Config`)".
func parseTables(t *testing.T, path string) map[string][]row {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	out := map[string][]row{}
	current := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			current = ""
			if m := headingRE.FindStringSubmatch(line); m != nil {
				current = m[1]
			}
			continue
		}
		if current == "" || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		require.GreaterOrEqual(t, len(cells), 4, "malformed row: %s", line)
		r := row{value: strings.ReplaceAll(strings.TrimSpace(cells[2]), "`", "")}
		for _, m := range fieldRE.FindAllStringSubmatch(cells[1], -1) {
			r.fields = append(r.fields, m[1])
		}
		switch {
		case strings.Contains(cells[1], "×"):
			r.sep = " × "
		case strings.Contains(cells[1], "/"):
			r.sep = " / "
		}
		out[current] = append(out[current], r)
	}
	require.NoError(t, sc.Err())
	return out
}

// renderField writes a field's default the way the tables do.
func renderField(sec section, name string, v reflect.Value) string {
	if r := sec.render[name]; r != nil {
		return r(v)
	}
	return render(v)
}

func render(v reflect.Value) string {
	if s, ok := v.Interface().(fmt.Stringer); ok && v.Kind() != reflect.Struct {
		if d, isDur := v.Interface().(time.Duration); isDur {
			return duration(d)
		}
		return s.String()
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int32, reflect.Int64:
		return integer(v.Int())
	case reflect.Float64:
		return number(v.Float())
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Func:
		if v.IsNil() {
			return "none"
		}
	case reflect.Struct:
		if b, ok := v.Interface().(retry.Backoff); ok {
			return backoff(b)
		}
	}
	return fmt.Sprintf("%v", v.Interface())
}

// backoff writes a backoff as "100 ms × 1.6 ≤ 3 s, full jitter".
func backoff(b retry.Backoff) string {
	s := fmt.Sprintf("%s × %s ≤ %s", duration(b.Initial), number(b.Multiplier), duration(b.Max))
	switch j := b.Jitter; j {
	case 1:
		return s + ", full jitter"
	case 0:
		return s
	default:
		return s + ", jitter " + number(j)
	}
}

func balancerName(c balancer.Config) string {
	switch c.Policy {
	case balancer.PolicyPowerOfTwo:
		return "power of two choices"
	case balancer.PolicyRoundRobin:
		return "round robin"
	case balancer.PolicyLookAside:
		return "look-aside"
	}
	return string(c.Policy)
}

func breakerDefaults(c breaker.Config) string {
	doubling := "×2"
	if c.BreakDurationFunc != nil {
		doubling = "(BreakDurationFunc)"
	}
	return fmt.Sprintf("%d in a row, or ≥ %s %% of ≥ %d calls in %s; %s break %s ≤ %s, %s %% jitter, %d probes, %s probe lease",
		c.ConsecutiveFailures, number(c.FailureRatio*100), c.MinimumThroughput, duration(c.Window),
		duration(c.BreakDuration), doubling, duration(c.MaxBreakDuration), number(c.BreakJitter*100),
		c.HalfOpenProbes, duration(c.ProbeLease))
}

func bulkheadDefaults(c bulkhead.Config) string {
	return fmt.Sprintf("%d concurrent, %d queued, %s wait", c.MaxConcurrent, c.MaxQueue, duration(c.MaxWait))
}

func budgetDefaults(b clientmanager.RetryBudget) string {
	return fmt.Sprintf("%s %% of calls in %s, + %s/s floor", number(b.Ratio*100), duration(b.Window), number(b.MinPerSecond))
}

// duration writes d as the tables do: "100 ms", "15 s", "60 s", "10 min",
// "0".
func duration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d >= 5*time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%d s", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%d ms", d/time.Millisecond)
	}
	return d.String()
}

// integer writes n with thousands separated by commas from 10,000 on.
func integer(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 10000 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// number writes x without float noise: 0.2 × 100 is "20".
func number(x float64) string {
	return strconv.FormatFloat(math.Round(x*1e6)/1e6, 'g', -1, 64)
}

func TestRenderers(t *testing.T) {
	require.Equal(t, "100 ms", duration(100*time.Millisecond))
	require.Equal(t, "10 min", duration(10*time.Minute))
	require.Equal(t, "90 s", duration(90*time.Second))
	require.Equal(t, "60 s", duration(time.Minute))
	require.Equal(t, "1500 ms", duration(1500*time.Millisecond))
	require.Equal(t, "1.5µs", duration(1500*time.Nanosecond))
	require.Equal(t, "10,000", integer(10000))
	require.Equal(t, "1234", integer(1234))
	require.Equal(t, "1,234,567", integer(1234567))
	require.Equal(t, "20", number(0.2*100))
	require.True(t, matches("0: max(1 s, TTL/10)", "0"))
	require.True(t, matches(`"" (all)`, `""`))
	require.True(t, matches("Reregister", "reregister"))
	require.False(t, matches("30 s", "3"))
}
