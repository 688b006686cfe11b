package access

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

type sinkFunc func(djangoclient.Event)

func (f sinkFunc) Emit(e djangoclient.Event) { f(e) }

func TestEmitStampsSession(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	u := &User{grant: djangoclient.Grant{Username: "alice"}}
	for _, c := range []struct {
		user *User
		want string
	}{{nil, ""}, {u, "alice"}} {
		var got djangoclient.Event
		Emit(sinkFunc(func(e djangoclient.Event) { got = e }), djangoclient.Event{Type: djangoclient.EventLogin}, "s1", ip, c.user)
		name := ""
		if got.Username != nil {
			name = *got.Username
		}
		if got.Session != "s1" || got.ClientIP != "192.0.2.7" || got.Time.IsZero() || name != c.want {
			t.Errorf("Emit = %+v (user %q), want session s1, client 192.0.2.7, a time, user %q", got, name, c.want)
		}
	}
}

func TestTransferEvent(t *testing.T) {
	started := time.Now().Add(-time.Second)
	for _, c := range []struct {
		err  error
		want string
	}{{nil, djangoclient.EventFileSent}, {errors.New("reset"), djangoclient.EventIncompleteFileSent}} {
		e := TransferEvent(djangoclient.EventFileSent, djangoclient.EventIncompleteFileSent, "/f", 5, started, c.err)
		if e.Type != c.want || *e.Path != "/f" || *e.Bytes != 5 || *e.DurationMS < 1000 {
			t.Errorf("TransferEvent(err %v) = %+v, want %s of /f, 5 bytes, ≥ 1000 ms", c.err, e, c.want)
		}
	}
}
