//go:build !race

package ftpdriver

const raceEnabled = false
