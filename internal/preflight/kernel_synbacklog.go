package preflight

// seedSynBacklog is the Choria documentation's advice for thousands of nodes.
const seedSynBacklog = 8192

// synBacklog is the queue of half-open connections. A restart storm's
// SYNs look like a flood to a small queue; beyond the seed value, room for
// a quarter of the fleet, twice the accept queue as in the seed.
func synBacklog() Check {
	return sysctlMin{
		name: "kernel.tcp_max_syn_backlog",
		key:  "net.ipv4.tcp_max_syn_backlog",
		levels: func(n int) (int64, int64) {
			return queueLevels(n, seedSynBacklog, 4, 262144)
		},
		why: "the kernel throttles SYNs beyond it after a broker restart, so nodes wait seconds per retry",
	}
}
