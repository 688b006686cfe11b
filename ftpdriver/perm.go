package ftpdriver

import (
	"strings"

	"github.com/djftpd/djftpd/djangoclient"
)

// commandPerms is the one table from command to the pyftpdlib permission letters it
// needs, all of them (DESIGN.md §4). dispatch checks it before any handler runs; a
// command missing here needs no letter. It is never written after package init.
var commandPerms = map[string]string{
	"CWD": "e", "XCWD": "e", "CDUP": "e", "XCUP": "e",
	"LIST": "l", "NLST": "l", "MLSD": "l", "MLST": "l", "SIZE": "l", "MDTM": "l", "STAT": "l",
	"HASH": "lr", // a checksum reveals the content: it needs RETR's letter too
	"RETR": "r",
	"APPE": "a",
	"DELE": "d", "RMD": "d", "XRMD": "d",
	"RNFR": "f", "RNTO": "f",
	"MKD": "m", "XMKD": "m",
	"STOR": "w", "STOU": "w",
	"SITE CHMOD": "M",
	"MFMT":       "T",
}

// canAll reports whether g has every letter in letters.
func canAll(g *djangoclient.Grant, letters string) bool {
	for i := range len(letters) {
		if !g.Can(letters[i]) {
			return false
		}
	}
	return true
}

// permKey is the commandPerms key of a command: SITE subcommands have their own.
func permKey(verb, param string) string {
	if verb == "SITE" {
		sub, _, _ := strings.Cut(strings.TrimSpace(param), " ")
		return "SITE " + strings.ToUpper(sub)
	}
	return verb
}
