package secretbox

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestParseKey(t *testing.T) {
	var want Key
	for i := range want {
		want[i] = byte(i * 7)
	}
	hexKey := hex.EncodeToString(want[:])
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"hex", hexKey, true},
		{"hex upper", strings.ToUpper(hexKey), true},
		{"hex with whitespace", "  " + hexKey + "\n", true},
		{"base64", base64.StdEncoding.EncodeToString(want[:]), true},
		{"raw base64", base64.RawStdEncoding.EncodeToString(want[:]), true},
		{"base64 crlf", base64.StdEncoding.EncodeToString(want[:]) + "\r\n", true},
		{"empty", "", false},
		{"short hex", hexKey[:62], false},
		{"long hex", hexKey + "00", false},
		{"bad hex char", "zz" + hexKey[2:], false},
		{"base64 of 31 bytes", base64.StdEncoding.EncodeToString(want[:31]), false},
		{"base64 of 33 bytes", base64.StdEncoding.EncodeToString(append(want[:], 1)), false},
		{"url base64", base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xFB}, 32)), false},
		{"hex inside spaces", hexKey[:32] + " " + hexKey[32:], false},
		{"non-canonical base64", base64.RawStdEncoding.EncodeToString(want[:])[:42] + "B", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKey(tc.in)
			if tc.ok {
				if err != nil || k != want {
					t.Fatalf("ParseKey = %x, %v", k[:], err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("err = %v, want ErrInvalidKey", err)
			}
			if len(tc.in) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tc.in)[:8]) {
				t.Errorf("error echoes the key: %v", err)
			}
		})
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nested")
	path := filepath.Join(dir, "secret.key")
	rnd := bytes.NewReader(bytes.Repeat([]byte{0x5A}, 64))

	k1, created, err := LoadOrCreate(path, rnd)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	if k1 != (Key(bytes.Repeat([]byte{0x5A}, 32))) {
		t.Fatalf("key not from the given reader")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %04o, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if string(b) != k1.Hex()+"\n" {
		t.Errorf("file content %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}

	k2, created, err := LoadOrCreate(path, bytes.NewReader(nil)) // reload needs no randomness
	if err != nil || created || k2 != k1 {
		t.Fatalf("reload: created=%v err=%v same=%v", created, err, k2 == k1)
	}
}

func TestLoadOrCreateRefusesInsecureFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(path, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o660, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreate(path, nil)
		if !errors.Is(err, ErrInsecureKeyFile) {
			t.Fatalf("mode %04o: err = %v", mode, err)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("error does not name the path and fix: %v", err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreate(path, nil); err != nil || created {
		t.Fatalf("0400: created=%v err=%v", created, err)
	}
}

func TestLoadOrCreateBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":   "",
		"garbage": "not a key",
		"huge":    strings.Repeat("a", 5000),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, created, err := LoadOrCreate(path, nil)
		if !errors.Is(err, ErrInvalidKey) || created || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: created=%v err=%v", name, created, err)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("%s: file was modified", name)
		}
	}
	if _, _, err := LoadOrCreate(dir, nil); err == nil {
		t.Error("a directory was accepted as key file")
	}
	if _, _, err := LoadOrCreate(filepath.Join(dir, "new.key"), bytes.NewReader(make([]byte, 3))); err == nil {
		t.Error("short randomness accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "new.key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("key file left behind after a failed create")
	}
}

func TestLoadOrCreateConcurrentGoroutines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "secret.key")
	const n = 16
	keys := make([]Key, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			keys[i], created[i], errs[i] = LoadOrCreate(path, bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 32)))
		})
	}
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if keys[i] != keys[0] {
			t.Fatalf("goroutine %d got a different key", i)
		}
		if created[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d goroutines report creating the key, want 1", winners)
	}
}

// TestLoadOrCreateConcurrentProcesses races separate processes (this test
// binary re-executed) on one path.
func TestLoadOrCreateConcurrentProcesses(t *testing.T) {
	if p := os.Getenv("SECRETBOX_HELPER_PATH"); p != "" {
		k, created, err := LoadOrCreate(p, nil)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println(k.Hex(), created)
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "secret.key")
	const n = 6
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range n {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestLoadOrCreateConcurrentProcesses$")
		cmds[i].Env = append(os.Environ(), "SECRETBOX_HELPER_PATH="+path)
		outs[i] = new(bytes.Buffer)
		cmds[i].Stdout = outs[i]
		cmds[i].Stderr = outs[i]
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	hexes := map[string]bool{}
	winners := 0
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("process %d: %v: %s", i, err, outs[i])
		}
		var h string
		var created bool
		if _, err := fmt.Sscan(outs[i].String(), &h, &created); err != nil {
			t.Fatalf("process %d output %q: %v", i, outs[i], err)
		}
		hexes[h] = true
		if created {
			winners++
		}
	}
	if len(hexes) != 1 || winners != 1 {
		t.Fatalf("%d distinct keys, %d creators; want 1 and 1", len(hexes), winners)
	}
	k, _, err := LoadOrCreate(path, nil)
	if err != nil || !hexes[k.Hex()] {
		t.Fatalf("final key differs (err %v)", err)
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		// Whatever parsed must survive the key file format.
		if k2, err := ParseKey(k.Hex()); err != nil || k2 != k {
			t.Fatalf("hex round trip failed")
		}
	})
}
