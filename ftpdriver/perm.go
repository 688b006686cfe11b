package ftpdriver

import "strings"

// commandPerms is the one table from command to the pyftpdlib permission letter it
// needs (DESIGN.md §4). dispatch checks it before any handler runs; a command missing
// here needs no letter. It is never written after package init.
var commandPerms = map[string]byte{
	"CWD": 'e', "XCWD": 'e', "CDUP": 'e', "XCUP": 'e',
	"LIST": 'l', "NLST": 'l', "MLSD": 'l', "MLST": 'l', "SIZE": 'l', "MDTM": 'l', "STAT": 'l', "HASH": 'l',
	"RETR": 'r',
	"APPE": 'a',
	"DELE": 'd', "RMD": 'd', "XRMD": 'd',
	"RNFR": 'f', "RNTO": 'f',
	"MKD": 'm', "XMKD": 'm',
	"STOR": 'w', "STOU": 'w',
	"SITE CHMOD": 'M',
	"MFMT":       'T',
}

// permKey is the commandPerms key of a command: SITE subcommands have their own.
func permKey(verb, param string) string {
	if verb == "SITE" {
		sub, _, _ := strings.Cut(strings.TrimSpace(param), " ")
		return "SITE " + strings.ToUpper(sub)
	}
	return verb
}
