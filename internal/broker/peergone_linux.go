package broker

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerGone returns a check that the client of a handshake still in flight
// has closed or reset its connection, or nil when c is not a TCP socket.
// The engine owns the connection and never tells us of a handshake that
// failed, so the kernel's view of the socket is the cheap way to know.
func peerGone(c net.Conn) func() bool {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() bool {
		gone := false
		err := rc.Control(func(fd uintptr) {
			info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				return // unknown: leave the slot to its timer
			}
			// A handshake needs the client's next flight, so a client
			// that sent FIN (CLOSE_WAIT) or RST (CLOSE) cannot finish.
			gone = info.State != unix.BPF_TCP_ESTABLISHED
		})
		// Control fails once the engine has closed the connection: that
		// handshake is over too.
		return err != nil || gone
	}
}
