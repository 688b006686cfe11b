//go:build race

package cache

// raceEnabled: under the race detector sync.Pool drops items at random, so allocation
// counts are not checked.
const raceEnabled = true
