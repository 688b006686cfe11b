package ftpdriver

import (
	"sort"
	"strings"
)

// commandSyntax is what HELP says of each verb in the command table (RFC 1123
// 4.1.2.13 requires HELP). TestEveryCommandHasHelp keeps it in step with the table.
var commandSyntax = map[string]string{
	"USER": "<sp> username", "PASS": "<sp> password", "QUIT": "(end the session)",
	"NOOP": "(no operation)", "SYST": "(system type)", "FEAT": "(list extensions)",
	"HELP": "[<sp> command]", "OPTS": "<sp> UTF8 ON | MLST facts | HASH algorithm",
	"TYPE": "<sp> A | I", "MODE": "<sp> S", "STRU": "<sp> F", "ALLO": "<sp> bytes (ignored)",
	"PWD": "(print working directory)", "XPWD": "(print working directory)",
	"CWD": "<sp> directory", "XCWD": "<sp> directory",
	"CDUP": "(change to parent directory)", "XCUP": "(change to parent directory)",
	"MKD": "<sp> directory", "XMKD": "<sp> directory",
	"RMD": "<sp> directory", "XRMD": "<sp> directory",
	"DELE": "<sp> file", "RNFR": "<sp> old name", "RNTO": "<sp> new name",
	"SIZE": "<sp> file", "MDTM": "<sp> file", "REST": "<sp> byte offset",
	"PASV": "(passive mode)", "EPSV": "[<sp> 1 | 2 | ALL]",
	"PORT": "<sp> h1,h2,h3,h4,p1,p2", "EPRT": "<sp> |proto|address|port|",
	"LIST": "[<sp> path]", "NLST": "[<sp> path]", "MLSD": "[<sp> directory]",
	"MLST": "[<sp> path]", "STAT": "[<sp> path]",
	"RETR": "<sp> file", "STOR": "<sp> file", "APPE": "<sp> file", "STOU": "(store with a unique name)",
	"ABOR": "(abort the transfer)", "SITE": "<sp> CHMOD mode path | HELP",
	"MFMT": "<sp> YYYYMMDDHHMMSS file", "HASH": "<sp> file", "AVBL": "[<sp> directory]",
	"AUTH": "<sp> TLS", "PBSZ": "<sp> 0", "PROT": "<sp> P | C",
}

// unimplementedVerbs are standard commands djftpd knows and does not do: they answer
// 502 (RFC 959 4.2.1), not goftp's 500 for an unknown command.
var unimplementedVerbs = []string{
	"ACCT", "SMNT", "REIN", // RFC 959
	"LPRT", "LPSV", // RFC 1639
	"ADAT", "CCC", "CONF", "ENC", "MIC", // RFC 2228
	"LANG", // RFC 2640
}

// notImplemented is the table entry of every unimplementedVerbs verb.
var notImplemented = &command{open: true, run: func(s *session, _ string) {
	s.reply(502, "Command not implemented")
}}

// handleHELP answers 214 with the implemented verbs, or the syntax of one of them.
func (s *session) handleHELP(param string) {
	verb := strings.ToUpper(strings.TrimSpace(param))
	if verb == "" {
		verbs := make([]string, 0, len(s.srv.cmds))
		for v := range s.srv.cmds {
			verbs = append(verbs, v)
		}
		sort.Strings(verbs)
		var b strings.Builder
		b.WriteString("The following commands are recognized:\n")
		for i := 0; i < len(verbs); i += 8 {
			b.WriteString(" " + strings.Join(verbs[i:min(i+8, len(verbs))], " ") + "\n")
		}
		b.WriteString("Help OK")
		s.reply(214, b.String())
		return
	}
	if _, ok := s.srv.cmds[verb]; !ok {
		s.reply(502, "Unknown command "+verb)
		return
	}
	s.reply(214, "Syntax: "+verb+" "+commandSyntax[verb])
}
