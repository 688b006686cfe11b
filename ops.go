package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/djftpd/djftpd/cache"
	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/internal/loglimit"
)

// purger forgets cached logins; *cache.Cache is one.
type purger interface {
	Purge(username string)
	PurgeAll()
}

// opsHandler serves the operations endpoints (DESIGN.md §7).
type opsHandler struct {
	ready    *atomic.Bool  // the FTP listeners accept connections
	lastOK   *cache.Health // how Django has been answering
	cache    purger
	sessions liveSessions // nil: /sessions and /sessions/close are not served
	secret   []byte
	registry *prometheus.Registry
	log      *slog.Logger
	// storage is DJFTPD_STORAGE as /ping names it, for Django's djftpd_check.
	storage string
	// badSigLog limits the warnings about refused signatures; nil means the default.
	badSigLog *loglimit.Limiter
}

// badSignatureLogInterval: at most one warning about refused signatures per interval, with
// the count of the ones not logged.
const badSignatureLogInterval = 10 * time.Second

// handler routes /healthz (the process runs), /readyz (the FTP listeners accept
// connections and Django answers), /metrics, and the signed POSTs /cache/purge and
// /ping (Django's djftpd_check: do both sides share the secret?).
func (o *opsHandler) handler() http.Handler {
	if o.badSigLog == nil {
		o.badSigLog = &loglimit.Limiter{Interval: badSignatureLogInterval}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !o.ready.Load() {
			http.Error(w, "not ready: FTP listener not accepting", http.StatusServiceUnavailable)
			return
		}
		if !o.lastOK.Healthy(time.Now()) {
			http.Error(w, "not ready: Django has not answered recently", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/cache/purge", o.purge)
	mux.HandleFunc("/ping", o.ping)
	if o.sessions != nil {
		mux.HandleFunc("/sessions", o.listSessions)
		mux.HandleFunc("/sessions/close", o.closeSessions)
	}
	return mux
}

// purgeRequest is Django's body: {"username": "..."} or {"all": true}.
type purgeRequest struct {
	Username *string `json:"username"`
	All      bool    `json:"all"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// signedBody checks method, size and signature (made for purpose) of a request from Django
// and returns its body; on failure it has answered, unsigned, and returns false.
func (o *opsHandler) signedBody(w http.ResponseWriter, r *http.Request, purpose djangoclient.Purpose) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"ok": false, "error": "method_not_allowed"})
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, djangoclient.MaxBodyBytes+1))
	if err != nil || len(body) > djangoclient.MaxBodyBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"ok": false, "error": "request_too_large"})
		return nil, false
	}
	err = djangoclient.Verify(o.secret, purpose, r.Header.Get(djangoclient.HeaderTimestamp),
		r.Header.Get(djangoclient.HeaderSignature), body, time.Now(), djangoclient.MaxSkew)
	if err != nil {
		code := "bad_signature"
		if errors.Is(err, djangoclient.ErrStaleTimestamp) {
			code = "stale_timestamp"
		}
		o.warnBadSignature(r, err)
		writeJSON(w, http.StatusForbidden, map[string]any{"ok": false, "error": code})
		return nil, false
	}
	return body, true
}

// warnBadSignature logs a refused signature at WARN, rate limited: anyone reaching the port
// can send them, so they must not flood the log; a real secret mismatch still shows at once.
func (o *opsHandler) warnBadSignature(r *http.Request, err error) {
	ok, suppressed := o.badSigLog.Allow(time.Now())
	if !ok {
		return
	}
	o.log.Warn("request to the ops listener refused: signature check failed (do DJFTPD_SECRET and Django's DJFTPD[\"SECRET\"] match?)",
		"path", r.URL.Path, "remote", r.RemoteAddr, "err", err, "suppressed", suppressed)
}

// ping answers a signed POST with a signed {"ok": true}: the secret is shared.
func (o *opsHandler) ping(w http.ResponseWriter, r *http.Request) {
	if _, ok := o.signedBody(w, r, djangoclient.PurposePing); !ok {
		return
	}
	o.writeSigned(w, r, djangoclient.PurposePing, http.StatusOK, map[string]any{"ok": true, "storage": o.storage})
}

// writeSigned answers a request that verified for purpose with v as JSON, signed as that
// purpose's answer and bound to the request's signature.
func (o *opsHandler) writeSigned(w http.ResponseWriter, r *http.Request, purpose djangoclient.Purpose, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Unreachable for the maps answered here; kept so a failure is an answer, not a panic.
		writeJSON(w, http.StatusInternalServerError, map[string]any{"ok": false, "error": "internal"})
		return
	}
	body = append(body, '\n')
	ts, sig := djangoclient.SignAnswer(o.secret, purpose, time.Now(), r.Header.Get(djangoclient.HeaderSignature), body)
	w.Header().Set(djangoclient.HeaderTimestamp, ts)
	w.Header().Set(djangoclient.HeaderSignature, sig)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (o *opsHandler) purge(w http.ResponseWriter, r *http.Request) {
	body, ok := o.signedBody(w, r, djangoclient.PurposeCachePurge)
	if !ok {
		return
	}
	var req purgeRequest
	if err := json.Unmarshal(body, &req); err != nil || (req.Username == nil) == !req.All || (req.Username != nil && *req.Username == "") {
		o.writeSigned(w, r, djangoclient.PurposeCachePurge, http.StatusBadRequest, map[string]any{"ok": false, "error": "bad_request",
			"detail": `want {"username": "<name>"} or {"all": true}`})
		return
	}
	if req.All {
		o.cache.PurgeAll()
		o.log.Info("auth cache purged", "scope", "all")
	} else {
		o.cache.Purge(*req.Username)
		o.log.Info("auth cache purged", "user", *req.Username)
	}
	o.writeSigned(w, r, djangoclient.PurposeCachePurge, http.StatusOK, map[string]any{"ok": true})
}
