// Package redistest starts real redis-server processes for tests: one
// standalone server per Start (on a free loopback port, data in
// t.TempDir(), killed at cleanup and when the test binary dies), a
// three-node Redis Cluster per StartCluster, or a master, a replica and
// three sentinels per StartSentinel (with helpers to kill the master or
// request a failover and wait for the promotion).
//
// If redis-server is not on PATH the test is skipped with a loud message,
// unless CI is set or AUTHGATE_REQUIRE_REDIS=1, in which case it fails.
package redistest
