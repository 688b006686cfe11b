//go:build race

package ftpdriver

// raceEnabled: the race detector changes frame sizes and memory; memory bounds are
// not enforced under -race.
const raceEnabled = true
