package stats

import (
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/choria-broker/choria-broker/internal/buildinfo"
)

// maxBrokerClients is go-choria's build constant, reported as it does.
const maxBrokerClients = 50000

// choriaStats is go-choria's /choria/ document (statistics/stats.go).
type choriaStats struct {
	Build struct {
		Version          string `json:"version"`
		SHA              string `json:"sha"`
		BuildDate        string `json:"build_date"`
		License          string `json:"license"`
		TLS              string `json:"tls"`
		Secure           string `json:"secure"`
		Go               string `json:"go"`
		MaxBrokerClients int    `json:"max_broker_clients"`
	} `json:"build"`
	System struct {
		RSS        int64   `json:"rss"`
		CPUPercent float64 `json:"cpu_percent"`
		CPUCores   int     `json:"cpu_cores"`
	} `json:"system"`
	ConfigFile string `json:"config_file"`
	Identity   string `json:"identity"`
}

func (s *Stats) serveChoria(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/choria/" {
		http.NotFound(w, r)
		return
	}
	var c choriaStats
	c.Build.Version, c.Build.SHA, c.Build.BuildDate = buildinfo.Version(), buildinfo.Commit(), "unknown"
	c.Build.License, c.Build.TLS, c.Build.Secure = "Apache-2.0", "true", "true"
	c.Build.Go, c.Build.MaxBrokerClients = runtime.Version(), maxBrokerClients
	c.System.CPUCores = runtime.NumCPU()
	c.System.RSS = selfRSS()
	if b := s.o.Network; b != nil && b.Engine() != nil {
		// Varz measures the process's CPU as nats-server reports it.
		if v, err := b.Engine().Varz(nil); err == nil {
			c.System.RSS, c.System.CPUPercent, c.System.CPUCores = v.Mem, v.CPU, v.Cores
		}
	}
	c.ConfigFile, c.Identity = s.o.ConfigFile, s.o.Config.Identity
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(&c)
}

// selfRSS reads the resident set from /proc (Linux); 0 elsewhere.
func selfRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
