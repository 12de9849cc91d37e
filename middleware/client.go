package middleware

import (
	"context"
	"net/netip"
)

// Client describes who sent the request, as far as the gateway can trust
// it. RealClient fills it in; everything downstream reads it with
// ClientFrom and never parses X-Forwarded-* itself.
type Client struct {
	// IP is the client's address: the peer's, or (when the peer is a
	// trusted proxy) the right-most untrusted address of X-Forwarded-For.
	IP netip.Addr
	// Peer is the TCP peer's address.
	Peer netip.Addr
	// ViaTrustedProxy is true when Peer is in trusted_proxies, so its
	// X-Forwarded-* headers were honoured.
	ViaTrustedProxy bool
	// ForwardedFor is the incoming X-Forwarded-For chain when
	// ViaTrustedProxy (already validated), else nil.
	ForwardedFor []netip.Addr
	// Scheme is "https" if the request arrived over TLS or (via a trusted
	// proxy) X-Forwarded-Proto said https; else "http".
	Scheme string
	// Host is the public host (lowercase, port kept if non-default): the
	// request's Host, or X-Forwarded-Host from a trusted proxy.
	Host string
}

type clientKey struct{}

// WithClient returns ctx carrying c.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the Client stored by RealClient; ok is false if none.
func ClientFrom(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(clientKey{}).(Client)
	return c, ok
}
