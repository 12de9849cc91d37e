// Package demo is the built-in "legacy admin panel" that authgate demo
// puts behind the gateway and that tests use as a realistic upstream.
//
// It trusts identity headers the way old panels do (so a user can see the
// gateway removed the spoofed ones), redirects to its own absolute URL
// after a restart (exercising the gateway's Location rewriting), speaks
// WebSocket and streams a slow response.
package demo
