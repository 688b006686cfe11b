package djangoclient

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

// canonical is what the spool's reader sends for e: encoding/json's encoding of the event
// decoded from json.Marshal(e) (canonicalLine), or Marshal's error.
func canonical(t *testing.T, e *Event) ([]byte, error) {
	t.Helper()
	first, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var back Event
	if err := json.Unmarshal(first, &back); err != nil {
		t.Fatalf("decode %q: %v", first, err)
	}
	again, err := json.Marshal(&back)
	if err != nil {
		t.Fatalf("encode %q again: %v", first, err)
	}
	return again, nil
}

// checkAppendEvent: appendEvent writes the canonical bytes (and, for valid UTF-8 and a zone
// of whole minutes, exactly json.Marshal's), and fails where json.Marshal fails.
func checkAppendEvent(t *testing.T, e *Event) {
	t.Helper()
	want, wantErr := canonical(t, e)
	got, err := appendEvent(nil, e)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("appendEvent error %v, json.Marshal error %v", err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendEvent\n %q\nwant (canonical encoding/json)\n %q", got, want)
	}
	plain, _ := json.Marshal(e)
	_, offset := e.Time.Zone()
	valid := offset%60 == 0
	for _, p := range []*string{&e.ID, &e.Type, &e.Session, &e.ClientIP, &e.Protocol, e.Username, e.Path, e.ToPath} {
		valid = valid && (p == nil || utf8.ValidString(*p)) // each apart: "\xc4"+"\xb0" is valid
	}
	if valid && err == nil && !bytes.Equal(got, plain) {
		t.Fatalf("valid UTF-8, whole-minute zone: appendEvent\n %q\njson.Marshal\n %q", got, plain)
	}
}

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	s := func(v string) *string { return &v }
	n := func(v int64) *int64 { return &v }
	at := time.Date(2026, 12, 2, 3, 12, 58, 531_000_000, time.UTC)
	tests := []struct {
		name string
		e    Event
	}{
		{"login, nulls", Event{ID: "0123abcd", Type: EventLogin, Time: at, Session: "fe3da935", ClientIP: "127.0.0.1", Protocol: "ftp"}},
		{"no protocol", Event{ID: "x", Type: EventConnect, Time: at, ClientIP: "::1"}},
		{"every field", Event{ID: "id", Type: EventFileRenamed, Time: at, Session: "s", Username: s("alice"),
			ClientIP: "192.0.2.1", Path: s("/a b/ü.txt"), ToPath: s("/c"), Bytes: n(-1 << 63), DurationMS: n(1<<63 - 1), Protocol: "sftp"}},
		{"escapes", Event{ID: "\"\\/\b\f\n\r\t\x00\x1f\x7f", Type: "<script>&", Time: at, Path: s("\u2028\u2029\u2027 €😀")}},
		{"not UTF-8", Event{ID: "a\xffb", Type: EventLogin, Time: at, Path: s("\xc3\x28\xe2\x82\xed\xa0\x80\xf0\x9f\x98"), Username: s("\x80")}},
		{"U+FFFD itself", Event{ID: "\ufffd", Type: EventLogin, Time: at}},
		{"nanoseconds, other zone", Event{ID: "z", Type: EventLogin, Time: time.Date(1, 2, 3, 4, 5, 6, 7, time.FixedZone("", -(23*3600+59*60)))}},
		{"zone seconds", Event{ID: "z", Type: EventLogin, Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600+30))}},
		{"year 10000", Event{ID: "y", Type: EventLogin, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"year -1", Event{ID: "y", Type: EventLogin, Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"zone 24 h", Event{ID: "y", Type: EventLogin, Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkAppendEvent(t, &tt.e)
		})
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("0123abcd", "login", int64(1_764_645_178_531_000_000), 0, "fe3da935", "alice", "127.0.0.1", "/a", "", int64(7), "ftp", uint8(0))
	f.Add("a\xffb<>&", "x\u2028", int64(-9_000_000_000_000_000_000), -3600, "\x00\t", "\xed\xa0\x80", "::1", "\xf0\x9f\x98", "\u2029", int64(-1), "", uint8(0xff))
	f.Fuzz(func(t *testing.T, id, typ string, unixNano int64, zone int, session, user, ip, path, to string, n int64, proto string, nulls uint8) {
		e := Event{ID: id, Type: typ, Time: time.Unix(0, unixNano).In(time.FixedZone("", zone%(26*3600))),
			Session: session, ClientIP: ip, Protocol: proto}
		if nulls&1 == 0 {
			e.Username = &user
		}
		if nulls&2 == 0 {
			e.Path = &path
		}
		if nulls&4 == 0 {
			e.ToPath = &to
		}
		if nulls&8 == 0 {
			e.Bytes = &n
		}
		if nulls&16 == 0 {
			e.DurationMS = &n
		}
		checkAppendEvent(t, &e)
	})
}

// TestEncodeEventOneAllocation: Emit encodes an event into one buffer sized for it
// (json.Marshal took 3 allocations and its reflection walk: ~3.5 µs of each login's 4 events).
func TestEncodeEventOneAllocation(t *testing.T) {
	e := testEvent(1)
	e.Time = time.Now().UTC()
	if allocs := testing.AllocsPerRun(100, func() {
		if _, err := encodeEvent(&e); err != nil {
			t.Fatal(err)
		}
	}); allocs != 1 {
		t.Errorf("encodeEvent: %v allocations, want 1", allocs)
	}
}
