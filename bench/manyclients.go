package main

import (
	"context"
	"fmt"
)

// manyResult is a wrk run with many keep-alive clients.
type manyResult struct {
	name       string
	clients    int
	wrk        wrkResult
	peakRSSKB  int64
	connsPer1k float64
	problem    string // why the run's answers were not all the upstream's
}

// manyClients measures a candidate's memory with -many-clients
// keep-alive connections open and busy.
func (b *bench) manyClients(ctx context.Context, c *candidate) (manyResult, error) {
	r := manyResult{name: c.name, clients: b.o.manyClients}
	if err := verify(c, b.up.body); err != nil {
		return r, err
	}
	b.logf("%s: %d keep-alive clients for %v", c.name, r.clients, b.o.extraDuration)
	s0, err := b.up.stats()
	if err != nil {
		return r, err
	}
	r.peakRSSKB, err = peakDuring(c.main.pid(), func() error {
		var err error
		r.wrk, err = b.wrk.run(ctx, c, r.clients, b.o.extraDuration)
		return err
	})
	if err != nil {
		return r, err
	}
	s1, err := b.up.stats()
	if err != nil {
		return r, err
	}
	if r.wrk.Requests > 0 {
		r.connsPer1k = float64(s1.NewConns-s0.NewConns) * 1000 / float64(r.wrk.Requests)
	}
	if err := r.wrk.validate(c, r.clients); err != nil {
		r.problem = err.Error()
	}
	if err := verify(c, b.up.body); err != nil {
		return r, fmt.Errorf("after %d clients: %w", r.clients, err)
	}
	return r, nil
}
