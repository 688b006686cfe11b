package storage

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkLocalHome is one login's home opening when the home already exists (every
// login but a user's first): what access.Core.openHome costs per cached login, with
// no other session of the home open, and with one (its root shared).
func BenchmarkLocalHome(b *testing.B) {
	for _, other := range []struct {
		name string
		open bool
	}{{"alone", false}, {"another_session_open", true}} {
		b.Run(other.name, func(b *testing.B) {
			dir := b.TempDir()
			l, err := NewLocal(dir, false)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			home := filepath.Join(dir, "alice")
			ctx := context.Background()
			if other.open {
				h, err := l.Home(ctx, home, true)
				if err != nil {
					b.Fatal(err)
				}
				defer h.Close()
			}
			b.ReportAllocs()
			for b.Loop() {
				h, err := l.Home(ctx, home, true)
				if err != nil {
					b.Fatal(err)
				}
				_ = h.Close()
			}
		})
	}
}
