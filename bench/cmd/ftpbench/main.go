// Command ftpbench is the load generator of djftpd's benchmark (bench/run.py drives it).
// It speaks just enough FTP itself (EPSV, TYPE I, RETR, STOR, AUTH TLS, PROT P) to time
// exactly the commands each figure is about, and prints one JSON object per run.
//
//	ftpbench retr -addr 127.0.0.1:2121 -user alice -pass pw -path big.bin [-tls]
//	ftpbench stor -addr ... -src /tmp/big.bin -path up.bin
//	ftpbench logins -addr ... -duration 2s [-max 10]      sequential USER/PASS/QUIT
//	ftpbench concurrent -addr ... -n 300                   n clients connect+login at once
//	ftpbench uncached -addr ... -users u1,u2 -upass pw     those logins all at once
//	ftpbench stall -addr ... -path big.bin -users ... -upass pw -conc 8
//	ftpbench idle -addr ... -n 1000                        hold n logged-in sessions until stdin closes
//	ftpbench smallstor -addr ... -n 200 -conc 1 -size 4096 small uploads: last byte to 226, p50/p99
//	ftpbench idle-many -addr ... -n 10000 -conc 50         idle, then NOOP on each: how many stayed up
//	ftpbench retr-many -addr ... -n 100 -path big64.bin    n downloads released at once: aggregate MB/s
//
// It only ever connects to the address it is given; bench/run.py gives loopback ones.
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// opTimeout bounds each control reply and data read; -timeout sets it.
var opTimeout = 120 * time.Second

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ftpbench retr|stor|logins|concurrent|uncached|stall|idle|smallstor|idle-many|retr-many|sftp-get|sftp-put|sftp-logins|sftp-idle|s3mkbucket|s3put|s3get [flags]")
		os.Exit(2)
	}
	o := parseFlags(os.Args[1], os.Args[2:])
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		fatal(fmt.Errorf("refusing non-loopback address %s", o.addr))
	}
	out, err := run(os.Args[1], o)
	if err != nil {
		fatal(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

// options are the flags of every subcommand; each uses the ones it names.
type options struct {
	addr, user, pass, path, src string
	useTLS                      bool
	duration                    time.Duration
	maxN, n, conc, size         int
	rate                        float64
	users, upass                string
	sshKey, bucket              string
	keep                        bool
}

func parseFlags(cmd string, args []string) options {
	var o options
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:2121", "FTP control address (loopback)")
	fs.StringVar(&o.user, "user", "alice", "username")
	fs.StringVar(&o.pass, "pass", "alice-password", "password")
	fs.StringVar(&o.path, "path", "big.bin", "remote file")
	fs.StringVar(&o.src, "src", "", "local file to upload (stor)")
	fs.BoolVar(&o.useTLS, "tls", false, "AUTH TLS + PROT P")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "how long to run (logins)")
	fs.IntVar(&o.maxN, "max", 0, "stop after this many logins (logins; 0 = no limit)")
	fs.Float64Var(&o.rate, "rate", 0, "logins per second at most (logins; 0 = as fast as possible)")
	fs.IntVar(&o.n, "n", 300, "clients (concurrent, idle, idle-many, retr-many)")
	fs.StringVar(&o.users, "users", "", "comma-separated usernames (uncached, stall)")
	fs.StringVar(&o.upass, "upass", "", "password of -users")
	fs.IntVar(&o.conc, "conc", 8, "concurrent logins (stall, idle-many), concurrent sessions (smallstor)")
	fs.IntVar(&o.size, "size", 4096, "bytes per upload (smallstor)")
	fs.StringVar(&o.sshKey, "sshkey", "", "SSH private key file instead of -pass (sftp-*)")
	fs.StringVar(&o.bucket, "bucket", "", "S3 bucket (s3*; -addr is the endpoint, -user/-pass the keys)")
	fs.BoolVar(&o.keep, "keep", false, "keep the uploaded object (s3put)")
	fs.DurationVar(&opTimeout, "timeout", opTimeout, "bound of each reply and data read")
	_ = fs.Parse(args)
	return o
}

// run runs one subcommand and returns what it measured.
func run(cmd string, o options) (any, error) {
	switch cmd {
	case "retr":
		return runRetr(o.addr, o.user, o.pass, o.path, o.useTLS)
	case "stor":
		return runStor(o.addr, o.user, o.pass, o.src, o.path, o.useTLS)
	case "logins":
		return runLogins(o.addr, o.user, o.pass, o.duration, o.maxN, o.rate)
	case "concurrent":
		return runConcurrent(o.addr, o.user, o.pass, o.n)
	case "uncached":
		return runUncached(o.addr, splitList(o.users), o.upass)
	case "stall":
		return runStall(o.addr, o.user, o.pass, o.path, splitList(o.users), o.upass, o.conc)
	case "idle":
		return runIdle(o.addr, o.user, o.pass, o.n)
	case "smallstor":
		return runSmallStor(o.addr, o.user, o.pass, o.n, o.conc, o.size)
	case "idle-many":
		return runIdleMany(o.addr, o.user, o.pass, o.n, o.conc)
	case "retr-many":
		return runRetrMany(o.addr, o.user, o.pass, o.path, o.n)
	case "sftp-get":
		return runSFTPGet(o.addr, o.user, o.pass, o.sshKey, o.path)
	case "sftp-put":
		return runSFTPPut(o.addr, o.user, o.pass, o.sshKey, o.src, o.path)
	case "sftp-logins":
		return runSFTPLogins(o.addr, o.user, o.pass, o.sshKey, o.duration, o.maxN)
	case "sftp-idle":
		return runSFTPIdle(o.addr, o.user, o.pass, o.sshKey, o.n)
	case "s3mkbucket":
		return runS3MakeBucket(o.addr, o.user, o.pass, o.bucket)
	case "s3put":
		return runS3Put(o.addr, o.user, o.pass, o.bucket, o.path, o.src, o.keep)
	case "s3get":
		return runS3Get(o.addr, o.user, o.pass, o.bucket, o.path)
	}
	return nil, fmt.Errorf("unknown subcommand %q", cmd)
}

func fatal(err error) {
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"error": err.Error()})
	os.Exit(1)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ---- a minimal FTP client ----

type client struct {
	addr  string
	host  string
	raw   net.Conn
	c     net.Conn // raw, or TLS after AUTH TLS
	r     *bufio.Reader
	tls   *tls.Config
	protP bool
}

func dial(addr string) (*client, error) {
	raw, err := net.DialTimeout("tcp", addr, min(30*time.Second, opTimeout))
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	cl := &client{addr: addr, host: host, raw: raw, c: raw, r: bufio.NewReader(raw)}
	if _, _, err := cl.expect(220); err != nil {
		raw.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return cl, nil
}

func (cl *client) close() { _ = cl.raw.Close() }

// reply reads one (possibly multi-line) reply.
func (cl *client) reply() (int, string, error) {
	_ = cl.raw.SetReadDeadline(time.Now().Add(opTimeout))
	line, err := cl.r.ReadString('\n')
	if err != nil {
		return 0, "", err
	}
	if len(line) < 4 {
		return 0, line, fmt.Errorf("short reply %q", line)
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil {
		return 0, line, fmt.Errorf("bad reply %q", line)
	}
	msg := line
	if line[3] == '-' {
		end := line[:3] + " "
		for {
			l, err := cl.r.ReadString('\n')
			if err != nil {
				return 0, msg, err
			}
			msg += l
			if strings.HasPrefix(l, end) {
				break
			}
		}
	}
	return code, strings.TrimSpace(msg), nil
}

func (cl *client) expect(codes ...int) (int, string, error) {
	code, msg, err := cl.reply()
	if err != nil {
		return code, msg, err
	}
	if !slices.Contains(codes, code) {
		return code, msg, fmt.Errorf("unexpected reply %q (want %v)", msg, codes)
	}
	return code, msg, nil
}

func (cl *client) send(line string) error {
	_ = cl.raw.SetWriteDeadline(time.Now().Add(opTimeout))
	_, err := io.WriteString(cl.c, line+"\r\n")
	return err
}

func (cl *client) cmd(line string, codes ...int) (string, error) {
	if err := cl.send(line); err != nil {
		return "", err
	}
	_, msg, err := cl.expect(codes...)
	if err != nil {
		verb, _, _ := strings.Cut(line, " ")
		if verb == "PASS" {
			line = "PASS ***"
		}
		return msg, fmt.Errorf("%s: %w", line, err)
	}
	return msg, nil
}

func (cl *client) login(user, pass string) error {
	if _, err := cl.cmd("USER "+user, 331, 230); err != nil {
		return err
	}
	_, err := cl.cmd("PASS "+pass, 230)
	return err
}

func tlsConfig() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // the benchmark's self-signed certificate
		ServerName:         "127.0.0.1",
		ClientSessionCache: tls.NewLRUClientSessionCache(16),
	}
}

func (cl *client) startTLS() error {
	if _, err := cl.cmd("AUTH TLS", 234); err != nil {
		return err
	}
	cl.tls = tlsConfig()
	tc := tls.Client(cl.raw, cl.tls)
	_ = cl.raw.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("control TLS handshake: %w", err)
	}
	_ = cl.raw.SetDeadline(time.Time{})
	cl.c = tc
	cl.r = bufio.NewReader(tc)
	if _, err := cl.cmd("PBSZ 0", 200); err != nil {
		return err
	}
	if _, err := cl.cmd("PROT P", 200); err != nil {
		return err
	}
	cl.protP = true
	return nil
}

// session dials, optionally negotiates TLS, logs in and sets TYPE I.
func session(addr, user, pass string, useTLS bool) (*client, error) {
	cl, err := dial(addr)
	if err != nil {
		return nil, err
	}
	if useTLS {
		if err := cl.startTLS(); err != nil {
			cl.close()
			return nil, err
		}
	}
	if err := cl.login(user, pass); err != nil {
		cl.close()
		return nil, err
	}
	if _, err := cl.cmd("TYPE I", 200); err != nil {
		cl.close()
		return nil, err
	}
	return cl, nil
}

// transfer sends EPSV, connects, sends cmd, waits for the 1xx and returns the data
// connection (TLS-wrapped under PROT P) and the TLS cipher suite name, if any.
func (cl *client) transfer(cmd string) (net.Conn, string, error) {
	msg, err := cl.cmd("EPSV", 229)
	if err != nil {
		return nil, "", err
	}
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j < i+4 {
		return nil, "", fmt.Errorf("bad EPSV reply %q", msg)
	}
	port := msg[i+4 : j]
	dc, err := net.DialTimeout("tcp", net.JoinHostPort(cl.host, port), 30*time.Second)
	if err != nil {
		return nil, "", fmt.Errorf("data connect: %w", err)
	}
	if _, err := cl.cmd(cmd, 125, 150); err != nil {
		dc.Close()
		return nil, "", err
	}
	if !cl.protP {
		return dc, "", nil
	}
	tc := tls.Client(dc, cl.tls)
	_ = dc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		dc.Close()
		return nil, "", fmt.Errorf("data TLS handshake: %w", err)
	}
	_ = dc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	return tc, tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite), nil
}

// ---- figures ----

type transferResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mbps"`
	TLS     string  `json:"tls,omitempty"`
}

func runRetr(addr, user, pass, path string, useTLS bool) (any, error) {
	cl, err := session(addr, user, pass, useTLS)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	buf := make([]byte, 1<<20)
	start := time.Now()
	n, suite, err := retrOnce(cl, path, buf)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	_ = cl.send("QUIT")
	return transferResult{Bytes: n, Seconds: secs, MBps: float64(n) / 1e6 / secs, TLS: suite}, nil
}

func runStor(addr, user, pass, src, path string, useTLS bool) (any, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cl, err := session(addr, user, pass, useTLS)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	start := time.Now()
	dc, suite, err := cl.transfer("STOR " + path)
	if err != nil {
		return nil, err
	}
	// *os.File to *net.TCPConn: sendfile(2) on the client side too.
	n, err := io.Copy(dc, f)
	if err != nil {
		dc.Close()
		return nil, fmt.Errorf("data write after %d bytes: %w", n, err)
	}
	if err := dc.Close(); err != nil {
		return nil, err
	}
	if _, _, err := cl.expect(226, 250); err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	_ = cl.send("QUIT")
	return transferResult{Bytes: n, Seconds: secs, MBps: float64(n) / 1e6 / secs, TLS: suite}, nil
}

// loginOnce is one whole short session: connect, USER, PASS, QUIT.
func loginOnce(addr, user, pass string) error {
	cl, err := dial(addr)
	if err != nil {
		return err
	}
	defer cl.close()
	if err := cl.login(user, pass); err != nil {
		return err
	}
	_, err = cl.cmd("QUIT", 221)
	return err
}

// runLogins logs in sequentially for d (or maxN logins); rate > 0 paces the logins, so
// that the server's event batching can be seen at a load it keeps up with.
func runLogins(addr, user, pass string, d time.Duration, maxN int, rate float64) (any, error) {
	// One login first, outside the timing: it fills djftpd's cache.
	if err := loginOnce(addr, user, pass); err != nil {
		return nil, fmt.Errorf("warm-up login: %w", err)
	}
	cpu0 := ownCPU()
	start := time.Now()
	count := 0
	for time.Since(start) < d && (maxN == 0 || count < maxN) {
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(count) / rate * float64(time.Second)))))
		}
		if err := loginOnce(addr, user, pass); err != nil {
			return nil, fmt.Errorf("login %d: %w", count, err)
		}
		count++
	}
	secs := time.Since(start).Seconds()
	return map[string]any{"logins": count, "seconds": secs, "per_second": float64(count) / secs,
		"client_cpu_s": (ownCPU() - cpu0).Seconds()}, nil
}

// ownCPU is this process's user+system CPU time so far: what a sequential client costs per
// login bounds any server's sequential logins/s on a machine whose cores it shares.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runConcurrent(addr, user, pass string, n int) (any, error) {
	if err := loginOnce(addr, user, pass); err != nil {
		return nil, fmt.Errorf("warm-up login: %w", err)
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	clients := make([]*client, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			cl, err := dial(addr)
			if err == nil {
				if err = cl.login(user, pass); err != nil {
					cl.close()
					cl = nil
				}
			}
			clients[i], errs[i] = cl, err
		}()
	}
	time.Sleep(50 * time.Millisecond) // every goroutine is parked at the gate
	start := time.Now()
	close(gate)
	wg.Wait()
	secs := time.Since(start).Seconds()
	failed := 0
	var first error
	for i, cl := range clients {
		if cl != nil {
			_ = cl.send("QUIT")
			cl.close()
		} else {
			failed++
			if first == nil {
				first = errs[i]
			}
		}
	}
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d logins failed, first: %w", failed, n, first)
	}
	return map[string]any{"clients": n, "seconds": secs}, nil
}

func runUncached(addr string, users []string, pass string) (any, error) {
	if len(users) == 0 {
		return nil, errors.New("no -users")
	}
	each, secs, err := releaseAtOnce(len(users), func(i int) error {
		return loginOnce(addr, users[i], pass)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"logins": len(users), "seconds": secs, "per_second": float64(len(users)) / secs,
		"fastest_s": each[0], "slowest_s": each[len(each)-1]}, nil
}

// runStall downloads path over and over at full speed on one session while the logins
// of users run, conc at a time, and reports the gaps between successive reads of the
// download that fall inside the login window.
func runStall(addr, user, pass, path string, users []string, upass string, conc int) (any, error) {
	if len(users) == 0 {
		return nil, errors.New("no -users")
	}
	cl, err := session(addr, user, pass, false)
	if err != nil {
		return nil, err
	}
	defer cl.close()

	dl := &stallDownload{cl: cl, path: path, base: time.Now(), started: make(chan struct{}),
		done: make(chan error, 1), reads: make([]stallRead, 0, 1<<20)}
	go dl.run()
	select {
	case <-dl.started:
	case err := <-dl.done:
		return nil, fmt.Errorf("download did not start: %w", err)
	}
	time.Sleep(300 * time.Millisecond)

	t0 := time.Since(dl.base)
	loginErr := loginsConcurrently(addr, users, upass, conc)
	t1 := time.Since(dl.base)
	dl.stop.Store(true)
	if err := <-dl.done; err != nil {
		return nil, err
	}
	if loginErr != nil {
		return nil, loginErr
	}
	return stallStats(dl.reads, int64(t0), int64(t1), len(users), dl.transfers)
}

// stallRead is one read of the stall download: when, and in which transfer.
type stallRead struct {
	at       int64 // ns since base
	transfer int
}

// stallDownload is the download runStall measures; its fields other than stop are read
// only after done has delivered.
type stallDownload struct {
	cl        *client
	path      string
	base      time.Time
	stop      atomic.Bool
	started   chan struct{}
	done      chan error
	reads     []stallRead
	transfers int
}

// run downloads path again and again until stop, recording every read.
func (d *stallDownload) run() {
	buf := make([]byte, 256<<10)
	once := sync.Once{}
	for tr := 0; !d.stop.Load(); tr++ {
		dc, _, err := d.cl.transfer("RETR " + d.path)
		if err != nil {
			d.done <- err
			return
		}
		once.Do(func() { close(d.started) })
		err = d.readAll(dc, buf, tr)
		dc.Close()
		if err != nil {
			d.done <- err
			return
		}
		d.transfers = tr + 1
		if d.stop.Load() {
			break // the server answers 426 or 226; the session is closed after
		}
		if _, _, err := d.cl.expect(226, 250); err != nil {
			d.done <- err
			return
		}
	}
	d.done <- nil
}

// readAll reads one transfer to its end (or to stop), recording each read.
func (d *stallDownload) readAll(dc net.Conn, buf []byte, tr int) error {
	for !d.stop.Load() {
		_ = dc.SetReadDeadline(time.Now().Add(opTimeout))
		m, err := dc.Read(buf)
		if m > 0 {
			d.reads = append(d.reads, stallRead{int64(time.Since(d.base)), tr})
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("download read: %w", err)
		}
	}
	return nil
}

// loginsConcurrently logs every user in once, conc at a time.
func loginsConcurrently(addr string, users []string, upass string, conc int) error {
	errs := make([]error, len(users))
	limited(len(users), conc, func(i int) { errs[i] = loginOnce(addr, users[i], upass) })
	return errors.Join(errs...)
}

// stallStats summarises the gaps between reads of one transfer inside [t0, t1].
func stallStats(reads []stallRead, t0, t1 int64, logins, transfers int) (any, error) {
	var gaps []float64 // ms
	maxAny := 0.0      // including the gaps across a restart of the download
	for i := 1; i < len(reads); i++ {
		a, b := reads[i-1], reads[i]
		if a.at < t0 || b.at > t1 {
			continue
		}
		g := float64(b.at-a.at) / 1e6
		maxAny = max(maxAny, g)
		if a.transfer == b.transfer {
			gaps = append(gaps, g)
		}
	}
	if len(gaps) == 0 {
		return nil, errors.New("no reads during the logins")
	}
	slices.Sort(gaps)
	pct := func(p float64) float64 { return gaps[min(len(gaps)-1, int(p*float64(len(gaps))))] }
	over10 := 0.0
	for _, g := range gaps {
		if g >= 10 {
			over10 += g
		}
	}
	return map[string]any{
		"logins": logins, "login_window_s": float64(t1-t0) / 1e9, "reads": len(gaps),
		"transfers": transfers,
		"p50_ms":    pct(0.50), "p99_ms": pct(0.99), "p999_ms": pct(0.999), "max_ms": gaps[len(gaps)-1],
		"max_incl_restart_ms": maxAny, "stalled_ms_over_10ms_gaps": over10,
	}, nil
}

// runIdle opens n logged-in sessions (50 at a time), prints {"ready": n} and holds them
// until stdin closes, then quits them and prints the final result.
func runIdle(addr, user, pass string, n int) (any, error) {
	if err := loginOnce(addr, user, pass); err != nil {
		return nil, fmt.Errorf("warm-up login: %w", err)
	}
	start := time.Now()
	clients, openErr := openSessions(addr, user, pass, n, 50, false)
	secs := time.Since(start).Seconds()
	open := 0
	for _, cl := range clients {
		if cl != nil {
			open++
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"ready": open, "seconds": secs})
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, cl := range clients {
		if cl != nil {
			_ = cl.send("QUIT")
			cl.close()
		}
	}
	if openErr != nil {
		return nil, openErr
	}
	return map[string]any{"sessions": open, "seconds": secs}, nil
}

// runSmallStor uploads n small files over conc sessions at once, each session one upload
// after the other, and reports the time from the last data byte (data connection closed)
// to the 226: what the server does after the data, its event included.
func runSmallStor(addr, user, pass string, n, conc, size int) (any, error) {
	var (
		mu    sync.Mutex
		waits []time.Duration
		wg    sync.WaitGroup
		errs  = make(chan error, conc)
	)
	data := make([]byte, size)
	start := time.Now()
	for c := range conc {
		wg.Go(func() {
			cl, err := session(addr, user, pass, false)
			if err != nil {
				errs <- err
				return
			}
			defer cl.close()
			for i := c; i < n; i += conc {
				dc, _, err := cl.transfer(fmt.Sprintf("STOR smallstor-%d-%d.bin", c, i))
				if err != nil {
					errs <- err
					return
				}
				_, werr := dc.Write(data)
				cerr := dc.Close()
				last := time.Now()
				if err := errors.Join(werr, cerr); err != nil {
					errs <- err
					return
				}
				if _, _, err := cl.expect(226, 250); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				waits = append(waits, time.Since(last))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	slices.Sort(waits)
	ms := func(q float64) float64 {
		return float64(waits[min(int(q*float64(len(waits))), len(waits)-1)].Microseconds()) / 1000
	}
	return map[string]any{"uploads": len(waits), "conc": conc, "seconds": time.Since(start).Seconds(),
		"p50_ms": ms(0.50), "p99_ms": ms(0.99), "max_ms": ms(1)}, nil
}
