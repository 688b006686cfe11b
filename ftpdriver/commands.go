package ftpdriver

import (
	"sort"
	"strings"

	goftp "goftp.io/server/v2"
)

// command is one entry of djftpd's command table (ftpserverlib's commandsMap shape).
type command struct {
	open       bool   // allowed before login
	tlsOnly    bool   // listed in FEAT only when TLS is configured
	needsParam bool   // an empty argument is answered 501
	feat       string // line in the FEAT reply; empty for none
	run        func(s *session, param string)
}

// commandTable lists every verb djftpd answers. Verbs not here get goftp's
// "500 Command not found". Every handler here is djftpd's own: goftp's handlers trust
// their own login state and paths (DESIGN.md §8).
func commandTable() map[string]*command {
	cwd := &command{needsParam: true, run: (*session).handleCWD}
	cdup := &command{run: (*session).handleCDUP}
	mkd := &command{needsParam: true, run: (*session).handleMKD}
	rmd := &command{needsParam: true, run: (*session).handleRMD}
	pwd := &command{run: (*session).handlePWD}
	return map[string]*command{
		"USER": {open: true, needsParam: true, run: (*session).handleUSER},
		"PASS": {open: true, run: (*session).handlePASS},
		"QUIT": {open: true, run: (*session).handleQUIT},
		"NOOP": {open: true, run: func(s *session, _ string) { s.reply(200, "NOOP ok") }},
		"SYST": {open: true, run: func(s *session, _ string) { s.reply(215, "UNIX Type: L8") }},
		"FEAT": {open: true, run: (*session).handleFEAT},
		"HELP": {open: true, run: (*session).handleHELP},
		"OPTS": {open: true, needsParam: true, feat: "UTF8", run: (*session).handleOPTS},
		"TYPE": {needsParam: true, run: (*session).handleTYPE},
		"MODE": {needsParam: true, run: (*session).handleMODE},
		"STRU": {needsParam: true, run: (*session).handleSTRU},
		"ALLO": {run: func(s *session, _ string) { s.reply(202, "No storage allocation necessary") }},
		"PWD":  pwd, "XPWD": pwd,
		"CWD": cwd, "XCWD": cwd,
		"CDUP": cdup, "XCUP": cdup,
		"MKD": mkd, "XMKD": mkd,
		"RMD": rmd, "XRMD": rmd,
		"DELE": {needsParam: true, run: (*session).handleDELE},
		"RNFR": {needsParam: true, run: (*session).handleRNFR},
		"RNTO": {needsParam: true, run: (*session).handleRNTO},
		"SIZE": {needsParam: true, feat: "SIZE", run: (*session).handleSIZE},
		"MDTM": {needsParam: true, feat: "MDTM", run: (*session).handleMDTM},
		"REST": {needsParam: true, feat: "REST STREAM", run: (*session).handleREST},
		"PASV": {run: (*session).handlePASV},
		"EPSV": {feat: "EPSV", run: (*session).handleEPSV},
		"PORT": {needsParam: true, run: (*session).handlePORT},
		"EPRT": {needsParam: true, feat: "EPRT", run: (*session).handleEPRT},
		"LIST": {run: (*session).handleLIST},
		"NLST": {run: (*session).handleNLST},
		"RETR": {needsParam: true, run: (*session).handleRETR},
		"STOR": {needsParam: true, run: (*session).handleSTOR},
		"APPE": {needsParam: true, run: (*session).handleAPPE},
		"ABOR": {run: (*session).handleABOR},
		"MLST": {feat: "MLST", run: (*session).handleMLST},
		"MLSD": {run: (*session).handleMLSD},
		"STAT": {run: (*session).handleSTAT},
		"STOU": {run: (*session).handleSTOU},
		"SITE": {needsParam: true, run: (*session).handleSITE},
		"MFMT": {needsParam: true, feat: "MFMT", run: (*session).handleMFMT},
		"HASH": {needsParam: true, feat: "HASH", run: (*session).handleHASH},
		"AVBL": {feat: "AVBL", run: (*session).handleAVBL},
		"AUTH": {open: true, needsParam: true, tlsOnly: true, feat: "AUTH TLS", run: (*session).handleAUTH},
		"PBSZ": {open: true, needsParam: true, tlsOnly: true, feat: "PBSZ", run: (*session).handlePBSZ},
		"PROT": {open: true, needsParam: true, tlsOnly: true, feat: "PROT", run: (*session).handlePROT},
	}
}

// libCommand adapts a table entry to goftp's Command interface. It tells goftp the
// command needs neither login nor parameter, because goftp's checks read goftp's own
// login state, which djftpd never sets; dispatch does both checks instead.
// goftp defect: its logged-in user is unexported and set only by its own PASS, which
// answers every auth failure "550 Checking password error".
type libCommand struct {
	verb string
	cmd  *command
}

func (c libCommand) IsExtend() bool     { return false }
func (c libCommand) RequireParam() bool { return false }
func (c libCommand) RequireAuth() bool  { return false }
func (c libCommand) Execute(gs *goftp.Session, param string) {
	s := sessionOf(gs)
	if s == nil {
		gs.WriteMessage(421, "Service not available")
		gs.Close()
		return
	}
	s.lib = gs
	s.dispatch(c.verb, c.cmd, param)
}

func (s *Server) libCommands() map[string]goftp.Command {
	m := make(map[string]goftp.Command, len(s.cmds)+len(unimplementedVerbs))
	for _, verb := range unimplementedVerbs {
		m[verb] = libCommand{verb: verb, cmd: notImplemented}
	}
	for verb, cmd := range s.cmds {
		m[verb] = libCommand{verb: verb, cmd: cmd}
	}
	return m
}

// dispatch runs one command after the checks every command shares: login, argument,
// permission letter.
func (s *session) dispatch(verb string, cmd *command, param string) {
	switch {
	case !s.srv.debugLog:
	case verb == "PASS":
		s.log.Debug("command", "cmd", verb, "param", "***")
	default:
		s.log.Debug("command", "cmd", verb, "param", param)
	}
	if verb != "RNTO" {
		// RNTO must come right after a successful RNFR, which sets this again.
		s.renameFrom = ""
	}
	defer s.publishCommand(verb)()
	letters := commandPerms[permKey(verb, param)]
	switch {
	case (verb == "USER" || verb == "PASS") && s.srv.cfg.TLSMode == TLSRequired && s.conn.tls == nil:
		s.reply(530, "TLS required: send AUTH TLS first")
	case !cmd.open && s.grant == nil:
		s.reply(530, "Please log in with USER and PASS")
	case cmd.needsParam && strings.TrimSpace(param) == "":
		s.reply(501, "Syntax error: "+verb+" needs an argument")
	case letters != "" && !canAll(s.grant, letters):
		s.log.Debug("permission denied", "cmd", verb, "letters", letters)
		s.reply(replyFor(errNoLetter))
	default:
		cmd.run(s, param)
	}
}

func (s *session) handleFEAT(string) {
	var feats []string
	for _, cmd := range s.srv.cmds {
		if cmd.feat == "MFMT" && !s.srv.access.Storage().Capabilities().Mtime {
			continue // object storage cannot set a file's time
		}
		if cmd.feat != "" && (!cmd.tlsOnly || s.tlsEnabled()) {
			feats = append(feats, cmd.feat)
		}
	}
	feats = append(feats, "TVFS") // paths are RFC 3659 TVFS paths: "/"-separated, "/" is the home
	for i, f := range feats {
		switch f {
		case "MLST":
			feats[i] = s.featMLST()
		case "HASH":
			feats[i] = s.featHASH()
		}
	}
	sort.Strings(feats)
	var b strings.Builder
	b.WriteString("Extensions supported:\n")
	for _, f := range feats {
		b.WriteString(" " + f + "\n")
	}
	b.WriteString("End")
	s.reply(211, b.String())
}

func (s *session) handleOPTS(param string) {
	opt, arg, _ := strings.Cut(strings.TrimSpace(param), " ")
	switch strings.ToUpper(opt) {
	case "MLST":
		s.optsMLST(arg)
		return
	case "HASH":
		s.optsHASH(arg)
		return
	}
	if strings.EqualFold(strings.Join(strings.Fields(param), " "), "UTF8 ON") {
		s.reply(200, "UTF8 mode is always on")
		return
	}
	s.reply(501, "Option not understood")
}

func (s *session) handleTYPE(param string) {
	switch strings.ToUpper(strings.Join(strings.Fields(param), " ")) {
	case "I", "L 8":
		s.asciiType = false
		s.reply(200, "Type set to I")
	case "A", "A N":
		s.asciiType = s.srv.cfg.ASCIIConversion
		s.reply(200, "Type set to A")
	default:
		s.reply(504, "Type not supported")
	}
}

func (s *session) handleMODE(param string) {
	if strings.EqualFold(param, "S") {
		s.reply(200, "Mode set to S")
		return
	}
	s.reply(504, "Only stream mode is supported")
}

func (s *session) handleSTRU(param string) {
	if strings.EqualFold(param, "F") {
		s.reply(200, "Structure set to F")
		return
	}
	s.reply(504, "Only file structure is supported")
}

func (s *session) handleQUIT(string) {
	s.reply(221, "Goodbye")
	s.endReason = "quit"
	s.close()
}
