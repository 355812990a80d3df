package debughttp

import (
	"github.com/cockroachdb/errors"
	"time"
)

// Config tunes a Handler. Start from DefaultConfig; New calls Validate.
type Config struct {
	// Title heads the status page, such as the process's name. Default
	// "clientmanager".
	Title string
	// PollInterval is how often the Handler reads the manager's Status to
	// record node and breaker changes as events. Default 250 ms. Zero
	// starts no goroutine: changes are recorded only when the JSON or the
	// page is requested. Must be ≥ 0.
	PollInterval time.Duration
	// Events is how many recent events are kept, newest first. Default 50.
	// Must be ≥ 1.
	Events int
	// Refresh is how often the status page polls the JSON. Default 1 s.
	// Must be ≥ 100 ms.
	Refresh time.Duration
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config {
	return Config{
		Title:        "clientmanager",
		PollInterval: 250 * time.Millisecond,
		Events:       50,
		Refresh:      time.Second,
	}
}

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	switch {
	case c.PollInterval < 0:
		return errors.Newf("debughttp: PollInterval (%s) must be ≥ 0", c.PollInterval)
	case c.Events < 1:
		return errors.Newf("debughttp: Events (%d) must be ≥ 1", c.Events)
	case c.Refresh < 100*time.Millisecond:
		return errors.Newf("debughttp: Refresh (%s) must be ≥ 100ms", c.Refresh)
	}
	return nil
}
