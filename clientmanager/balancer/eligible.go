package balancer

// eligible is one Pick's view of its candidates: those exclude lets
// through, in candidate order. Every policy filters through it, so
// "eligible" means the same everywhere. It holds no copy: each use walks
// candidates afresh and asks exclude again, so a Pick does not allocate,
// and a result may be missing (ok false) if exclude changes its answers
// during the Pick.
type eligible struct {
	candidates []int64
	exclude    func(int64) bool // nil: every candidate is eligible
}

// ok reports whether id is eligible.
func (e eligible) ok(id int64) bool { return e.exclude == nil || !e.exclude(id) }

// walker visits the eligible candidates once, starting at a given index
// of candidates and wrapping around.
type walker struct {
	e      eligible
	at, to int // the next position to try, and one past the last
}

// walk returns a walker that starts at candidates[off], off in
// [0, len(candidates)).
func (e eligible) walk(off int) walker {
	return walker{e: e, at: off, to: off + len(e.candidates)}
}

// next returns the next eligible candidate and its index in candidates;
// ok is false once every candidate was visited.
func (w *walker) next() (i int, id int64, ok bool) {
	n := len(w.e.candidates)
	for w.at < w.to {
		i = w.at
		if i >= n {
			i -= n
		}
		w.at++
		if id = w.e.candidates[i]; w.e.ok(id) {
			return i, id, true
		}
	}
	return 0, 0, false
}

// count returns the number of eligible candidates.
func (e eligible) count() int {
	if e.exclude == nil {
		return len(e.candidates)
	}
	n := 0
	for _, id := range e.candidates {
		if e.ok(id) {
			n++
		}
	}
	return n
}

// nth returns the index in candidates of the k-th (from 0) eligible
// candidate.
func (e eligible) nth(k int) (int, bool) {
	if e.exclude == nil {
		if k < len(e.candidates) {
			return k, true
		}
		return 0, false
	}
	for i, id := range e.candidates {
		if !e.ok(id) {
			continue
		}
		if k == 0 {
			return i, true
		}
		k--
	}
	return 0, false
}

// pair returns the indexes in candidates of the i-th and j-th (from 0)
// eligible candidates, in one pass.
func (e eligible) pair(i, j int) (a, b int, ok bool) {
	if e.exclude == nil {
		if i < len(e.candidates) && j < len(e.candidates) {
			return i, j, true
		}
		return 0, 0, false
	}
	k, found := 0, 0
	for x, id := range e.candidates {
		if !e.ok(id) {
			continue
		}
		switch k {
		case i:
			a, found = x, found+1
		case j:
			b, found = x, found+1
		}
		if found == 2 {
			return a, b, true
		}
		k++
	}
	return 0, 0, false
}
