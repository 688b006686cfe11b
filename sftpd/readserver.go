package sftpd

import (
	"cmp"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
)

// readServer serves the downloads of a local home itself, underneath pkg/sftp's request
// server, which sees every other packet unchanged.
//
// The request server hands each READ to a dispatcher, one of its eight workers, an ordering
// queue and a sender goroutine, and copies each reply once more to marshal it: four
// goroutine hand-offs per 32 KiB, which on a busy 2-core machine cost more than the read
// and the encryption together (a download took ~0.9 s of server CPU per 256 MiB beside
// OpenSSH's 0.7; bench/README.md). A download needs none of it: the replies to one handle's
// READs must come in order anyway. So a read-only OPEN in a local home is opened here,
// through the same handlers as the request server's (Fileread: the permission letter, the
// sandbox, the download event at close), under a handle of its own ("r" and a number; the
// request server's are plain numbers). READ and CLOSE on such a handle are answered here,
// in order, by the goroutine reading the requests; FSTAT and FSETSTAT become the STAT and
// SETSTAT of the file's path, which the request server answers as it would have (it does the
// same); WRITE and READDIR are refused. Anything readServer does not understand passes up
// whole, for the request server to answer as before. Its replies go between the request
// server's, never inside one.
type readServer struct {
	*batchWriter
	in    *batchReader // under batchWriter: the channel's reads
	h     *handlers
	local bool          // the home is a local directory (object-storage reads stay with the workers)
	hold  time.Duration // flushWhole's hold; 0: defaultTailHold
	// settle waits until the request server has answered every request passed up to it
	// (parkingChannel's count, waitResponses): an OPEN readServer serves comes after them, as
	// the request server's own single command worker would take it (a client may send CLOSE,
	// which renames an atomic upload into place, and OPEN the file at once, without waiting
	// for the CLOSE's status). Nil: no wait.
	settle func()

	// Owned by the goroutine reading requests.
	up   []byte // bytes of the current packet to pass up before reading on
	err  error  // the channel's error, returned once up is passed
	fwd  int    // bytes of the current packet still to pass up straight from the channel
	head [5 + 8 + maxHandle]byte
	pkt  []byte // a packet read whole, with its length and type
	seq  uint64 // the last handle number given
	// holdTail: the last reply was a full READ on a handle whose client pipelines, so more
	// replies follow shortly (flushWhole). heldFor: the file whose reply's rest is held.
	holdTail bool
	heldFor  *readFile
	lastRead *readFile // the file of the last READ answered

	fmu    sync.Mutex
	files  map[string]*readFile // handles given and not closed
	closed bool                 // the session ended: no more opens

	wmu   sync.Mutex
	wleft int    // bytes of the request server's response being written still to come
	held  []byte // replies held until it is written whole
}

// readFile is an open file of readServer's.
type readFile struct {
	rd   io.ReaderAt // the handlers' *reader
	path string      // the request's cleaned path, as the request server keeps it
	// strikes: replies whose rest was held in vain in a row (the client's next request came
	// only after the hold: it waited for that rest); from tailStrikes on, only every
	// tailProbe-th full reply's rest is held, to notice a client that pipelines again.
	strikes int
	full    int // full replies since strikes reached tailStrikes
}

// tailStrikes is how many holds in vain in a row stop holding on a file, but for a probe
// every tailProbe full replies: a client reading one request at a time waits 0.2 ms three
// times, then once every 64 replies (2 MiB).
const (
	tailStrikes = 3
	tailProbe   = 64
)

// holdsTail reports whether the rest of a full reply on f is held.
func (f *readFile) holdsTail() bool {
	if f.strikes < tailStrikes {
		return true
	}
	f.full++
	return f.full%tailProbe == 0
}

// defaultTailHold bounds how long the rest of a batch (less than a packet) waits for the
// next replies: a client pipelining its reads sends the next request within ~0.1 ms at
// 300 MB/s, and has many replies to read before the held one; a client reading one request
// at a time waits it out, tailStrikes times per file.
const defaultTailHold = 200 * time.Microsecond

// SFTP packet types and open flags readServer follows (draft-ietf-secsh-filexfer-02).
const (
	fxpRead     = 5
	fxpWrite    = 6
	fxpFstat    = 8
	fxpSetstat  = 9
	fxpFsetstat = 10
	fxpReaddir  = 12
	fxpStat     = 17
	fxpStatus   = 101
	fxpData     = 103

	fxfRead   = 0x01
	fxfWrite  = 0x02
	fxfAppend = 0x04
	fxfCreat  = 0x08
	fxfTrunc  = 0x10
)

const (
	// maxWhole is the largest packet readServer reads whole to decide (an OPEN's path up to
	// ~8 KiB); a larger one passes up as it comes.
	maxWhole = 8 << 10
	// maxHandle is the longest handle readServer looks at in a WRITE.
	maxHandle = 64
	// maxRead is the most data one READ reply carries, as the request server's default.
	maxRead = 32 << 10
	// dataHead is a DATA reply's bytes before its data: length, type, id, data length.
	dataHead = 4 + 1 + 4 + 4
)

func newReadServer(in *batchReader, h *handlers, local bool) *readServer {
	return &readServer{batchWriter: newBatchWriter(in), in: in, h: h, local: local, files: map[string]*readFile{}}
}

// Read gives the request server the client's packets that readServer does not answer.
func (s *readServer) Read(p []byte) (int, error) {
	for len(s.up) == 0 && s.fwd == 0 {
		if s.err == nil {
			s.err = s.next()
		}
		if s.err != nil && len(s.up) == 0 {
			s.closeFiles()
			return 0, s.err
		}
	}
	if len(s.up) > 0 {
		n := copy(p, s.up)
		s.up = s.up[n:]
		return n, nil
	}
	n, err := s.batchWriter.Read(p[:min(len(p), s.fwd)])
	s.fwd -= n
	if err != nil {
		s.fwd, s.err = 0, unexpected(err)
		s.closeFiles()
		return n, s.err
	}
	return n, nil
}

// next reads the start of the next packet and either answers it or sets it to pass up.
// The bytes of a packet cut short by the channel's end pass up before its error.
func (s *readServer) next() error {
	if !s.in.buffered() { // the replies gathered go before waiting for the client
		if s.holdTail && s.flushWhole(cmp.Or(s.hold, defaultTailHold)) {
			s.heldFor = s.lastRead
		} else {
			s.flushHere()
		}
	}
	if err := s.readHead(0, 4); err != nil {
		return err
	}
	if f := s.heldFor; f != nil { // the client's next request: did it wait for the rest?
		s.heldFor = nil
		if s.tailRanOut() {
			f.strikes++
		} else {
			f.strikes, f.full = 0, 0
		}
	}
	size := int(binary.BigEndian.Uint32(s.head[:4]))
	if size == 0 { // the request server ends the session on it, unanswered
		s.up = s.head[:4]
		return nil
	}
	if err := s.readHead(4, 5); err != nil {
		return err
	}
	typ, mine := s.head[4], s.holding()
	switch {
	case size <= maxWhole && (typ == fxpOpen && s.local || mine && handleTyped(typ)):
		return s.whole(size)
	case mine && typ == fxpWrite:
		return s.write(size)
	}
	s.up, s.fwd = s.head[:5], size-1
	return nil
}

// readHead reads head[from:to]; cut short, what was read of the packet passes up.
func (s *readServer) readHead(from, to int) error {
	n, err := io.ReadFull(s.batchWriter, s.head[from:to])
	if err != nil {
		s.up = s.head[:from+n]
		if from > 0 {
			return unexpected(err)
		}
	}
	return err
}

// holding reports whether any handle of readServer's is open.
func (s *readServer) holding() bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return len(s.files) > 0
}

// handleTyped: packets of these types name a handle first, and readServer reads them whole.
func handleTyped(typ byte) bool {
	switch typ {
	case fxpRead, fxpClose, fxpFstat, fxpFsetstat, fxpReaddir:
		return true
	}
	return false
}

// whole reads a packet of size bytes whole and answers it, or passes it up.
func (s *readServer) whole(size int) error {
	if cap(s.pkt) < 4+size {
		s.pkt = make([]byte, 4+size)
	}
	s.pkt = s.pkt[:4+size]
	copy(s.pkt, s.head[:5])
	if n, err := io.ReadFull(s.batchWriter, s.pkt[5:]); err != nil {
		s.up = s.pkt[:5+n]
		return unexpected(err)
	}
	body := s.pkt[5:]
	var err error
	answered := false
	if s.pkt[4] == fxpOpen {
		answered, err = s.open(body)
	} else {
		answered, err = s.onHandle(s.pkt[4], body)
	}
	if !answered && len(s.up) == 0 { // else answered, or rewritten into up
		s.up = s.pkt
	}
	return err
}

// unexpected: the channel ended inside a packet.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// open takes a read-only OPEN (body: id, path, flags, attributes); others pass up.
func (s *readServer) open(body []byte) (bool, error) {
	id, rest, ok := takeUint32(body)
	name, rest, ok2 := takeString(rest)
	flags, attrs, ok3 := takeUint32(rest)
	if !ok || !ok2 || !ok3 || flags&fxfRead == 0 || flags&(fxfWrite|fxfAppend|fxfCreat|fxfTrunc) != 0 {
		return false, nil
	}
	if s.settle != nil {
		s.settle()
	}
	r := sftp.NewRequest("Get", string(name)) // cleaned as the request server cleans it
	r.Flags, r.Attrs = flags, attrs
	s.fmu.Lock()
	closed := s.closed
	s.fmu.Unlock()
	if closed {
		return true, s.status(id, errFailure)
	}
	rd, err := s.h.Fileread(r)
	if err != nil {
		return true, s.status(id, err)
	}
	s.seq++
	handle := "r" + strconv.FormatUint(s.seq, 10)
	s.fmu.Lock()
	s.files[handle] = &readFile{rd: rd, path: r.Filepath}
	s.fmu.Unlock()
	return true, s.reply(fxpHandle, id, []byte(handle))
}

// onHandle answers a packet naming one of readServer's handles, or rewrites FSTAT and
// FSETSTAT for the request server; a packet naming another handle passes up.
func (s *readServer) onHandle(typ byte, body []byte) (bool, error) {
	id, rest, ok := takeUint32(body)
	handle, rest, ok2 := takeString(rest)
	if !ok || !ok2 {
		return false, nil
	}
	s.fmu.Lock()
	f := s.files[string(handle)]
	if f != nil && typ == fxpClose {
		delete(s.files, string(handle))
	}
	s.fmu.Unlock()
	if f == nil {
		return false, nil
	}
	switch typ {
	case fxpRead:
		return s.read(id, f, rest)
	case fxpClose:
		return true, s.status(id, f.rd.(io.Closer).Close())
	case fxpFstat: // as the request server does: Stat of the path
		s.up = appendPathPacket(s.pkt[:0], fxpStat, id, f.path, nil)
		return false, nil
	case fxpFsetstat: // Setstat of the path, with the same attributes
		s.up = appendPathPacket(make([]byte, 0, len(s.pkt)+len(f.path)), fxpSetstat, id, f.path, rest)
		return false, nil
	}
	return true, s.status(id, errNotDir)
}

// read answers a READ (rest: offset, length) with the file's data or a status. The data
// is read straight into the batch of replies (gatherInto).
func (s *readServer) read(id uint32, f *readFile, rest []byte) (bool, error) {
	off, rest, ok := takeUint64(rest)
	n, _, ok2 := takeUint32(rest)
	if !ok || !ok2 {
		return true, s.status(id, errBadMessage)
	}
	s.lastRead = f
	var rerr error
	want := min(int(n), maxRead)
	s.holdTail = false
	err := s.sendData(dataHead+want, func(b []byte) int {
		k, err := f.rd.ReadAt(b[dataHead:], int64(off))
		if err != nil && (err != io.EOF || k == 0) { // data up to the end first, then EOF
			rerr = err
			return 0
		}
		binary.BigEndian.PutUint32(b, uint32(dataHead-4+k))
		b[4] = fxpData
		binary.BigEndian.PutUint32(b[5:], id)
		binary.BigEndian.PutUint32(b[9:], uint32(k))
		s.holdTail = k == want && f.holdsTail()
		return dataHead + k
	})
	if errors.Is(rerr, io.EOF) {
		return true, s.status(id, io.EOF)
	}
	if rerr != nil { // fsError: the status names no host path (a PathError's would)
		return true, s.status(id, fsError(rerr))
	}
	return true, err
}

// write refuses a WRITE to one of readServer's handles (opened for reading), reading its
// data away; one to another handle passes up as it comes.
func (s *readServer) write(size int) error {
	h := s.head[5:]
	if size < 9 { // no room for an id and a handle's length: the request server's to refuse
		s.up, s.fwd = s.head[:5], size-1
		return nil
	}
	if err := s.readHead(5, 13); err != nil {
		return err
	}
	got := 13
	hl := int(binary.BigEndian.Uint32(h[4:8]))
	var f *readFile
	if hl <= maxHandle && 9+hl <= size {
		if err := s.readHead(13, 13+hl); err != nil {
			return err
		}
		got += hl
		s.fmu.Lock()
		f = s.files[string(h[8:8+hl])]
		s.fmu.Unlock()
	}
	if f == nil {
		s.up, s.fwd = s.head[:got], 4+size-got
		return nil
	}
	if _, err := io.CopyN(io.Discard, s.batchWriter, int64(4+size-got)); err != nil {
		return unexpected(err)
	}
	return s.status(binary.BigEndian.Uint32(h[:4]), errNotWritable)
}

// closeFiles closes the files left open when the session ends, as the request server does
// its own: the transfer was cut short. No file opens after it.
func (s *readServer) closeFiles() {
	s.fmu.Lock()
	files := s.files
	s.files, s.closed = map[string]*readFile{}, true
	s.fmu.Unlock()
	for _, f := range files {
		if te, ok := f.rd.(interface{ TransferError(error) }); ok {
			te.TransferError(io.ErrUnexpectedEOF)
		}
		_ = f.rd.(io.Closer).Close()
	}
}

var (
	errNotDir      = errors.New("not a directory handle")
	errNotWritable = errors.New("file not open for writing")
	errBadMessage  = sftp.ErrSSHFxBadMessage
)

// statusCode maps err to an SFTP status as the request server's statusFromError does.
func statusCode(err error) uint32 {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNotDir), errors.Is(err, errNotWritable):
		return 4
	case os.IsNotExist(err):
		return 2
	case errors.As(err, &errno):
		switch errno {
		case syscall.ENOENT:
			return 2
		case syscall.EACCES, syscall.EPERM:
			return 3
		}
		return 4
	case errors.Is(err, io.EOF):
		return 1
	}
	for code, e := range []error{sftp.ErrSSHFxEOF, sftp.ErrSSHFxNoSuchFile, sftp.ErrSSHFxPermissionDenied,
		sftp.ErrSSHFxFailure, sftp.ErrSSHFxBadMessage, sftp.ErrSSHFxNoConnection,
		sftp.ErrSSHFxConnectionLost, sftp.ErrSSHFxOpUnsupported} {
		if errors.Is(err, e) {
			return uint32(code + 1)
		}
	}
	return 4
}

// status replies to request id with err's status and text (none for success).
func (s *readServer) status(id uint32, err error) error {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	b := make([]byte, 0, 4+1+4+4+4+len(msg)+4)
	b = binary.BigEndian.AppendUint32(b, uint32(1+4+4+4+len(msg)+4))
	b = append(b, fxpStatus)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, statusCode(err))
	b = appendString(b, msg)
	b = appendString(b, "") // language tag
	return s.send(b)
}

// reply sends a response of type typ to request id carrying one string.
func (s *readServer) reply(typ byte, id uint32, str []byte) error {
	b := make([]byte, 0, 4+1+4+4+len(str))
	b = binary.BigEndian.AppendUint32(b, uint32(1+4+4+len(str)))
	b = append(b, typ)
	b = binary.BigEndian.AppendUint32(b, id)
	b = appendString(b, string(str))
	return s.send(b)
}

// appendPathPacket appends a request of type typ for id naming path, followed by tail.
func appendPathPacket(b []byte, typ byte, id uint32, path string, tail []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+4+4+len(path)+len(tail)))
	b = append(b, typ)
	b = binary.BigEndian.AppendUint32(b, id)
	b = appendString(b, path)
	return append(b, tail...)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func takeUint32(b []byte) (uint32, []byte, bool) {
	if len(b) < 4 {
		return 0, b, false
	}
	return binary.BigEndian.Uint32(b), b[4:], true
}

func takeUint64(b []byte) (uint64, []byte, bool) {
	if len(b) < 8 {
		return 0, b, false
	}
	return binary.BigEndian.Uint64(b), b[8:], true
}

func takeString(b []byte) ([]byte, []byte, bool) {
	l, rest, ok := takeUint32(b)
	if !ok || uint64(l) > uint64(len(rest)) {
		return nil, b, false
	}
	return rest[:l], rest[l:], true
}

// send writes a reply of readServer's whole, between the request server's responses.
func (s *readServer) send(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wleft > 0 {
		s.held = append(s.held, b...)
		return nil
	}
	_, err := s.batchWriter.Write(b)
	return err
}

// sendData gathers a DATA reply of at most size bytes, which fill writes in place, to go
// with the others before readServer next waits for the client (next).
func (s *readServer) sendData(size int, fill func([]byte) int) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wleft > 0 { // the request server is inside a response: hold the reply
		b := make([]byte, size)
		s.held = append(s.held, b[:fill(b)]...)
		return nil
	}
	return s.gatherInto(size, fill)
}

// Write passes the request server's responses on, following where each ends so that
// readServer's replies go between them (it writes each whole, but nothing here relies on it).
func (s *readServer) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wleft == 0 && len(p) >= 4 {
		s.wleft = 4 + int(binary.BigEndian.Uint32(p))
	}
	s.wleft = max(s.wleft-len(p), 0)
	n, err := s.batchWriter.Write(p)
	if s.wleft == 0 && len(s.held) > 0 && err == nil {
		_, err = s.batchWriter.Write(s.held)
		s.held = s.held[:0]
	}
	return n, err
}
