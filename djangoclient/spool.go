package djangoclient

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The spool is a directory of append-only segment files "<20-digit seq>.seg", each a run of
// records (record.go: length, CRC-32C, one JSON event), and a file "offset" holding
// "<seq> <byte offset>\n": the first byte not yet delivered. Segments below the offset's seq
// are delivered and deleted; a crash between writing the offset and deleting a segment only
// leaves a file that the next open deletes. A process never appends to a segment it did not
// create, so a record torn by a crash is the last of an older segment: openSpool cuts it off
// (keeping every whole record before it) and counts the bytes dropped.

const (
	segmentSuffix  = ".seg"
	offsetFile     = "offset"
	offsetTempFile = "offset.tmp"

	maxSegmentBytes = 4 << 20
	minSegmentBytes = 4 << 10
	maxCorruptLogs  = 10 // per read; more are summed up in one line

	// bodyOverhead is the length of `{"events":[` and `]}` around the comma-separated events.
	bodyOverhead = len(`{"events":[]}`)
	// maxLineBytes is the longest event line: one that alone fills a request body Django takes.
	maxLineBytes = MaxBodyBytes - bodyOverhead
	// fullBatchBytes is the size of event lines that make a full batch: one request body,
	// less the size of a typical event (~250 bytes), which would no longer fit.
	fullBatchBytes = MaxBodyBytes - bodyOverhead - 256
)

// spoolPos is a position in the spool: a byte offset inside segment seq.
type spoolPos struct {
	seq uint64
	off int64
}

func (p spoolPos) less(q spoolPos) bool {
	return p.seq < q.seq || (p.seq == q.seq && p.off < q.off)
}

type segment struct {
	seq  uint64
	size int64 // bytes written (by us) or found on disk
}

// spool is the on-disk FIFO of encoded events. It is not safe for concurrent use: its owner
// (spoolBacklog) guards it with a mutex. It never touches the network.
type spool struct {
	dir      string
	maxBytes int64 // bound on the sum of segment sizes
	segBytes int64 // rotate the tail once it reaches this size
	log      *slog.Logger
	// syncFile makes a write durable; tests count the calls.
	syncFile func(*os.File) error

	segs      []segment // ascending seq; the read position lies in segs[0]
	read      spoolPos  // first unread byte
	tail      *os.File  // open for appending to segs[len-1]; nil: next append starts a segment
	nextSeq   uint64
	tornBytes int64 // cut off torn or corrupt segment tails at open
	// corruptAtOpen counts lines of earlier versions' segments that were not a valid event.
	corruptAtOpen int
	// ownFrom is the first seq of the segments this process creates: their records hold
	// lines encodeEvent wrote (appendLines' callers), which are sent as they are.
	ownFrom uint64
	// reader (readSegment's) and wbuf (appendLines') are kept from one batch to the next:
	// allocated per batch they were a 32 KiB buffer and a batch's worth each time.
	reader *recordReader
	wbuf   []byte
}

// maxKeptWriteBuf bounds the write buffer a spool keeps: a burst's commit (up to QueueSize
// events) may need more once, and should not hold it.
const maxKeptWriteBuf = 256 << 10

// openSpool opens (creating it 0700 if needed) the spool in dir and recovers its state:
// segments already delivered are deleted, reading resumes at the saved offset, and a torn or
// corrupt tail of a segment is cut off (logged, counted in tornBytes). A missing or
// unreadable offset file means reading from the oldest segment (at-least-once). Damage never
// makes it fail; only a directory it cannot create or list does.
func openSpool(dir string, maxBytes int64, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool dir: %w", err)
	}
	s := &spool{
		dir:      dir,
		maxBytes: maxBytes,
		segBytes: min(max(maxBytes/8, minSegmentBytes), maxSegmentBytes),
		log:      log,
		syncFile: (*os.File).Sync,
	}
	if err := s.listSegments(); err != nil {
		return nil, err
	}
	saved, err := s.loadOffset()
	if err != nil {
		log.Warn("spool offset unreadable, replaying the whole spool", "err", err)
	}
	if len(s.segs) > 0 {
		s.nextSeq = s.segs[len(s.segs)-1].seq + 1
	}
	s.nextSeq = max(s.nextSeq, saved.seq, 1)
	s.ownFrom = s.nextSeq
	// Drop what the saved offset says is delivered.
	for len(s.segs) > 0 && s.segs[0].seq < saved.seq {
		if err := s.removeSegment(s.segs[0].seq); err != nil {
			return nil, err
		}
		s.segs = s.segs[1:]
	}
	if len(s.segs) > 0 {
		s.read = spoolPos{seq: s.segs[0].seq}
		if s.segs[0].seq == saved.seq {
			s.read.off = min(saved.off, s.segs[0].size)
		}
	} else {
		s.read = spoolPos{seq: s.nextSeq}
	}
	for i := range s.segs {
		if err := s.convertLegacy(&s.segs[i]); err != nil {
			log.Error("event spool: cannot convert a segment of an earlier version", "err", err)
		}
		s.cutTornTail(&s.segs[i])
	}
	s.dropConsumed()
	return s, nil
}

// listSegments fills s.segs from the directory, in ascending seq.
func (s *spool) listSegments() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read spool dir: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat spool segment: %w", err)
		}
		s.segs = append(s.segs, segment{seq: seq, size: info.Size()})
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return cmp.Compare(a.seq, b.seq) })
	return nil
}

// cutTornTail checks the records of seg from the read position on and cuts the segment
// after its last whole record: a crash mid-append leaves a partial record, and nothing after
// a damaged record can be framed. The cut is logged at WARN and counted; if the file cannot
// be truncated, seg.size still ends reading there.
func (s *spool) cutTornTail(seg *segment) {
	from := int64(0)
	if seg.seq == s.read.seq {
		from = s.read.off
	}
	valid, err := wholeRecords(s.segPath(seg.seq), from, seg.size)
	if !errors.Is(err, errTornRecord) && !errors.Is(err, errCorruptRecord) {
		return // whole, or unreadable: readSegment reports that
	}
	s.log.Warn("event spool: dropped a torn or corrupt segment tail (a crash mid-write)",
		"segment", seg.seq, "offset", valid, "bytes", seg.size-valid, "err", err)
	s.tornBytes += seg.size - valid
	if terr := os.Truncate(s.segPath(seg.seq), valid); terr != nil {
		s.log.Error("event spool: cannot truncate a torn segment, reading stops before its tail", "err", terr)
	}
	seg.size = valid
}

// wholeRecords returns the end of the last whole record of the file at path in [from, size),
// and the damage that stopped the scan (nil when every byte is whole records).
func wholeRecords(path string, from, size int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return size, err // a missing segment is readSegment's to report
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return size, err
	}
	rr := newRecordReader(io.LimitReader(f, size-from))
	pos := from
	for {
		_, n, err := rr.next()
		if err == io.EOF {
			return pos, nil
		}
		if err != nil {
			return pos, err
		}
		pos += n
	}
}

func (s *spool) segPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, segmentSuffix))
}

func (s *spool) loadOffset() (spoolPos, error) {
	raw, err := os.ReadFile(filepath.Join(s.dir, offsetFile))
	if errors.Is(err, fs.ErrNotExist) {
		return spoolPos{}, nil
	}
	if err != nil {
		return spoolPos{}, fmt.Errorf("read spool offset: %w", err)
	}
	seqText, offText, ok := strings.Cut(strings.TrimSpace(string(raw)), " ")
	seq, err1 := strconv.ParseUint(seqText, 10, 64)
	off, err2 := strconv.ParseInt(offText, 10, 64)
	if !ok || err1 != nil || err2 != nil || off < 0 {
		return spoolPos{}, fmt.Errorf("spool offset %q: malformed", raw)
	}
	return spoolPos{seq: seq, off: off}, nil
}

// saveOffset replaces the offset file atomically (temp file, rename). It does not fsync: it
// runs after every delivered batch, and an offset lost to a power cut is only a stale one,
// which means events delivered again (Django drops them by ID), never events skipped.
func (s *spool) saveOffset() error {
	tmp := filepath.Join(s.dir, offsetTempFile)
	data := fmt.Appendf(nil, "%d %d\n", s.read.seq, s.read.off)
	err := os.WriteFile(tmp, data, 0o600)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, offsetFile))
	}
	if err != nil {
		return fmt.Errorf("save spool offset: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *spool) removeSegment(seq uint64) error {
	if s.tail != nil && seq == s.segs[len(s.segs)-1].seq {
		_ = s.tail.Close()
		s.tail = nil
	}
	if err := os.Remove(s.segPath(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove spool segment: %w", err)
	}
	return nil
}

// empty reports whether every spooled event has been read and committed.
func (s *spool) empty() bool {
	for _, seg := range s.segs {
		if seg.seq > s.read.seq || (seg.seq == s.read.seq && seg.size > s.read.off) {
			return false
		}
	}
	return true
}

// end is the position after the last spooled event.
func (s *spool) end() spoolPos {
	if len(s.segs) == 0 {
		return s.read
	}
	last := s.segs[len(s.segs)-1]
	return spoolPos{seq: last.seq, off: last.size}
}

// size is the disk usage of the segments, the quantity bounded by maxBytes.
func (s *spool) size() int64 {
	var n int64
	for _, seg := range s.segs {
		n += seg.size
	}
	return n
}

// appendLines writes lines (each a JSON event ending in '\n') at the end of the spool, one
// record each, in one write and one fsync. To respect maxBytes it first drops the oldest
// segments, then, if lines alone are too many, the oldest of lines. It returns the position
// after each written line (the written lines are the last len(ends) of lines) and how many
// events were dropped. On error nothing of lines is readable and dropped events stay dropped.
func (s *spool) appendLines(lines [][]byte) (ends []spoolPos, dropped int, err error) {
	var n int64
	for _, l := range lines {
		n += recordLen(l)
	}
	for len(lines) > 0 && n > s.maxBytes {
		n -= recordLen(lines[0])
		lines = lines[1:]
		dropped++
	}
	if dropped > 0 {
		s.log.Warn("event spool full: dropped the oldest events of a batch", "events", dropped)
	}
	if len(lines) == 0 {
		return nil, dropped, nil
	}
	if s.size()+n > s.maxBytes {
		s.closeTail() // even the current tail may have to go
		for len(s.segs) > 0 && s.size()+n > s.maxBytes {
			dropped += s.evictOldest()
		}
	}
	if s.tail == nil || s.segs[len(s.segs)-1].size >= s.segBytes {
		if err := s.rotate(); err != nil {
			return nil, dropped, err
		}
	}
	seg := &s.segs[len(s.segs)-1]
	buf := slices.Grow(s.wbuf[:0], int(n))
	if cap(buf) <= maxKeptWriteBuf {
		s.wbuf = buf[:0]
	}
	ends = make([]spoolPos, len(lines))
	pos := seg.size
	for i, l := range lines {
		buf = appendRecord(buf, l)
		pos += recordLen(l)
		ends[i] = spoolPos{seq: seg.seq, off: pos}
	}
	if err := s.writeTail(seg, buf); err != nil {
		return nil, dropped, err
	}
	seg.size = pos
	return ends, dropped, nil
}

// writeTail appends buf to the tail segment seg and makes it durable. On failure it takes
// the partial write back; if that fails too (or the fsync failed, after which the page
// cache cannot be trusted), it never appends to this file again: a torn record is cut off
// at the next open, and reading stops at seg.size meanwhile.
func (s *spool) writeTail(seg *segment, buf []byte) error {
	_, err := s.tail.Write(buf)
	if err != nil {
		if terr := s.tail.Truncate(seg.size); terr != nil {
			s.closeTail()
		}
		return fmt.Errorf("append to spool: %w", err)
	}
	if err := s.syncFile(s.tail); err != nil {
		_ = s.tail.Truncate(seg.size)
		s.closeTail()
		return fmt.Errorf("sync spool: %w", err)
	}
	return nil
}

func (s *spool) closeTail() {
	if s.tail != nil {
		_ = s.tail.Close()
		s.tail = nil
	}
}

// rotate starts a new tail segment.
func (s *spool) rotate() error {
	s.closeTail()
	seq := s.nextSeq
	f, err := os.OpenFile(s.segPath(seq), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create spool segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(s.segPath(seq))
		return fmt.Errorf("create spool segment: %w", err)
	}
	s.nextSeq++
	s.tail = f
	if len(s.segs) == 0 {
		s.read = spoolPos{seq: seq}
	}
	s.segs = append(s.segs, segment{seq: seq})
	return nil
}

// evictOldest deletes the oldest segment to make room and returns how many unread events it
// held; they are logged at WARN.
func (s *spool) evictOldest() int {
	seg := s.segs[0]
	from := int64(0)
	if seg.seq == s.read.seq {
		from = s.read.off
	}
	lost := countRecords(s.segPath(seg.seq), from)
	if err := s.removeSegment(seg.seq); err != nil {
		s.log.Error("event spool: cannot delete a segment", "err", err)
	}
	s.segs = s.segs[1:]
	if len(s.segs) > 0 {
		s.read = spoolPos{seq: s.segs[0].seq}
	} else {
		s.read = spoolPos{seq: s.nextSeq}
	}
	if err := s.saveOffset(); err != nil {
		s.log.Error("event spool: cannot save the read offset", "err", err)
	}
	s.log.Warn("event spool full: dropped the oldest events", "events", lost, "segment", seg.seq)
	return lost
}

// countRecords counts the whole records of the file at path after offset from.
func countRecords(path string, from int64) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return 0
	}
	rr := newRecordReader(f)
	n := 0
	for {
		if _, _, err := rr.next(); err != nil {
			return n
		}
		n++
	}
}

// readBatch is what one readLines call collects.
type readBatch struct {
	limit   int // most events
	budget  int // bytes left in the request body
	lines   [][]byte
	ends    []spoolPos
	corrupt int
}

// readLines returns up to limit events from the read position without consuming them, each
// re-encoded from its parsed form and ending in '\n', with the position after each. It stops
// before the events would overflow one request body (batchLen), so nothing is read for
// nothing. Records that are not a valid event (bad JSON, unknown type, damaged) are logged,
// counted in corrupt and consumed when they come before every returned event; otherwise
// reading stops before them, so each is reported once.
func (s *spool) readLines(limit int) (lines [][]byte, ends []spoolPos, corrupt int, err error) {
	b := readBatch{limit: limit, budget: MaxBodyBytes - bodyOverhead + 1} // what batchLen accepts
	// Skipping a corrupt record may delete consumed segments from s.segs: walk a snapshot.
	for _, seg := range slices.Clone(s.segs) {
		if len(b.lines) >= limit {
			break
		}
		from := int64(0)
		if seg.seq == s.read.seq {
			from = s.read.off
		}
		if from >= seg.size {
			continue
		}
		stop, err := s.readSegment(seg, from, &b)
		if err != nil {
			return b.lines, b.ends, b.corrupt, err
		}
		if stop {
			break
		}
	}
	if b.corrupt > 0 {
		if b.corrupt > maxCorruptLogs {
			s.log.Warn("event spool: skipped more corrupt records", "records", b.corrupt-maxCorruptLogs)
		}
		s.dropConsumed() // save the offset past the skipped records, once
	}
	return b.lines, b.ends, b.corrupt, nil
}

// readSegment adds the events of seg from offset from to b; stop reports that b is full or
// that a corrupt record waits behind b's events.
func (s *spool) readSegment(seg segment, from int64, b *readBatch) (stop bool, err error) {
	f, err := os.Open(s.segPath(seg.seq))
	if errors.Is(err, fs.ErrNotExist) && len(b.lines) == 0 {
		// Deleted behind our back: nothing to replay from it, do not get stuck on it.
		s.log.Error("event spool: a segment disappeared, its events are lost", "segment", seg.seq)
		s.commit(spoolPos{seq: seg.seq, off: seg.size})
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("read spool: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return true, fmt.Errorf("read spool: %w", err)
	}
	if s.reader == nil {
		s.reader = newRecordReader(nil)
	}
	rr := s.reader
	rr.reset(io.LimitReader(f, seg.size-from))
	defer rr.reset(nil) // let go of f
	pos := from
	for len(b.lines) < b.limit {
		payload, n, rerr := rr.next()
		switch {
		case rerr == io.EOF:
			return false, nil
		case rerr != nil && !errors.Is(rerr, errTornRecord) && !errors.Is(rerr, errCorruptRecord):
			return true, rerr
		}
		line, verr := s.line(seg.seq, payload, rerr)
		if verr != nil {
			if len(b.lines) > 0 {
				return true, nil // report it when it is at the head
			}
			s.skipCorrupt(seg, pos, n, verr, b)
			if n == 0 {
				return false, nil // framing lost: the rest of the segment is skipped
			}
			pos += n
			continue
		}
		if len(line) > b.budget && len(b.lines) > 0 {
			return true, nil
		}
		pos += n
		b.budget -= len(line)
		b.lines = append(b.lines, line)
		b.ends = append(b.ends, spoolPos{seq: seg.seq, off: pos})
	}
	return true, nil
}

// skipCorrupt consumes a record of n bytes at pos that is not a valid event, or, when n is
// 0 (the framing is lost), the rest of seg.
func (s *spool) skipCorrupt(seg segment, pos, n int64, why error, b *readBatch) {
	b.corrupt++
	if b.corrupt <= maxCorruptLogs {
		s.log.Warn("event spool: skipping a corrupt record", "segment", seg.seq, "offset", pos, "err", why)
	}
	end := pos + n
	if n == 0 {
		end = seg.size
	}
	s.read = spoolPos{seq: seg.seq, off: end} // nothing before it is unread
}

// commit marks everything before p as delivered: the offset is saved and segments wholly
// before it are deleted. A p behind the read position (its segment was evicted meanwhile) is
// ignored.
func (s *spool) commit(p spoolPos) {
	if !s.read.less(p) {
		return
	}
	s.read = p
	s.dropConsumed()
}

// dropConsumed deletes fully read segments, saves the offset, and, once everything is read,
// deletes the last segment too so that the spool is empty on disk.
func (s *spool) dropConsumed() {
	var gone []uint64
	for len(s.segs) > 0 && (s.segs[0].seq < s.read.seq ||
		(s.segs[0].seq == s.read.seq && s.read.off >= s.segs[0].size)) {
		if s.segs[0].seq == s.read.seq { // read to its end: move to the next start
			if len(s.segs) == 1 {
				s.read = spoolPos{seq: s.nextSeq}
			} else {
				s.read = spoolPos{seq: s.segs[1].seq}
			}
		}
		if len(s.segs) == 1 {
			s.closeTail()
		}
		gone = append(gone, s.segs[0].seq)
		s.segs = s.segs[1:]
	}
	if err := s.saveOffset(); err != nil {
		// Keep the files: with the old offset on disk, a restart replays them (at-least-once).
		s.log.Error("event spool: cannot save the read offset", "err", err)
		return
	}
	for _, seq := range gone {
		if err := os.Remove(s.segPath(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("event spool: cannot delete a delivered segment", "err", err)
		}
	}
}

// close releases the tail file. The spool stays valid on disk.
func (s *spool) close() {
	s.closeTail()
}

// line returns the event line to send for a record of segment seq. A segment this process
// created holds lines encodeEvent wrote, already validated and canonical, and the record's
// checksum held: the line is sent as written (a copy: payload is the reader's buffer), not
// decoded and encoded again, which cost 4-5 µs an event. A segment from an earlier process
// (or version) is checked and re-encoded.
func (s *spool) line(seq uint64, payload []byte, readErr error) ([]byte, error) {
	if readErr == nil && seq >= s.ownFrom {
		return bytes.Clone(payload), nil
	}
	return canonicalLine(payload, readErr)
}

// canonicalLine validates one spooled record and returns its event's canonical encoding.
func canonicalLine(payload []byte, readErr error) ([]byte, error) {
	if readErr != nil {
		return nil, readErr
	}
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return encodeEvent(&e)
}
