//go:build race

package startup

// raceEnabled makes the example binaries build with -race too, so they
// reuse the packages this test binary was compiled with.
const raceEnabled = true
