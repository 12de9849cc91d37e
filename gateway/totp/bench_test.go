package totp

import (
	"testing"
	"time"
)

// The login path's code check, for the record (a sign-in's argon2id costs
// some 100,000 times more): run with
//
//	go test -run '^$' -bench . -benchmem ./gateway/totp
var benchSecret = []byte("12345678901234567890")

var benchAt = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func benchCode(b *testing.B) string {
	b.Helper()
	c, err := Code(benchSecret, benchAt, DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkCheck is an accepted code (the whole ±1 window is computed
// whatever matches).
func BenchmarkCheck(b *testing.B) {
	code, o := benchCode(b), DefaultOptions()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Check(benchSecret, code, benchAt, o); !ok {
			b.Fatal("code refused")
		}
	}
}

// BenchmarkCheckWrong is a refused code: same cost as an accepted one.
func BenchmarkCheckWrong(b *testing.B) {
	o := DefaultOptions()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Check(benchSecret, "000000", benchAt, o); ok {
			b.Fatal("wrong code accepted")
		}
	}
}
