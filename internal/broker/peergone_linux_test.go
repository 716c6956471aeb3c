package broker

import (
	"net"
	"testing"
	"time"
)

// TestPeerGone checks the kernel's view: a live client is not gone, one
// that hung up is, and a connection that is not TCP cannot be watched.
func TestPeerGone(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	gone := peerGone(server)
	if gone == nil {
		t.Fatal("a TCP connection cannot be watched")
	}
	if gone() {
		t.Fatal("a live client reported gone")
	}
	client.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !gone() {
		if time.Now().After(deadline) {
			t.Fatal("a client that hung up was never seen gone")
		}
		time.Sleep(5 * time.Millisecond)
	}
	server.Close()
	if !gone() {
		t.Fatal("a closed connection not reported gone")
	}
	a, bb := net.Pipe()
	defer a.Close()
	defer bb.Close()
	if peerGone(a) != nil {
		t.Fatal("a pipe reported watchable")
	}
}
