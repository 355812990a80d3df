//go:build !race

package startup

const raceEnabled = false
