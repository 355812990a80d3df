//go:build race

package proctest

// RaceEnabled reports whether the test binary runs with the race
// detector; Builds then builds with -race too, reusing the packages the
// test binary was compiled with.
const RaceEnabled = true
