package bulkhead

// Stats is a point-in-time view of a Bulkhead for status pages and metrics.
// InFlight and Queued are read together in one atomic load.
type Stats struct {
	MaxConcurrent int    // configured slots
	MaxQueue      int    // configured queue length
	InFlight      int    // slots in use now
	Queued        int    // callers waiting now
	Rejected      uint64 // calls turned away with ErrBulkheadFull, since New
	TimedOut      uint64 // calls that failed with ErrBulkheadTimeout, since New
	Canceled      uint64 // calls whose context ended before they got a slot, since New
}

// InFlight returns the number of slots in use.
func (b *Bulkhead) InFlight() int {
	return int(b.state.Load() & inFlightMask)
}

// Queued returns the number of callers waiting for a slot.
func (b *Bulkhead) Queued() int {
	return int(b.state.Load() >> 32)
}

// Stats returns a snapshot of the counters.
func (b *Bulkhead) Stats() Stats {
	s := b.state.Load()
	return Stats{
		MaxConcurrent: int(b.maxConcurrent),
		MaxQueue:      int(b.maxQueue),
		InFlight:      int(s & inFlightMask),
		Queued:        int(s >> 32),
		Rejected:      b.rejected.Load(),
		TimedOut:      b.timedOut.Load(),
		Canceled:      b.canceled.Load(),
	}
}
