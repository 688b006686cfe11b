package access

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWalkUsageIsBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 10 {
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte("12345"), 0o640)
	}
	tests := []struct {
		maxEntries   int
		budget       time.Duration
		wantTotal    int64
		wantComplete bool
	}{
		{100, time.Minute, 50, true},
		{11, time.Minute, 50, true}, // the directory itself is an entry
		{6, time.Minute, 25, false},
		{100, -time.Second, 0, false},
	}
	for _, tt := range tests {
		total, complete, err := walkUsage(os.DirFS(dir), tt.maxEntries, tt.budget)
		if err != nil || total != tt.wantTotal || complete != tt.wantComplete {
			t.Errorf("walkUsage(%d, %v) = %d, %v, %v; want %d, %v", tt.maxEntries, tt.budget, total, complete, err, tt.wantTotal, tt.wantComplete)
		}
	}
}
