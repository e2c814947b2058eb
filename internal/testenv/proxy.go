package testenv

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a target address. Tests put it between
// a client and a server to count connections and to cut them, simulating a dropped
// link. It is closed in t.Cleanup.
type Proxy struct {
	target string
	l      net.Listener

	mu       sync.Mutex
	flowing  *sync.Cond // signalled when stalled or a link's cut changes
	live     map[*link]struct{}
	accepted int
	stalled  bool
	closed   bool
	wg       sync.WaitGroup
}

type link struct {
	client, server net.Conn
	once           sync.Once
	cut            bool // guarded by Proxy.mu
}

func (l *link) close() {
	l.once.Do(func() {
		l.client.Close()
		l.server.Close()
	})
}

// StartProxy listens on a free port of 127.0.0.1 and forwards every accepted
// connection to target.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy: listen: %v", err)
	}
	p := &Proxy{target: target, l: l, live: map[*link]struct{}{}}
	p.flowing = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr returns the proxy's "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Port returns the proxy's port.
func (p *Proxy) Port() int { return p.l.Addr().(*net.TCPAddr).Port }

// Conns returns how many connections the proxy has accepted so far.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Live returns how many proxied connections are open now.
func (p *Proxy) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// CutAll closes every live connection on both sides, as a dropped link would. The
// proxy keeps accepting new connections.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.live))
	for k := range p.live {
		links = append(links, k)
		k.cut = true
		delete(p.live, k)
	}
	p.flowing.Broadcast()
	p.mu.Unlock()
	for _, k := range links {
		k.close()
	}
}

// Stall stops forwarding bytes, in both directions and on every connection, new ones
// included, without closing anything: a link that silently went dead (a black hole,
// not a reset). Bytes read meanwhile are held and delivered on Resume.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// Resume undoes Stall.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.stalled = false
	p.flowing.Broadcast()
	p.mu.Unlock()
}

// waitFlowing blocks while the proxy is stalled, unless k is cut or the proxy closed.
func (p *Proxy) waitFlowing(k *link) {
	p.mu.Lock()
	for p.stalled && !k.cut && !p.closed {
		p.flowing.Wait()
	}
	p.mu.Unlock()
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.flowing.Broadcast()
	p.mu.Unlock()
	p.l.Close()
	p.CutAll()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		p.accepted++
		closed := p.closed
		p.mu.Unlock()
		if closed {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	k := &link{client: client, server: server}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		k.close()
		return
	}
	p.live[k] = struct{}{}
	p.mu.Unlock()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.waitFlowing(k)
				if _, err := dst.Write(buf[:n]); err != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		// Half-close so the far side sees EOF, as it would without the proxy.
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
	p.mu.Lock()
	delete(p.live, k)
	p.mu.Unlock()
	k.close()
}
