//go:build race

package storage_test

// raceEnabled: the race detector's shadow memory inflates RSS, so memory bounds are
// logged, not enforced, under -race.
const raceEnabled = true
