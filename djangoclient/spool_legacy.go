package djangoclient

import (
	"bytes"
	"fmt"
	"os"
)

// convertLegacy rewrites a segment written by an earlier djftpd (one JSON event per line, no
// framing) as records, so that an upgrade keeps the events it left behind. A record header
// starts with a zero byte (lengths stay under 64 KiB), a legacy segment with '{'. Only what
// lies after the read position is kept (the saved offset counted legacy bytes); lines that
// are not a valid event are dropped and counted. On failure the segment is left as it is,
// and cutTornTail then drops it as damaged.
func (s *spool) convertLegacy(seg *segment) error {
	path := s.segPath(seg.seq)
	raw, err := os.ReadFile(path)
	if err != nil || len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	if seg.seq == s.read.seq {
		raw = raw[min(s.read.off, int64(len(raw))):]
	}
	var out []byte
	events, skipped := 0, 0
	for l := range bytes.Lines(raw) {
		line, err := canonicalLine(l, nil)
		if err != nil {
			skipped++
			continue
		}
		out = appendRecord(out, line)
		events++
	}
	if err := s.replaceFile(path, out); err != nil {
		return fmt.Errorf("convert spool segment %d: %w", seg.seq, err)
	}
	seg.size = int64(len(out))
	if seg.seq == s.read.seq {
		s.read.off = 0
	}
	s.corruptAtOpen += skipped
	s.log.Info("event spool: converted a segment written by an earlier version",
		"segment", seg.seq, "events", events, "skipped", skipped)
	return nil
}

// replaceFile replaces path with data durably: temp file, fsync, rename, directory fsync.
func (s *spool) replaceFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = s.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(s.dir)
}
