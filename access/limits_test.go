package access

import (
	"net/netip"
	"testing"
	"time"
)

func TestDefenderWindow(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	d := &defender{threshold: 3, window: time.Minute, banFor: 10 * time.Minute, now: func() time.Time { return now }}
	ip := netip.MustParseAddr("192.0.2.1")
	d.failed(ip)
	d.failed(ip)
	now = now.Add(2 * time.Minute) // the first two fall out of the window
	if d.failed(ip) || d.banned(ip) {
		t.Fatal("banned for failures outside the window")
	}
	d.failed(ip)
	if !d.failed(ip) || !d.banned(ip) {
		t.Fatal("not banned after 3 failures within the window")
	}
	now = now.Add(11 * time.Minute)
	if d.banned(ip) {
		t.Fatal("still banned after the ban time")
	}
	now = now.Add(time.Hour)
	d.failed(netip.MustParseAddr("192.0.2.2")) // sweeps
	if _, ok := d.hosts[ip]; ok {
		t.Fatal("expired record kept")
	}
}
