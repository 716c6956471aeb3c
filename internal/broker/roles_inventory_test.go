package broker

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// accountConnz is the engine's account-scoped connection list, which it
// serves to any connection of the account that may publish the request.
const accountConnz = "$SYS.REQ.ACCOUNT.PING.CONNZ"

// TestNodeCannotListFleet: one of the reasons nodes keep publish rules
// (README, roles). Unrestricted, a node certificate asks the engine for
// the account's connections and gets every connected certificate's name
// and address, the fleet's inventory; as a node it is refused.
func TestNodeCannotListFleet(t *testing.T) {
	t.Parallel()
	for _, roles := range []bool{false, true} {
		p := newTestPKI(t)
		cfg := p.config()
		cfg.Network.Roles = roles
		b, _ := startBroker(t, cfg)
		other := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "other.example.net"}))
		if err := other.Flush(); err != nil {
			t.Fatal(err)
		}
		thief := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "stolen.example.net"}))
		names, err := listConnections(thief)
		switch {
		case !roles && err != nil:
			t.Fatalf("roles off: the request should be answered (the leak this test guards against is gone, so its README note is stale): %v", err)
		case !roles && !strings.Contains(names, "other.example.net"):
			t.Fatalf("roles off: the answer does not list the other node: %s", names)
		case roles && err == nil:
			t.Fatalf("node role: %s answered: %s", accountConnz, names)
		case roles && !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(err.Error(), "Permissions Violation"):
			t.Fatalf("node role: want a permissions error, got %v", err)
		}
	}
}

// listConnections asks for the account's connections and returns the
// certificate names in the answer, or the permissions error.
func listConnections(rc *roleConn) (string, error) {
	inbox := nats.NewInbox()
	sub, err := rc.SubscribeSync(inbox)
	if err != nil {
		return "", err
	}
	defer sub.Unsubscribe()
	if err := rc.PublishRequest(accountConnz, inbox, []byte(`{"auth":true}`)); err != nil {
		return "", err
	}
	var m *nats.Msg
	for deadline := time.Now().Add(5 * time.Second); m == nil; {
		select {
		case perr := <-rc.errs:
			return "", perr
		default:
		}
		if m, err = sub.NextMsg(50 * time.Millisecond); err != nil && time.Now().After(deadline) {
			return "", err
		}
	}
	var resp struct {
		Data struct {
			Conns []struct {
				User string `json:"authorized_user"`
				Name string `json:"name"`
			} `json:"connections"`
		} `json:"data"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return "", err
	}
	var names []string
	for _, c := range resp.Data.Conns {
		names = append(names, c.User)
	}
	return strings.Join(names, ","), nil
}
