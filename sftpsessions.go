package main

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/djftpd/djftpd/ftpdriver"
	"github.com/djftpd/djftpd/sftpd"
)

// bothSessions lists and closes the live sessions of FTP and SFTP together, as one list
// in ftpdriver's order (connection time, then id) and cursor format ("<unix ns>.<id>").
type bothSessions struct {
	ftp  liveSessions
	sftp *sftpService
}

func (b bothSessions) Sessions(cursor string, limit int) ([]ftpdriver.SessionInfo, string, error) {
	if _, err := ftpdriver.ParseCursor(cursor); err != nil {
		return nil, "", err
	}
	if limit <= 0 || limit > ftpdriver.MaxSessionsPage {
		limit = ftpdriver.MaxSessionsPage
	}
	// FTP's page holds the first limit FTP sessions after the cursor, so the first limit
	// of the merged list are all in it or among the SFTP ones.
	list, more, err := b.ftp.Sessions(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	after := cursorKey(cursor)
	for _, c := range b.sftp.conns() {
		if si := c.info(); cursor == "" || compareSessionKeys(sessionKeyOf(si), after) > 0 {
			list = append(list, si)
		}
	}
	slices.SortFunc(list, func(a, b ftpdriver.SessionInfo) int {
		return compareSessionKeys(sessionKeyOf(a), sessionKeyOf(b))
	})
	next := ""
	if len(list) > limit || more != "" {
		list = list[:min(limit, len(list))]
		k := sessionKeyOf(list[len(list)-1])
		next = strconv.FormatInt(k.at, 10) + "." + k.id
	}
	return list, next, nil
}

// CloseSessions closes the FTP and SFTP sessions with this id, or logged in as username.
func (b bothSessions) CloseSessions(id, username string) int {
	if (id == "") == (username == "") {
		return 0
	}
	n := b.ftp.CloseSessions(id, username)
	if b.sftp != nil {
		n += b.sftp.srv.CloseConns(func(c sftpd.Conn) bool {
			si := c.(*sftpConn).info()
			return id != "" && si.ID == id || username != "" && si.Username != nil && *si.Username == username
		})
	}
	return n
}

// conns lists the SFTP connections the gate admitted.
func (s *sftpService) conns() []*sftpConn {
	if s == nil {
		return nil
	}
	var out []*sftpConn
	for _, c := range s.srv.Conns() {
		if sc, ok := c.(*sftpConn); ok {
			out = append(out, sc)
		}
	}
	return out
}

type liveKey struct {
	at int64
	id string
}

func sessionKeyOf(si ftpdriver.SessionInfo) liveKey {
	return liveKey{at: si.ConnectedAt.UnixNano(), id: si.ID}
}

// cursorKey reads a cursor ftpdriver.ParseCursor accepted.
func cursorKey(c string) liveKey {
	at, id, _ := strings.Cut(c, ".")
	n, _ := strconv.ParseInt(at, 10, 64)
	return liveKey{at: n, id: id}
}

func compareSessionKeys(a, b liveKey) int {
	return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(a.id, b.id))
}
