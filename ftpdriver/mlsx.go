package ftpdriver

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/djftpd/djftpd/storage"
)

// mlsxFacts are the RFC 3659 facts djftpd knows, in FEAT order.
var mlsxFacts = []string{"type", "size", "modify", "perm", "unique"}

// featMLST is the FEAT line for MLST: every fact, the selected ones starred.
func (s *session) featMLST() string {
	var b strings.Builder
	b.WriteString("MLST ")
	for _, f := range mlsxFacts {
		b.WriteString(f)
		if s.factOn(f) {
			b.WriteByte('*')
		}
		b.WriteByte(';')
	}
	return b.String()
}

func (s *session) factOn(f string) bool {
	if s.mlstFacts == nil {
		return true
	}
	return s.mlstFacts[f]
}

// optsMLST handles "OPTS MLST fact;fact;" (RFC 3659 7.9).
func (s *session) optsMLST(arg string) {
	selected := map[string]bool{}
	for _, f := range strings.Split(arg, ";") {
		selected[strings.ToLower(strings.TrimSpace(f))] = true
	}
	var names []string
	for _, known := range mlsxFacts {
		if selected[known] {
			names = append(names, known+";")
		}
	}
	s.mlstFacts = selected
	s.reply(200, "MLST OPTS "+strings.Join(names, ""))
}

// mlsxEntry formats one entry: "fact=value;...; name". kind overrides the type fact
// for the listed directory itself (cdir) and its parent (pdir).
func (s *session) mlsxEntry(fi fs.FileInfo, kind, name string) string {
	var b strings.Builder
	if s.factOn("type") {
		if kind == "" {
			kind = "file"
			switch {
			case fi.IsDir():
				kind = "dir"
			case fi.Mode()&fs.ModeSymlink != 0:
				kind = "OS.unix=symlink"
			}
		}
		b.WriteString("type=" + kind + ";")
	}
	if s.factOn("size") && !fi.IsDir() {
		fmt.Fprintf(&b, "size=%d;", fi.Size())
	}
	if s.factOn("modify") {
		b.WriteString("modify=" + fi.ModTime().UTC().Format("20060102150405") + ";")
	}
	if s.factOn("perm") {
		b.WriteString("perm=" + s.factPerm(fi) + ";")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && s.factOn("unique") {
		fmt.Fprintf(&b, "unique=%xg%x;", st.Dev, st.Ino)
	}
	return b.String() + " " + name
}

// factPerm is the RFC 3659 perm fact: what this user's letters allow on the entry.
func (s *session) factPerm(fi fs.FileInfo) string {
	var pairs []struct {
		letter byte
		fact   string
	}
	if fi.IsDir() {
		pairs = []struct {
			letter byte
			fact   string
		}{{'e', "e"}, {'l', "l"}, {'w', "c"}, {'m', "m"}, {'d', "d"}, {'d', "p"}, {'f', "f"}}
	} else {
		pairs = []struct {
			letter byte
			fact   string
		}{{'r', "r"}, {'w', "w"}, {'a', "a"}, {'d', "d"}, {'f', "f"}}
	}
	var b strings.Builder
	for _, p := range pairs {
		if p.fact == "a" && !s.srv.access.Storage().Capabilities().Append {
			continue // the letter allows it, the storage does not
		}
		if s.grant.Can(p.letter) {
			b.WriteString(p.fact)
		}
	}
	return b.String()
}

func (s *session) handleMLST(param string) {
	virtual, rel, err := s.resolve(param)
	var fi fs.FileInfo
	if err == nil {
		fi, err = s.fs.Lstat(s.ctx(), rel)
	}
	if err != nil {
		s.replyFileError("MLST", virtual, err)
		return
	}
	s.reply(250, "Listing "+virtual+"\n "+s.mlsxEntry(fi, "", virtual)+"\nEnd")
}

func (s *session) handleMLSD(param string) {
	virtual, rel, err := s.resolve(param)
	var dir fs.FileInfo
	var l storage.Lister
	if err == nil {
		dir, err = s.fs.Stat(s.ctx(), rel)
	}
	if err == nil && !dir.IsDir() {
		// RFC 3659 7.2: MLSD of a file is a syntax error; MLST is for files.
		s.closePendingData()
		s.reply(501, "MLSD needs a directory; use MLST for a file")
		return
	}
	if err == nil {
		l, err = s.fs.List(s.ctx(), rel)
	}
	if err != nil {
		s.closePendingData()
		s.replyFileError("MLSD", virtual, err)
		return
	}
	// RFC 3659 7.7.4: the cdir entry names the directory as the client gave it.
	cdirName := strings.TrimSpace(param)
	if cdirName == "" {
		cdirName = virtual
	}
	lines := []string{s.mlsxEntry(dir, "cdir", cdirName)}
	if virtual != "/" {
		parentRel := strings.TrimPrefix(path.Dir(virtual), "/")
		if parentRel == "" {
			parentRel = "."
		}
		if parent, err := s.fs.Stat(s.ctx(), parentRel); err == nil {
			lines = append(lines, s.mlsxEntry(parent, "pdir", ".."))
		}
	}
	started := time.Now()
	var n int64
	err = s.withData(openingData, 0, func(c net.Conn) error {
		head := strings.Join(lines, "\r\n") + "\r\n"
		m, err := io.WriteString(c, head)
		if err != nil {
			return err
		}
		n, err = s.streamList(c, l, func(fi fs.FileInfo) string { return s.mlsxEntry(fi, "", fi.Name()) + "\r\n" })
		n += int64(m)
		return err
	})
	_ = l.Close()
	s.finishTransfer("MLSD", virtual, n, started, err)
}

// sendLines sends a listing over the data connection, one CRLF-terminated line each.
func (s *session) sendLines(cmd, virtual string, lines []string) {
	started := time.Now()
	var n int64
	err := s.withData(openingData, 0, func(c net.Conn) error {
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l + "\r\n")
		}
		m, err := c.Write([]byte(b.String()))
		n = int64(m)
		return err
	})
	s.finishTransfer(cmd, virtual, n, started, err)
}

// handleSTAT: without an argument, the session's status; with one, a listing sent on
// the control connection (RFC 959 4.1.3).
func (s *session) handleSTAT(param string) {
	if strings.TrimSpace(param) == "" {
		user := "not logged in"
		if s.grant != nil {
			user = "logged in as " + s.grant.Username
		}
		tlsState := "plain"
		if s.conn.tls != nil {
			tlsState = "TLS"
		}
		s.reply(211, "djftpd status:\n Connected from "+s.peer.String()+"\n "+user+
			"\n Control connection: "+tlsState+"\nEnd of status")
		return
	}
	virtual, rel, err := s.resolve(listArg(param))
	var infos []fs.FileInfo
	if err == nil {
		infos, err = s.readDir(rel)
	}
	if err != nil {
		s.replyFileError("STAT", virtual, err)
		return
	}
	var b strings.Builder
	b.WriteString("Status of " + virtual + ":\n")
	now := time.Now()
	for _, fi := range infos {
		b.WriteString(" " + strings.TrimSuffix(listLine(fi, now), "\r\n") + "\n")
	}
	b.WriteString("End of status")
	s.reply(213, b.String())
}
