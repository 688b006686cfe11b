package ftpdriver

// commandPerms is the one table from command to the pyftpdlib permission letter it
// needs (DESIGN.md §4). dispatch checks it before any handler runs; a command missing
// here needs no letter. It is never written after package init.
var commandPerms = map[string]byte{
	"CWD": 'e', "XCWD": 'e', "CDUP": 'e', "XCUP": 'e',
	"LIST": 'l', "NLST": 'l', "SIZE": 'l', "MDTM": 'l',
	"RETR": 'r',
	"APPE": 'a',
	"DELE": 'd', "RMD": 'd', "XRMD": 'd',
	"RNFR": 'f', "RNTO": 'f',
	"MKD": 'm', "XMKD": 'm',
	"STOR": 'w',
}
