package preflight

// fileMax is the system-wide count of open files: the broker's sockets and
// everything else on the host.
func fileMax() Check {
	return sysctlMin{
		name: "kernel.file_max",
		key:  "fs.file-max",
		levels: func(n int) (int64, int64) {
			// 65 536 for the rest of the host.
			return fdNeed(n), fdWant(n) + 65536
		},
		why: "when the system runs out of files, accept fails for every process with ENFILE",
	}
}
