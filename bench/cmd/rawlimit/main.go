// Command rawlimit is the "raw limit" column of djftpd's benchmark (bench/run.py starts it):
// the least an FTP server can do for ftpbench's retr and stor figures on this machine. It
// speaks only what ftpbench sends (USER, PASS, TYPE, EPSV, RETR, STOR, QUIT), accepts any
// password, and moves data the kernel's way: RETR is one sendfile(2) loop from the file to
// the data socket, STOR one splice(2) loop from the socket into the file (Go's io.Copy picks
// both on Linux). Every other FTP server's transfer figure is printed as a fraction of it.
//
//	rawlimit -listen 127.0.0.1:0 -root DIR     prints "listening <addr>" once ready
//
// It only listens on loopback; it is a measuring instrument, not a server for anyone.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "control address (loopback only)")
	root := flag.String("root", ".", "directory RETR reads from and STOR writes into")
	flag.Parse()
	if err := run(*listen, *root); err != nil {
		slog.Error("rawlimit", "err", err)
		os.Exit(1)
	}
}

func run(listen, root string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen address: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing non-loopback address %s", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	fmt.Printf("listening %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		// One goroutine per session; it ends when the client closes the connection.
		go func() {
			defer c.Close()
			if err := serve(c, root); err != nil && !errors.Is(err, io.EOF) {
				slog.Warn("session", "err", err)
			}
		}()
	}
}

// session is one control connection: the passive listener EPSV opened, if any.
type session struct {
	c    net.Conn
	w    *bufio.Writer
	root string
	pasv net.Listener
}

func (s *session) reply(line string) error {
	if _, err := s.w.WriteString(line + "\r\n"); err != nil {
		return err
	}
	return s.w.Flush()
}

func serve(c net.Conn, root string) error {
	s := &session{c: c, w: bufio.NewWriter(c), root: root}
	defer s.closePasv()
	r := bufio.NewReader(c)
	if err := s.reply("220 rawlimit"); err != nil {
		return err
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		verb, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		done, err := s.command(strings.ToUpper(verb), arg)
		if err != nil || done {
			return err
		}
	}
}

func (s *session) command(verb, arg string) (bool, error) {
	switch verb {
	case "USER":
		return false, s.reply("331 any password")
	case "PASS":
		return false, s.reply("230 logged in")
	case "TYPE":
		return false, s.reply("200 ok")
	case "EPSV":
		return false, s.epsv()
	case "RETR", "STOR":
		return false, s.transfer(verb, arg)
	case "QUIT":
		return true, s.reply("221 bye")
	default:
		return false, s.reply("502 not here")
	}
}

func (s *session) closePasv() {
	if s.pasv != nil {
		_ = s.pasv.Close()
		s.pasv = nil
	}
}

func (s *session) epsv() error {
	s.closePasv()
	host, _, _ := net.SplitHostPort(s.c.LocalAddr().String())
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // as djftpd's passive listener: Go's default MPTCP costs more
	ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return s.reply("425 " + err.Error())
	}
	s.pasv = ln
	return s.reply(fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)",
		ln.Addr().(*net.TCPAddr).Port))
}

func (s *session) transfer(verb, name string) error {
	if s.pasv == nil {
		return s.reply("425 EPSV first")
	}
	dc, err := s.pasv.Accept()
	s.closePasv()
	if err != nil {
		return s.reply("425 " + err.Error())
	}
	if err := s.reply("150 data"); err != nil {
		dc.Close()
		return err
	}
	err = move(verb, dc, filepath.Join(s.root, filepath.Base(name)))
	if cerr := dc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.reply("451 " + err.Error())
	}
	return s.reply("226 done")
}

// move is the whole data path: io.Copy to a *net.TCPConn from an *os.File is sendfile(2),
// and (*os.File).ReadFrom a *net.TCPConn is splice(2).
func move(verb string, dc net.Conn, path string) error {
	if verb == "RETR" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		defer f.Close()
		_, err = io.Copy(dc, f)
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if _, err := f.ReadFrom(dc); err != nil {
		f.Close()
		return fmt.Errorf("splice: %w", err)
	}
	return f.Close()
}
