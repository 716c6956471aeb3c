package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"

	"github.com/nats-io/nats.go"
)

// newInprocSecret is the password of the broker's in-process logins, made
// afresh at every start: only code in this process can know it.
func newInprocSecret() string {
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	return hex.EncodeToString(secret)
}

// InProcessConn connects to the engine through an in-process pipe, with
// full rights, as go-choria's adapters connect to the broker of their own
// process. It needs the broker ready (Ready closed); name labels the
// connection in the engine's monitoring. The caller closes it.
func (b *Broker) InProcessConn(name string, opts ...nats.Option) (*nats.Conn, error) {
	select {
	case <-b.ready:
	default:
		return nil, errors.New("the broker is not ready yet")
	}
	opts = append([]nats.Option{nats.InProcessServer(b.srv), nats.UserInfo(inprocUser, b.streams.secret), nats.Name(name)}, opts...)
	return nats.Connect("", opts...)
}
