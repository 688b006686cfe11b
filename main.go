// Command djftpd is the FTP/FTPS sidecar of the djftpd Django app: it asks Django,
// over signed HTTP, who may log in, and serves each user's home directory.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/cache"
	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/ftpdriver"
	"github.com/djftpd/djftpd/storage"
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
	if len(args) > 0 && args[0] == "--print-host-keys" {
		return printHostKeys(os.Stdout)
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
	sc := &sidecar{cfg: cfg, log: log}
	defer sc.close()
	if err := sc.build(); err != nil {
		return err
	}
	if err := sc.listen(); err != nil {
		return err
	}
	sc.start(ctx)
	if listening != nil {
		listening(sc.ftpLn.Addr(), sc.opsLn.Addr())
	}
	log.Info("djftpd listening", "ftp", sc.ftpLn.Addr().String(), "ops", sc.opsLn.Addr().String(),
		"django", cfg.DjangoURL, "passive_ports", fmt.Sprintf("%d-%d", cfg.PassivePorts.Min, cfg.PassivePorts.Max))
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	case serveErr = <-sc.ftpDone:
		sc.ftpDone <- serveErr
	case serveErr = <-sc.opsDone:
		sc.opsDone <- serveErr
	}
	return firstError([]error{serveErr, sc.drain()})
}

// sidecar is what serve wires together, in the order build, listen, start, drain.
type sidecar struct {
	cfg     config
	log     *slog.Logger
	reg     *prometheus.Registry
	cache   *cache.Cache
	auth    *cache.Instrumented
	access  *access.Core            // the login policy FTP (and SFTP) share
	store   storage.Storage         // where homes live (DJFTPD_STORAGE)
	certs   *ftpdriver.CertReloader // nil without TLS
	events  *djangoclient.EventQueue
	ftp     *ftpdriver.Server
	sftp    *sftpService       // nil without DJFTPD_SFTP_LISTEN
	metrics *ftpdriver.Metrics // the front ends' metrics, FTP and SFTP
	ready   atomic.Bool

	closers                      []io.Closer // listeners and the xferlog, closed at the end
	ftpLn, implicitLn, opsLn     net.Listener
	opsSrv                       *http.Server
	ftpDone, opsDone, eventsDone chan error
	ftpServers                   int // how many Serve calls send to ftpDone
	stopTrim                     context.CancelFunc
	trimDone                     chan struct{}
}

// build makes the Django client, the cache, the event queue and the FTP server.
func (sc *sidecar) build() error {
	cfg, log := sc.cfg, sc.log
	client, err := djangoclient.New(cfg.djangoClient(), log.With("component", "djangoclient"))
	if err != nil {
		return fmt.Errorf("django client: %w", err)
	}
	sc.reg = newRegistry()
	if sc.store, err = openStorage(context.Background(), cfg, sc.reg); err != nil {
		return err
	}
	sc.closers = append(sc.closers, sc.store)
	sc.cache = cache.New(cfg.cache(), client, log.With("component", "cache"))
	sc.auth = cache.NewInstrumented(sc.cache, sc.reg)
	accessCfg := cfg.access()
	accessCfg.Log = log.With("component", "access")
	accessCfg.Storage = sc.store
	if sc.access, err = access.New(accessCfg, sc.auth); err != nil {
		return fmt.Errorf("login policy: %w", err)
	}
	sc.closers = append(sc.closers, sc.access)
	ftpCfg := cfg.ftp()
	sc.metrics = ftpdriver.NewMetrics(sc.reg)
	ftpCfg.Metrics = sc.metrics
	ftpCfg.Access = sc.access
	if ftpCfg.TLSMode != ftpdriver.TLSOff {
		if sc.certs, err = ftpdriver.NewCertReloader(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fmt.Errorf("DJFTPD_TLS_CERT/DJFTPD_TLS_KEY: %w", err)
		}
		ftpCfg.TLS = sc.certs.TLSConfig()
	}
	if sc.events, err = client.NewEventQueue(cfg.events(), log.With("component", "events")); err != nil {
		return fmt.Errorf("DJFTPD_SPOOL_DIR: %w", err)
	}
	registerEventMetrics(sc.reg, sc.events)
	if cfg.Xferlog != "" {
		f, err := os.OpenFile(cfg.Xferlog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("DJFTPD_XFERLOG: %w", err)
		}
		sc.closers = append(sc.closers, f)
		ftpCfg.XferLog = ftpdriver.NewXferLog(f)
	}
	if sc.ftp, err = ftpdriver.New(ftpCfg, sc.auth, sc.events, log.With("component", "ftp")); err != nil {
		return fmt.Errorf("ftp server: %w", err)
	}
	return nil
}

// listen opens the FTP, implicit FTPS and ops listeners, each error naming its variable.
func (sc *sidecar) listen() error {
	listen := func(key, addr string) (net.Listener, error) {
		open := func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
		if key != "OPS_LISTEN" { // FTP control listeners: no keep-alive at accept
			open = func(addr string) (net.Listener, error) { return ftpdriver.Listen(context.Background(), addr) }
		}
		l, err := open(addr)
		if err != nil {
			return nil, fmt.Errorf("listen on DJFTPD_%s: %w", key, err)
		}
		sc.closers = append(sc.closers, l)
		return l, nil
	}
	var err error
	if sc.ftpLn, err = listen("LISTEN", sc.cfg.Listen); err != nil {
		return err
	}
	if sc.cfg.ftp().TLSMode == ftpdriver.TLSImplicit {
		if sc.implicitLn, err = listen("IMPLICIT_LISTEN", sc.cfg.ImplicitListen); err != nil {
			return err
		}
	}
	if sc.opsLn, err = listen("OPS_LISTEN", sc.cfg.OpsListen); err != nil {
		return err
	}
	gate := &sftpGate{core: sc.access, auth: sc.auth, events: sc.events, log: sc.log.With("component", "sftp"),
		metrics: sc.metrics}
	if sc.sftp, err = newSFTP(sc.cfg, gate, sc.log.With("component", "sftp")); err != nil {
		return err
	}
	if sc.sftp != nil {
		sc.closers = append(sc.closers, sc.sftp.ln)
	}
	return nil
}

// start runs the certificate reloader, the ops server, the event queue, the FTP
// servers and the memory trimmer, each in a goroutine that drain waits for (the reloader
// ends with ctx).
func (sc *sidecar) start(ctx context.Context) {
	if sc.certs != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		sc.closers = append(sc.closers, closerFunc(func() error { signal.Stop(hup); return nil }))
		go reloadOnHUP(ctx, hup, sc.certs, sc.log)
	}
	opsAPI := &opsHandler{ready: &sc.ready, lastOK: sc.auth.Health(), cache: sc.cache, sessions: bothSessions{ftp: sc.ftp, sftp: sc.sftp}, secret: []byte(sc.cfg.Secret), storage: sc.store.String(),
		registry: sc.reg, log: sc.log.With("component", "ops")}
	sc.opsSrv = newOpsServer(opsAPI.handler(), defaultOpsLimits)
	sc.opsDone = make(chan error, 1)
	go func() { sc.opsDone <- sc.opsSrv.Serve(limitListener(sc.opsLn, defaultOpsLimits.maxConns)) }()

	sc.eventsDone = make(chan error, 1)
	go func() { sc.eventsDone <- sc.events.Run(context.WithoutCancel(ctx)) }()

	sc.ftpDone = make(chan error, 2)
	sc.ftpServers = 1
	go func() { sc.ftpDone <- sc.ftp.Serve(context.WithoutCancel(ctx), sc.ftpLn) }()
	if sc.implicitLn != nil {
		sc.ftpServers++
		go func() { sc.ftpDone <- sc.ftp.ServeImplicit(context.WithoutCancel(ctx), sc.implicitLn) }()
	}
	sc.sftp.serve()
	trimCtx, stopTrim := context.WithCancel(ctx)
	sc.stopTrim, sc.trimDone = stopTrim, make(chan struct{})
	go func() { defer close(sc.trimDone); newMemTrimmer(sc.log.With("component", "memtrim")).run(trimCtx) }()
	sc.ready.Store(true)
}

// drain stops in dependency order: FTP sessions (within the grace), then the events
// they queued (delivered or spooled), then the ops server. It returns the first
// serving error.
func (sc *sidecar) drain() error {
	sc.ready.Store(false)
	graceCtx, cancel := context.WithTimeout(context.Background(), sc.cfg.ShutdownGrace)
	defer cancel()
	if err := sc.ftp.Shutdown(graceCtx); err != nil {
		sc.log.Warn("ftp shutdown", "err", err)
	}
	sc.sftp.stop(graceCtx)
	var errs []error
	for range sc.ftpServers {
		errs = append(errs, <-sc.ftpDone)
	}
	// Every session has ended: its last events are queued. Deliver them, or spool them.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), eventsFlushTimeout)
	defer cancelFlush()
	if err := sc.events.Close(flushCtx); err != nil {
		sc.log.Error("events not delivered at shutdown", "err", err)
	}
	errs = append(errs, <-sc.eventsDone)
	if err := sc.opsSrv.Shutdown(graceCtx); err != nil {
		sc.log.Warn("ops shutdown", "err", err)
	}
	if err := <-sc.opsDone; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	sc.stopTrim()
	<-sc.trimDone
	sc.log.Info("djftpd stopped")
	return firstError(errs)
}

// close releases what build and listen opened, last opened first.
func (sc *sidecar) close() {
	for i := len(sc.closers) - 1; i >= 0; i-- {
		_ = sc.closers[i].Close()
	}
}

// firstError is the first non-nil error, or nil.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// closerFunc makes a function an io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

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
