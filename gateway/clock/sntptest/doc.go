// Package sntptest runs a fake SNTP server on loopback UDP for tests: it
// answers with the real time shifted by a chosen offset, or misbehaves on
// request (kiss-of-death, wrong mode, unsynchronised, silence).
package sntptest
