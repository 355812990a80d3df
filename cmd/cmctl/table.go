package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
)

// table writes aligned columns: a header, then rows, then flush. Every
// line starts with indent.
type table struct {
	tw     *tabwriter.Writer
	indent string
}

func newTable(w io.Writer, indent string, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0), indent: indent}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.tw, t.indent+strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// writeSessions prints sessions as a table, in the given order.
func writeSessions(w io.Writer, ss []session.Session) error {
	t := newTable(w, "", "ROLE", "SERVER ID", "ADDRESS", "VERSION", "LEASE", "STOPPING", "EXCLUSIVE")
	for _, s := range ss {
		t.row(s.ServerName, strconv.FormatInt(s.ServerID, 10), orDash(s.Address), orDash(s.Version),
			leaseString(s.LeaseID), strconv.FormatBool(s.Stopping), strconv.FormatBool(s.Exclusive))
	}
	return t.flush()
}

// writeStatus prints the manager's view of its nodes, indented by indent.
func writeStatus(w io.Writer, indent string, st []clientmanager.NodeStatus, now time.Time) error {
	t := newTable(w, indent, "NODE", "ROLE", "ADDRESS", "STATE", "FOR", "BREAKER", "IN-FLIGHT", "LATENCY", "LAST ERROR")
	for _, n := range st {
		since := "-"
		if !n.Since.IsZero() {
			since = now.Sub(n.Since).Round(time.Millisecond).String()
		}
		latency := "-"
		if n.LatencyEWMA > 0 {
			latency = n.LatencyEWMA.Round(time.Microsecond).String()
		}
		lastErr := n.LastError
		if lastErr == "" {
			lastErr = n.LastFailureError
		}
		t.row(strconv.FormatInt(n.NodeID, 10), n.Role, orDash(n.Address), n.State.String(), since,
			n.Breaker.String(), strconv.FormatInt(n.InFlight, 10), latency, orDash(truncate(lastErr, 60)))
	}
	return t.flush()
}

// leaseString prints a lease ID in hexadecimal, as etcdctl does.
func leaseString(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 16)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
