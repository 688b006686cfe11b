// Command djftpd is the FTP/FTPS sidecar of the djftpd Django app: it asks Django,
// over signed HTTP, who may log in, and serves each user's home directory.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/djftpd/djftpd/cache"
	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/ftpdriver"
)

// eventsFlushTimeout bounds the last delivery of events at shutdown; what Django has
// not taken by then goes to the spool.
const eventsFlushTimeout = 5 * time.Second

// Exit codes.
const (
	exitOK     = 0
	exitFault  = 1 // could not start or serve
	exitConfig = 2 // invalid configuration
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		printUsage()
		return exitOK
	}
	if len(args) > 0 {
		fmt.Fprintf(os.Stderr, "djftpd: unexpected argument %q; configuration comes from DJFTPD_* variables, see djftpd --help\n", args[0])
		return exitConfig
	}
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "djftpd: "+err.Error())
		return exitConfig
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log, nil); err != nil {
		var ce *configError
		if errors.As(err, &ce) { // found only when checked against the world (S3 bucket)
			fmt.Fprintln(os.Stderr, "djftpd: "+err.Error())
			return exitConfig
		}
		log.Error("djftpd stopped", "err", err)
		return exitFault
	}
	return exitOK
}

func printUsage() {
	var c config
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	_ = envconfig.Usagef(envPrefix, &c, tw, usageFormat)
	_ = tw.Flush()
}

func newLogger(cfg config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// serve wires the pieces, serves until ctx is cancelled, then drains. listening, if
// not nil, is told the FTP and ops addresses once both accept connections.
func serve(ctx context.Context, cfg config, log *slog.Logger, listening func(ftp, ops net.Addr)) error {
	client, err := djangoclient.New(cfg.djangoClient(), log.With("component", "djangoclient"))
	if err != nil {
		return fmt.Errorf("django client: %w", err)
	}
	reg := newRegistry()
	store, err := openStorage(ctx, cfg, reg)
	if err != nil {
		return err
	}
	defer store.Close()
	var lastOK lastSuccess
	authCache := cache.New(cfg.cache(), client, log.With("component", "cache"))
	auth := newInstrumentedAuth(authCache, reg, &lastOK)
	ftpCfg := cfg.ftp()
	ftpCfg.Storage = store
	ftpCfg.Metrics = ftpdriver.NewMetrics(reg)
	var certs *ftpdriver.CertReloader
	if ftpCfg.TLSMode != ftpdriver.TLSOff {
		if certs, err = ftpdriver.NewCertReloader(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fmt.Errorf("DJFTPD_TLS_CERT/DJFTPD_TLS_KEY: %w", err)
		}
		ftpCfg.TLS = certs.TLSConfig()
	}
	events, err := client.NewEventQueue(cfg.events(), log.With("component", "events"))
	if err != nil {
		return fmt.Errorf("DJFTPD_SPOOL_DIR: %w", err)
	}
	registerEventMetrics(reg, events)
	if cfg.Xferlog != "" {
		f, err := os.OpenFile(cfg.Xferlog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("DJFTPD_XFERLOG: %w", err)
		}
		defer f.Close()
		ftpCfg.XferLog = ftpdriver.NewXferLog(f)
	}
	srv, err := ftpdriver.New(ftpCfg, auth, events, log.With("component", "ftp"))
	if err != nil {
		return fmt.Errorf("ftp server: %w", err)
	}

	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	listen := func(key, addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on DJFTPD_%s: %w", key, err)
		}
		listeners = append(listeners, l)
		return l, nil
	}
	ln, err := listen("LISTEN", cfg.Listen)
	if err != nil {
		return err
	}
	var implicitLn net.Listener
	if ftpCfg.TLSMode == ftpdriver.TLSImplicit {
		if implicitLn, err = listen("IMPLICIT_LISTEN", cfg.ImplicitListen); err != nil {
			return err
		}
	}
	opsLn, err := listen("OPS_LISTEN", cfg.OpsListen)
	if err != nil {
		return err
	}
	if certs != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go reloadOnHUP(ctx, hup, certs, log)
	}

	var ready atomic.Bool
	opsAPI := &ops{ready: &ready, lastOK: &lastOK, cache: authCache, sessions: srv, secret: []byte(cfg.Secret), storage: store.String(),
		registry: reg, log: log.With("component", "ops")}
	opsSrv := newOpsServer(opsAPI.handler(), defaultOpsLimits)
	opsDone := make(chan error, 1)
	go func() { opsDone <- opsSrv.Serve(limitListener(opsLn, defaultOpsLimits.maxConns)) }()

	eventsDone := make(chan error, 1)
	go func() { eventsDone <- events.Run(context.WithoutCancel(ctx)) }()

	ftpDone := make(chan error, 2)
	ftpServers := 1
	go func() { ftpDone <- srv.Serve(context.WithoutCancel(ctx), ln) }()
	if implicitLn != nil {
		ftpServers++
		go func() { ftpDone <- srv.ServeImplicit(context.WithoutCancel(ctx), implicitLn) }()
	}
	ready.Store(true)
	if listening != nil {
		listening(ln.Addr(), opsLn.Addr())
	}
	log.Info("djftpd listening", "ftp", ln.Addr().String(), "ops", opsLn.Addr().String(),
		"django", cfg.DjangoURL, "passive_ports", fmt.Sprintf("%d-%d", cfg.PassivePorts.Min, cfg.PassivePorts.Max))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	case serveErr = <-ftpDone:
		ftpDone <- serveErr
	case serveErr = <-opsDone:
		opsDone <- serveErr
	}
	ready.Store(false)
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(graceCtx); err != nil {
		log.Warn("ftp shutdown", "err", err)
	}
	for range ftpServers {
		if err := <-ftpDone; err != nil && serveErr == nil {
			serveErr = err
		}
	}
	// Every session has ended: its last events are queued. Deliver them, or spool them.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), eventsFlushTimeout)
	defer cancelFlush()
	if err := events.Close(flushCtx); err != nil {
		log.Error("events not delivered at shutdown", "err", err)
	}
	if err := <-eventsDone; err != nil && serveErr == nil {
		serveErr = err
	}
	if err := opsSrv.Shutdown(graceCtx); err != nil {
		log.Warn("ops shutdown", "err", err)
	}
	if err := <-opsDone; err != nil && !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
		serveErr = err
	}
	log.Info("djftpd stopped")
	return serveErr
}

// reloadOnHUP reloads the TLS certificate on each SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, certs *ftpdriver.CertReloader, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := certs.Reload(); err != nil {
				log.Error("TLS certificate reload failed; keeping the previous one", "err", err)
				continue
			}
			log.Info("TLS certificate reloaded")
		}
	}
}
