// Package access holds the rules every protocol front end applies, whatever the wire:
// a login goes through the authenticator (the measured cache in front of Django),
// waits the failed-login delay when wrong, counts toward the address's ban and the
// connection's attempts, is refused past the user's max_sessions, and opens the
// granted home through DJFTPD_HOME_ROOT's os.Root. The result is a User: its
// permission letters (Can), its home (Root), its grant, and its disk usage against
// the quota (QuotaLeft, GuardQuota before an upload, AddUsage after a delete), shared
// by all its sessions. Emit and TransferEvent stamp the events every protocol sends.
// FTP (ftpdriver) and SFTP are thin front ends over it; each keeps only its own reply
// mapping (ftpdriver's errors.go has an SFTP status column ready: SFTPStatus).
//
// A front end uses it like this:
//
//	core, err := access.New(access.Config{HomeRoot: "/srv/ftp", CreateHome: true,
//		FailedLoginDelay: time.Second, MaxLoginAttempts: 3}, auth)
//	...
//	if core.Banned(peer) { refuse the connection }
//	attempts := core.NewAttempts()
//	user, err := core.Login(ctx, access.LoginRequest{Username: name, Password: pw,
//		ClientIP: peer, Protocol: "sftp", Session: id})
//	switch {
//	case errors.Is(err, djangoclient.ErrInvalidCredentials):
//		// the delay has been waited; access.ErrBanned is wrapped too if the
//		// address is now banned
//		if errors.Is(err, access.ErrBanned) || attempts.Fail() { close }
//	case err != nil:
//		// Django or the disk failed: close, do not count an attempt
//	}
//	defer user.Close()
//	access.Emit(queue, djangoclient.Event{Type: djangoclient.EventLogin}, id, peer, user)
//	if !user.Can('r') { refuse }
//	f, err := user.FS().Open(ctx, path, 0) // the sandbox: nothing outside the home
//	guard, err := user.GuardQuota(0) // before an upload; errors.Is(err, access.ErrQuotaUsedUp)
package access
