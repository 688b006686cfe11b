package djangoclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func spoolLine(t testing.TB, i int) []byte {
	t.Helper()
	e := testEvent(i)
	e.Time = time.Unix(1_700_000_000, 0).UTC()
	b, err := encodeEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func idOf(t *testing.T, line []byte) string {
	t.Helper()
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// drain reads, and commits, everything in s, in batches; it returns the IDs in order.
func drain(t *testing.T, s *spool) []string {
	t.Helper()
	var ids []string
	for !s.empty() {
		lines, ends, _, err := s.readLines(MaxBatchSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) == 0 {
			continue
		}
		if n := batchLen(lines, len(lines)); n != len(lines) {
			t.Fatalf("readLines returned %d lines, only %d fit a body", len(lines), n)
		}
		for _, l := range lines {
			ids = append(ids, idOf(t, l))
		}
		s.commit(ends[len(ends)-1])
	}
	return ids
}

// TestSpoolAcrossSegmentsAndRestart: appends spread over many segments are read back in
// order across a reopen, committed batches are not read again, and a drained spool leaves no
// segment file.
func TestSpoolAcrossSegmentsAndRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 256<<10, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for range 20 {
		var lines [][]byte
		for range 37 {
			lines = append(lines, spoolLine(t, i))
			i++
		}
		if _, dropped, err := s.appendLines(lines); err != nil || dropped != 0 {
			t.Fatalf("appendLines: %d dropped, %v", dropped, err)
		}
	}
	if len(s.segs) < 4 {
		t.Fatalf("%d segments: want rotation", len(s.segs))
	}
	// Deliver two batches, then "crash" (no close) and reopen.
	for range 2 {
		_, ends, _, _ := s.readLines(100)
		s.commit(ends[len(ends)-1])
	}
	s2, err := openSpool(dir, 256<<10, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ids := drain(t, s2)
	if len(ids) != i-200 || ids[0] != "ev-000200" || ids[len(ids)-1] != fmt.Sprintf("ev-%06d", i-1) {
		t.Fatalf("after reopen read %d events %s..%s, want ev-000200..", len(ids), ids[0], ids[len(ids)-1])
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(m) != 0 {
		t.Fatalf("segments left after draining: %v", m)
	}
	// Appending after draining starts a fresh segment that a reopen reads.
	if _, _, err := s2.appendLines([][]byte{spoolLine(t, 5000)}); err != nil {
		t.Fatal(err)
	}
	s2.close()
	s3, err := openSpool(dir, 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if ids := drain(t, s3); len(ids) != 1 || ids[0] != "ev-005000" {
		t.Fatalf("read %v after drain and append", ids)
	}
}

// TestSpoolReadsOwnSegmentsAsWritten: what this process spooled is read back byte for byte
// as encodeEvent wrote it, with one allocation an event (the copy) rather than a decode and
// a second encoding (13 allocations an event before); a segment an earlier process left is
// still checked: its record that is no event is skipped, its event re-encoded.
func TestSpoolReadsOwnSegmentsAsWritten(t *testing.T) {
	dir := t.TempDir()
	old := appendRecord(appendRecord(nil, []byte("{not json\n")), spoolLine(t, 0))
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := openSpool(dir, DefaultSpoolMaxBytes, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	const n = 200
	var written [][]byte
	for i := 1; i <= n; i++ {
		written = append(written, spoolLine(t, i))
	}
	if _, _, err := s.appendLines(written); err != nil {
		t.Fatal(err)
	}
	lines, ends, corrupt, err := s.readLines(1)
	if err != nil || corrupt != 1 || len(lines) != 1 || !bytes.Equal(lines[0], spoolLine(t, 0)) {
		t.Fatalf("earlier segment: %q, %d corrupt, %v; want its one event, one corrupt record", lines, corrupt, err)
	}
	s.commit(ends[0])
	allocs := testing.AllocsPerRun(10, func() {
		if lines, _, _, err = s.readLines(MaxBatchSize); err != nil || len(lines) != n {
			t.Fatalf("read %d lines, %v; want %d", len(lines), err, n)
		}
	})
	for i, l := range lines {
		if !bytes.Equal(l, written[i]) {
			t.Fatalf("line %d read back as %q, written %q", i, l, written[i])
		}
	}
	perEvent := allocs / n
	t.Logf("%.2f allocations an event read back", perEvent)
	if perEvent > 1.5 {
		t.Errorf("%.1f allocations an event read back, want 1 (no decoding)", perEvent)
	}
}

// TestSpoolAppendKeepsItsBuffer: a batch's records are framed in a buffer the spool keeps,
// so an append allocates only the positions it returns (it allocated the buffer too).
func TestSpoolAppendKeepsItsBuffer(t *testing.T) {
	s, err := openSpool(t.TempDir(), DefaultSpoolMaxBytes, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var lines [][]byte
	for i := range 100 {
		lines = append(lines, spoolLine(t, i))
	}
	if _, _, err := s.appendLines(lines); err != nil { // opens the tail segment
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(10, func() {
		if _, _, err := s.appendLines(lines); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("appendLines: %v allocations, want 1 (the positions)", allocs)
	}
}

// TestSpoolBadOffsetReplaysAll: an unreadable offset file means at-least-once: everything is
// read again, with a WARN.
func TestSpoolBadOffsetReplaysAll(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(dir, 1<<20, slog.New(slog.DiscardHandler))
	_, _, _ = s.appendLines([][]byte{spoolLine(t, 0), spoolLine(t, 1)})
	_, ends, _, _ := s.readLines(1)
	s.commit(ends[0])
	s.close()
	if err := os.WriteFile(filepath.Join(dir, offsetFile), []byte("\x00\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s2, err := openSpool(dir, 1<<20, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if ids := drain(t, s2); strings.Join(ids, ",") != "ev-000000,ev-000001" {
		t.Fatalf("read %v", ids)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("no WARN for the bad offset:\n%s", logs.String())
	}
}

// TestSpoolMissingSegment: a segment deleted behind the spool's back is logged and skipped,
// it does not block the rest.
func TestSpoolMissingSegment(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(dir, 1<<20, slog.New(slog.DiscardHandler))
	_, _, _ = s.appendLines([][]byte{spoolLine(t, 0)})
	s.closeTail()
	_, _, _ = s.appendLines([][]byte{spoolLine(t, 1)})
	if err := os.Remove(s.segPath(s.segs[0].seq)); err != nil {
		t.Fatal(err)
	}
	if ids := drain(t, s); strings.Join(ids, ",") != "ev-000001" {
		t.Fatalf("read %v", ids)
	}
}

// TestSpoolBoundDropsOldestSegments: the disk usage never exceeds the bound; what is dropped
// is counted and is the oldest.
func TestSpoolBoundDropsOldestSegments(t *testing.T) {
	dir := t.TempDir()
	const bound = MinSpoolMaxBytes
	s, _ := openSpool(dir, bound, slog.New(slog.DiscardHandler))
	dropped, i := 0, 0
	for range 100 {
		var lines [][]byte
		for range 13 {
			lines = append(lines, spoolLine(t, i))
			i++
		}
		_, d, err := s.appendLines(lines)
		if err != nil {
			t.Fatal(err)
		}
		dropped += d
		if s.size() > bound {
			t.Fatalf("spool is %d bytes, bound %d", s.size(), bound)
		}
	}
	ids := drain(t, s)
	if dropped == 0 || len(ids)+dropped != i || ids[len(ids)-1] != fmt.Sprintf("ev-%06d", i-1) ||
		ids[0] != fmt.Sprintf("ev-%06d", dropped) {
		t.Fatalf("%d dropped, kept %d (%s..%s) of %d", dropped, len(ids), ids[0], ids[len(ids)-1], i)
	}
	// A single append larger than the whole spool keeps its newest events.
	huge := make([][]byte, 0, 1000)
	for j := range 1000 {
		huge = append(huge, spoolLine(t, j))
	}
	_, d, err := s.appendLines(huge)
	if err != nil || d == 0 || s.size() > bound {
		t.Fatalf("huge append: %d dropped, size %d, %v", d, s.size(), err)
	}
	if ids := drain(t, s); ids[len(ids)-1] != "ev-000999" || len(ids)+d != 1000 {
		t.Fatalf("huge append kept %d ending %s", len(ids), ids[len(ids)-1])
	}
}

// TestSpoolTornTail: a segment damaged anywhere (cut short, or one byte flipped) keeps, after
// a reopen, exactly its whole records before the damage; the rest is cut off, logged and
// counted, and opening never fails.
func TestSpoolTornTail(t *testing.T) {
	var seg []byte
	var ends []int
	for i := range 3 {
		seg = appendRecord(seg, spoolLine(t, i))
		ends = append(ends, len(seg))
	}
	kept := func(damage int) int { // whole records before byte damage
		n := 0
		for _, e := range ends {
			if e <= damage {
				n++
			}
		}
		return n
	}
	for at := 0; at <= len(seg); at++ {
		for _, flip := range []bool{false, true} {
			if flip && at == len(seg) {
				continue
			}
			data := slices.Clone(seg[:at])
			if flip {
				data = slices.Clone(seg)
				data[at] ^= 0x20
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			s, err := openSpool(dir, 1<<20, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("cut %d flip %v: open: %v", at, flip, err)
			}
			want := kept(at)
			ids := drain(t, s)
			if len(ids) != want {
				t.Fatalf("cut %d flip %v: read %v, want the %d whole records before the damage", at, flip, ids, want)
			}
			whole := at == len(seg) || (!flip && want > 0 && ends[want-1] == at) || (!flip && at == 0)
			if got := s.tornBytes; whole != (got == 0) || (!whole && !strings.Contains(logs.String(), "torn")) {
				t.Fatalf("cut %d flip %v: %d torn bytes counted, logs:\n%s", at, flip, got, logs.String())
			}
		}
	}
}

// FuzzSpoolSegment: any bytes after two whole records in a segment file never panic the
// reader nor make opening fail; the two records come back first, and everything returned
// is a valid event, encoded canonically, that fits in a request.
func FuzzSpoolSegment(f *testing.F) {
	f.Add(append(append([]byte{}, spoolLine(f, 1)...), spoolLine(f, 2)...))
	f.Add([]byte("{not json\n"))
	f.Add([]byte("null\n{}\n[]\n\"x\"\n"))
	f.Add([]byte(`{"id":"a","type":"login","time":"2024-01-01T00:00:00Z"}` + "\n"))
	f.Add([]byte(`{"ID":"a","TYPE":"login","time":"2024-01-01T00:00:00Z","bytes":1e400}` + "\n"))
	f.Add([]byte(`{"id":"a","type":"login","time":"10000-01-01T00:00:00Z"}` + "\n"))
	f.Add(bytes.Repeat([]byte("y"), maxLineBytes+5))
	line := spoolLine(f, 3)
	f.Add(line[:len(line)/2])
	f.Add([]byte("\n\n\r\n\x00\xff\n"))
	rec := appendRecord(nil, spoolLine(f, 4))
	f.Add(rec[:len(rec)-1])
	f.Add(rec[:5])
	f.Add(append(slices.Clone(rec), rec...))
	f.Add(appendRecord(nil, []byte("{not json\n")))
	f.Add(appendRecord(nil, []byte("null")))
	bad := slices.Clone(rec)
	bad[len(bad)/2] ^= 1
	f.Add(append(bad, rec...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	head := appendRecord(appendRecord(nil, spoolLine(f, 1)), spoolLine(f, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		seg := append(slices.Clone(head), data...)
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), seg, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := openSpool(dir, DefaultSpoolMaxBytes, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		var ids []string
		for rounds := 0; !s.empty(); rounds++ {
			if rounds > len(data)+1 {
				t.Fatal("reader makes no progress")
			}
			lines, ends, _, err := s.readLines(MaxBatchSize)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != len(ends) || batchLen(lines, len(lines)) != len(lines) {
				t.Fatalf("%d lines, %d ends, over a body", len(lines), len(ends))
			}
			for _, l := range lines {
				var e Event
				if err := json.Unmarshal(l, &e); err != nil {
					t.Fatalf("returned line %q: %v", l, err)
				}
				if err := validEvent(&e); err != nil {
					t.Fatalf("returned invalid event %q: %v", l, err)
				}
				again, err := encodeEvent(&e)
				if err != nil || !bytes.Equal(again, l) {
					t.Fatalf("line %q is not canonical (%q, %v)", l, again, err)
				}
				ids = append(ids, e.ID)
			}
			if len(ends) > 0 {
				s.commit(ends[len(ends)-1])
			}
		}
		if len(ids) < 2 || ids[0] != "ev-000001" || ids[1] != "ev-000002" {
			t.Fatalf("the whole records before the fuzzed bytes were not kept: %v", ids)
		}
	})
}

// TestSpoolConvertsLegacySegments: segments an earlier djftpd wrote (one JSON event per line)
// are converted at open: the events after the saved offset are replayed in order, an invalid
// line is dropped and counted, and nothing is cut off as torn.
func TestSpoolConvertsLegacySegments(t *testing.T) {
	dir := t.TempDir()
	first := string(spoolLine(t, 0))
	seg1 := first + string(spoolLine(t, 1)) + "{not json\n" + string(spoolLine(t, 2))
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), []byte(seg1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000002.seg"), spoolLine(t, 3), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, offsetFile), fmt.Appendf(nil, "1 %d\n", len(first)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := openSpool(dir, 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if s.corruptAtOpen != 1 || s.tornBytes != 0 {
		t.Fatalf("%d invalid lines counted, %d torn bytes; want 1 and 0", s.corruptAtOpen, s.tornBytes)
	}
	if ids := drain(t, s); strings.Join(ids, ",") != "ev-000001,ev-000002,ev-000003" {
		t.Fatalf("read %v after converting", ids)
	}
}
