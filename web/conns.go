package web

import (
	"errors"
	"net"
	"os"
	"time"
)

// The defaults of Config's client limits, as config.example.toml's [http]
// gives them.
const (
	defaultReadTimeout    = 60 * time.Second
	defaultWriteTimeout   = 60 * time.Second
	defaultIdleTimeout    = 120 * time.Second
	defaultConcurrency    = 4096
	defaultMaxHeaderBytes = 16 << 10
)

// withDefaults fills the client limits left at zero.
func (c *Config) withDefaults() {
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.Concurrency <= 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = defaultMaxHeaderBytes
	}
}

// progressListener hands out connections whose writes fail once they make
// no progress for timeout, and keeps them in conns until they close.
type progressListener struct {
	net.Listener
	timeout time.Duration
	conns   *connSet
}

func (l progressListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &progressConn{Conn: c, timeout: l.timeout, conns: l.conns}
	l.conns.add(pc)
	return pc, nil
}

// progressConn bounds how long a write may go without the peer taking a
// byte, rather than how long a whole response may take (fasthttp's
// WriteTimeout): an export of any length to a slow reader that keeps
// reading is never cut, while a reader that stops (a slowloris reading
// a byte now and then never opens the TCP window) loses the connection,
// and with it the worker and the store snapshot it held.
type progressConn struct {
	net.Conn
	timeout time.Duration
	conns   *connSet
}

// Close closes the connection and forgets it.
func (c *progressConn) Close() error {
	c.conns.remove(c)
	return c.Conn.Close()
}

func (c *progressConn) Write(p []byte) (int, error) {
	written := 0
	for {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(p[written:])
		written += n
		// A write that timed out after some progress gets another timeout
		// for the rest.
		if err == nil || n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return written, err
		}
	}
}

// SetWriteDeadline is a no-op: Write sets its own.
func (c *progressConn) SetWriteDeadline(time.Time) error { return nil }
