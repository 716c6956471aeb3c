package preflight

// seedSomaxconn is the Choria documentation's advice for thousands of nodes.
const seedSomaxconn = 4092

// somaxconn caps every listener's accept queue: connections that finished
// the TCP handshake and wait for the broker to accept them. Beyond the
// seed value, room for an eighth of the fleet arriving at once: reconnects
// after a restart are jittered over a few seconds.
func somaxconn() Check {
	return sysctlMin{
		name: "kernel.somaxconn",
		key:  "net.core.somaxconn",
		levels: func(n int) (int64, int64) {
			return queueLevels(n, seedSomaxconn, 8, 65535)
		},
		why: "a full accept queue drops connections after a broker restart, and the kernel logs it as a SYN flood",
	}
}
