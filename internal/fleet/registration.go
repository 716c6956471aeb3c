package fleet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/choria-broker/choria-broker/internal/protocol"
)

// registrationBody is go-choria's file_content registration data.
type registrationBody struct {
	Protocol string `json:"protocol"`
	File     string `json:"file"`
	Mtime    int64  `json:"mtime"`
	Updated  bool   `json:"updated"`
	Content  string `json:"content"`
}

// register publishes every connected node's registration each interval,
// the first at once, as go-choria servers with `registration` set do.
func (e *Emulator) register(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, n := range e.nodes {
			if ctx.Err() != nil {
				return
			}
			e.subMu.RLock()
			nc := n.nc
			e.subMu.RUnlock()
			if nc == nil || !n.up.Load() {
				continue
			}
			payload, err := e.registration(n)
			if err == nil {
				err = nc.Publish(protocol.BroadcastSubject(n.collectives[0], "registration"), payload)
			}
			if err != nil {
				e.pubErrors.Add(1)
				continue
			}
			e.registered.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// registration is one node's registration request: agent registration in
// its main collective, reply-to dev.null, signed with the node's key when
// it is RSA, else marked "insecure registration" as go-choria does.
func (e *Emulator) registration(n *node) ([]byte, error) {
	facts, err := json.Marshal(map[string]any{"identity": n.identity, "collectives": n.collectives, "agents": n.agents})
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(registrationBody{Protocol: "choria:registration:filecontent:1", File: "emulated", Mtime: time.Now().Unix(), Content: base64.StdEncoding.EncodeToString(facts)})
	if err != nil {
		return nil, err
	}
	spec := protocol.RequestSpec{Agent: "registration", Collective: n.collectives[0], Payload: body, Base64: true}
	var t *protocol.Transport
	if s, err := protocol.NewSigner(n.cert, n.identity); err == nil {
		if t, _, err = s.NewRequest(spec); err != nil {
			return nil, err
		}
	} else {
		req := &protocol.Request{Protocol: protocol.RequestV1, Message: base64.StdEncoding.EncodeToString(body), Envelope: protocol.RequestEnvelope{
			RequestID: protocol.NewRequestID(), SenderID: n.identity, CallerID: protocol.CallerID(n.identity),
			Collective: n.collectives[0], Agent: "registration", TTL: 60, Time: time.Now().Unix(),
		}}
		rj, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		sj, err := json.Marshal(&protocol.SecureRequest{Protocol: protocol.SecureRequestV1, Message: string(rj), Signature: "insecure registration", PubCert: "insecure registration"})
		if err != nil {
			return nil, err
		}
		t = protocol.NewTransport(sj, n.identity)
	}
	t.Headers.ReplyTo = "dev.null"
	return t.Marshal()
}
