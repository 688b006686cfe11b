package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/ftpdriver"
)

// liveSessions lists and closes the FTP sessions; *ftpdriver.Server is one.
type liveSessions interface {
	Sessions(cursor string, limit int) ([]ftpdriver.SessionInfo, string, error)
	CloseSessions(id, username string) int
}

// sessionsRequest is the body of POST /sessions: {} for the first page, then
// {"cursor": "<the previous answer's cursor>"}; "limit" asks for smaller pages.
type sessionsRequest struct {
	Cursor string `json:"cursor"`
	Limit  int    `json:"limit"`
}

// closeRequest is the body of POST /sessions/close: {"session": id} or {"username": u}.
type closeRequest struct {
	Session  string `json:"session"`
	Username string `json:"username"`
}

var errBadSessionsRequest = errors.New("bad request")

// decodeStrict reads one JSON object with only the known fields; an empty body is {}.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return errBadSessionsRequest
	}
	return nil
}

func parseSessionsRequest(body []byte) (sessionsRequest, error) {
	var req sessionsRequest
	if err := decodeStrict(body, &req); err != nil || req.Limit < 0 || req.Limit > ftpdriver.MaxSessionsPage {
		return sessionsRequest{}, errBadSessionsRequest
	}
	if _, err := ftpdriver.ParseCursor(req.Cursor); err != nil {
		return sessionsRequest{}, errBadSessionsRequest
	}
	return req, nil
}

func parseCloseRequest(body []byte) (closeRequest, error) {
	var req closeRequest
	if err := decodeStrict(body, &req); err != nil || (req.Session == "") == (req.Username == "") {
		return closeRequest{}, errBadSessionsRequest
	}
	return req, nil
}

// listSessions answers a signed POST /sessions with one page of live sessions:
// {"ok": true, "sessions": [...], "cursor": "<next page>" or null}.
func (o *opsHandler) listSessions(w http.ResponseWriter, r *http.Request) {
	const purpose = djangoclient.PurposeSessions
	body, ok := o.signedBody(w, r, purpose)
	if !ok {
		return
	}
	req, err := parseSessionsRequest(body)
	if err != nil {
		o.writeSigned(w, r, purpose, http.StatusBadRequest, map[string]any{"ok": false, "error": "bad_request",
			"detail": `want {}, {"cursor": "<cursor>"} and optionally "limit" (1-1000)`})
		return
	}
	list, next, err := o.sessions.Sessions(req.Cursor, req.Limit)
	if err != nil { // the cursor was checked above; kept so a failure is an answer
		o.writeSigned(w, r, purpose, http.StatusBadRequest, map[string]any{"ok": false, "error": "bad_request"})
		return
	}
	var cursor *string
	if next != "" {
		cursor = &next
	}
	o.writeSigned(w, r, purpose, http.StatusOK, map[string]any{"ok": true, "sessions": list, "cursor": cursor})
}

// closeSessions answers a signed POST /sessions/close with {"ok": true, "closed": n}.
func (o *opsHandler) closeSessions(w http.ResponseWriter, r *http.Request) {
	const purpose = djangoclient.PurposeSessionsClose
	body, ok := o.signedBody(w, r, purpose)
	if !ok {
		return
	}
	req, err := parseCloseRequest(body)
	if err != nil {
		o.writeSigned(w, r, purpose, http.StatusBadRequest, map[string]any{"ok": false, "error": "bad_request",
			"detail": `want {"session": "<id>"} or {"username": "<name>"}`})
		return
	}
	n := o.sessions.CloseSessions(req.Session, req.Username)
	o.log.Info("sessions closed on request", "session", req.Session, "user", req.Username, "closed", n)
	o.writeSigned(w, r, purpose, http.StatusOK, map[string]any{"ok": true, "closed": n})
}
