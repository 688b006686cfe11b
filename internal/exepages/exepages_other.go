//go:build !linux

package exepages

import (
	"errors"
	"runtime"
)

// Release is Linux only; elsewhere it does nothing.
func Release() (Result, error) {
	return Result{}, errors.New("releasing the executable's pages: not supported on " + runtime.GOOS)
}
