package broker

import (
	"maps"
	"sync"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// pkiState is the outcome of the last load of each of the broker's PKI
// files, so that a failed reload shows in health and metrics and does not
// wait for the next restart to be noticed.
type pkiState struct {
	mu      sync.Mutex
	failing map[pki.Part]string // the last load's error, per file that had one
	since   map[pki.Part]time.Time
	lastOK  time.Time // the last load that put everything read in force
}

// PKIStatus reports the broker's reloads for health and metrics.
type PKIStatus struct {
	// Failing maps a part whose last reload failed to the error; the
	// previous certificate, key, CA bundle or CRL stays in force.
	Failing map[pki.Part]string
	// FailingSince is when each failing part started failing.
	FailingSince map[pki.Part]time.Time
	// LastReload is when the PKI in force was last loaded whole: start-up,
	// SIGHUP or a change of the CA or CRL file.
	LastReload time.Time
}

// record notes the outcome of loading parts; err is from pki.Reload or
// pki.ReloadTrust. A CRL is not read when the CA bundle is not, so its
// state then stays as it was.
func (s *pkiState) record(parts []pki.Part, err error, now time.Time) {
	failed := pki.FailedParts(err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing == nil {
		s.failing, s.since = map[pki.Part]string{}, map[pki.Part]time.Time{}
	}
	for _, p := range parts {
		msg, bad := failed[p]
		switch {
		case bad:
			if _, was := s.failing[p]; !was {
				s.since[p] = now
			}
			s.failing[p] = msg
		case p == pki.PartCRL && failed[pki.PartCA] != "":
		default:
			delete(s.failing, p)
			delete(s.since, p)
		}
	}
	if err == nil {
		s.lastOK = now
	}
}

// PKIStatus returns the state of the broker's certificate, key, CA and CRL reloads.
func (b *Broker) PKIStatus() PKIStatus {
	b.pki.mu.Lock()
	defer b.pki.mu.Unlock()
	return PKIStatus{Failing: maps.Clone(b.pki.failing), FailingSince: maps.Clone(b.pki.since), LastReload: b.pki.lastOK}
}
