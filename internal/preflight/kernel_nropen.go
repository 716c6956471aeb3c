package preflight

// nrOpen is the ceiling of any process's open-file limit: LimitNOFILE or
// ulimit -n above it fail.
func nrOpen() Check {
	return sysctlMin{
		name: "kernel.nr_open",
		key:  "fs.nr_open",
		levels: func(n int) (int64, int64) {
			return fdNeed(n), fdWant(n)
		},
		why: "no open-file limit can be set above it, so the broker cannot hold the fleet",
	}
}
