package djangoclient

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSign signs a typical auth request body.
func BenchmarkSign(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"username":"alice","password":"alice-password","client_ip":"192.0.2.10","protocol":"ftp","session":"0123456789abcdef"}`)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		Sign(secret, PurposeAuth, now, body)
	}
}

// BenchmarkVerifyAnswer checks a typical signed auth answer.
func BenchmarkVerifyAnswer(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"ok":true,"username":"alice","home":"/srv/ftp/alice","perms":"elradfmwMT","welcome":"hi","quota_bytes":null,"max_sessions":null}`)
	now := time.Now()
	_, reqSig := Sign(secret, PurposeAuth, now, []byte("request"))
	ts, sig := SignAnswer(secret, PurposeAuth, now, reqSig, body)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyAnswer(secret, PurposeAuth, ts, sig, reqSig, body, now, MaxSkew); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEmitDurable is the cost an upload's 226 pays for its file_received event with a
// spool: one fsync alone (sequential), shared by everything queued meanwhile (parallel);
// syncs/op is the fsyncs per event.
func BenchmarkEmitDurable(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(fmt.Sprint("parallel=", parallel), func(b *testing.B) {
			c, err := New(Config{BaseURL: "http://127.0.0.1:1/ftp/", Secret: testSecret, HomeRoot: "/"}, nil)
			if err != nil {
				b.Fatal(err)
			}
			q, err := c.NewEventQueue(EventsConfig{SpoolDir: b.TempDir(), SpoolMaxBytes: 1 << 30, FlushInterval: time.Hour}, nil)
			if err != nil {
				b.Fatal(err)
			}
			var syncs atomic.Int64
			q.backlog.(*spoolBacklog).sp.syncFile = func(f *os.File) error {
				syncs.Add(1)
				return f.Sync()
			}
			b.ResetTimer()
			if parallel {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						q.Emit(testEvent(0))
					}
				})
			} else {
				for range b.N {
					q.Emit(testEvent(0))
				}
			}
			b.ReportMetric(float64(syncs.Load())/float64(b.N), "syncs/op")
		})
	}
}

// BenchmarkEncodeEvent is Emit's encoding of one of a login's four events (a login event
// as access.Emit stamps it).
func BenchmarkEncodeEvent(b *testing.B) {
	user := "alice"
	e := Event{ID: newEventID(), Type: EventLogin, Time: time.Now().UTC(), Session: "fe3da93525e41583",
		Username: &user, ClientIP: "127.0.0.1", Protocol: "ftp"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeEvent(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSpoolRead is the sender's read of one batch of 256 login events this process
// spooled (ns/op per batch; divide by 256 for an event).
func BenchmarkSpoolRead(b *testing.B) {
	s, err := openSpool(b.TempDir(), DefaultSpoolMaxBytes, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	user := "alice"
	lines := make([][]byte, 256)
	for i := range lines {
		e := Event{ID: newEventID(), Type: EventLogin, Time: time.Now().UTC(), Session: "fe3da93525e41583",
			Username: &user, ClientIP: "127.0.0.1", Protocol: "ftp"}
		if lines[i], err = encodeEvent(&e); err != nil {
			b.Fatal(err)
		}
	}
	if _, _, err := s.appendLines(lines); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if got, _, _, err := s.readLines(MaxBatchSize); err != nil || len(got) != len(lines) {
			b.Fatalf("read %d, %v", len(got), err)
		}
	}
}
