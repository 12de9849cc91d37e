package password

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseHtpasswdFile(t *testing.T) {
	f, err := os.Open("testdata/htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, problems := ParseHtpasswd(f)

	wantEntries := map[string]struct {
		line int
		pw   string
	}{
		"alice": {2, "correct horse battery staple"},
		"bob":   {3, "hunter2"},
		"hank":  {15, "crlf line"},
		"judy":  {17, "no newline at end"},
	}
	if len(entries) != len(wantEntries) {
		t.Errorf("got %d entries, want %d: %+v", len(entries), len(wantEntries), entries)
	}
	for _, e := range entries {
		w, ok := wantEntries[e.User]
		if !ok || e.Line != w.line {
			t.Errorf("unexpected entry %+v", e)
			continue
		}
		if ok, err := Verify(e.Hash, w.pw); !ok || err != nil {
			t.Errorf("%s: htpasswd hash does not verify: %v, %v", e.User, ok, err)
		}
	}

	wantProblems := []struct {
		line   int
		is     error
		substr string
	}{
		{5, ErrUnsupportedScheme, `user "carol": unsupported password scheme: Apache MD5 ($apr1$)`},
		{6, ErrUnsupportedScheme, "SHA-1 ({SHA})"},
		{7, ErrUnsupportedScheme, "DES crypt"},
		{8, ErrUnsupportedScheme, "plain text or unknown"},
		{10, ErrDuplicateUser, `user "alice": duplicate user: already defined on line 2`},
		{11, ErrInvalidUser, "whitespace"},
		{12, ErrMalformedLine, "want user:hash"},
		{13, ErrInvalidUser, "empty"},
		{14, ErrMalformedHash, "bcrypt"},
		{16, ErrUnsupportedScheme, "$2x$"},
	}
	if len(problems) != len(wantProblems) {
		for _, p := range problems {
			t.Log(p)
		}
		t.Fatalf("got %d problems, want %d", len(problems), len(wantProblems))
	}
	for i, w := range wantProblems {
		p := problems[i]
		var le *LineError
		if !errors.As(p, &le) || le.Line != w.line || !errors.Is(p, w.is) || !strings.Contains(p.Error(), w.substr) {
			t.Errorf("problem %d = %v; want line %d, %v, containing %q", i, p, w.line, w.is, w.substr)
		}
		if !strings.HasPrefix(p.Error(), "htpasswd line ") {
			t.Errorf("problem does not name its line: %v", p)
		}
		// Never echo the secret part of a line.
		for _, secret := range []string{"plaintextpassword", "no-colon-line", "5en6G6", "eCjk0MV", "kR4Twa"} {
			if strings.Contains(p.Error(), secret) {
				t.Errorf("problem leaks line content: %v", p)
			}
		}
	}
}

func TestParseHtpasswdCases(t *testing.T) {
	const bc = "$2y$04$NGQxF2KoqOK0o7BPZ4cHP.JQyujwndYxHE.SMkiHNqjIq1S4llzou"
	tests := []struct {
		name      string
		in        string
		users     []string
		problemIs []error
	}{
		{"empty", "", nil, nil},
		{"only comments", "# a\n\n   \n\t# b\n", nil, nil},
		{"bom", "\uFEFFbob:" + bc + "\n", []string{"bob"}, nil},
		{"crlf", "bob:" + bc + "\r\nann:" + bc + "\r\n", []string{"bob", "ann"}, nil},
		{"trailing space after hash", "bob:" + bc + "  \n", []string{"bob"}, nil},
		{"unicode user", "jürgen:" + bc + "\n", []string{"jürgen"}, nil},
		{"control char user", "bo\x01b:" + bc + "\n", nil, []error{ErrInvalidUser}},
		{"tab in user", "bo\tb:" + bc + "\n", nil, []error{ErrInvalidUser}},
		{"nbsp in user", "bo\u00a0b:" + bc + "\n", nil, []error{ErrInvalidUser}},
		{"invalid utf8 user", "bo\xffb:" + bc + "\n", nil, []error{ErrInvalidUser}},
		{"long user", strings.Repeat("u", MaxUserLen+1) + ":" + bc + "\n", nil, []error{ErrInvalidUser}},
		{"empty hash", "bob:\n", nil, []error{ErrUnsupportedScheme}},
		{"argon2 not accepted", "bob:$argon2id$v=19$m=256,t=1,p=1$YW5vdGhlcnNhbHQxMjM0$WqIosEUwMadB80E1AJOk4A\n", nil, []error{ErrUnsupportedScheme}},
		{"sha512crypt", "bob:$6$salt$hash\n", nil, []error{ErrUnsupportedScheme}},
		{"triplicate", "a:" + bc + "\na:" + bc + "\na:" + bc + "\n", []string{"a"}, []error{ErrDuplicateUser, ErrDuplicateUser}},
		{"too long line then good", "x:" + strings.Repeat("a", 5000) + "\nbob:" + bc + "\n", []string{"bob"}, []error{ErrMalformedLine}},
		{"too long last line", "bob:" + bc + "\nx:" + strings.Repeat("a", 5000), []string{"bob"}, []error{ErrMalformedLine}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			entries, problems := ParseHtpasswd(strings.NewReader(tc.in))
			var users []string
			for _, e := range entries {
				users = append(users, e.User)
			}
			if strings.Join(users, ",") != strings.Join(tc.users, ",") {
				t.Errorf("users = %q, want %q", users, tc.users)
			}
			if len(problems) != len(tc.problemIs) {
				t.Fatalf("problems = %v, want %d", problems, len(tc.problemIs))
			}
			for i, is := range tc.problemIs {
				if !errors.Is(problems[i], is) {
					t.Errorf("problem %d = %v, want %v", i, problems[i], is)
				}
			}
		})
	}
}

func TestParseHtpasswdLineNumbers(t *testing.T) {
	const bc = "$2y$04$NGQxF2KoqOK0o7BPZ4cHP.JQyujwndYxHE.SMkiHNqjIq1S4llzou"
	in := "# c\n\nx:" + strings.Repeat("a", 5000) + "\nbob:" + bc + "\n"
	entries, problems := ParseHtpasswd(strings.NewReader(in))
	if len(entries) != 1 || entries[0].Line != 4 {
		t.Fatalf("entries %+v", entries)
	}
	var le *LineError
	if len(problems) != 1 || !errors.As(problems[0], &le) || le.Line != 3 {
		t.Fatalf("problems %v", problems)
	}
}

func TestParseHtpasswdReadError(t *testing.T) {
	const bc = "$2y$04$NGQxF2KoqOK0o7BPZ4cHP.JQyujwndYxHE.SMkiHNqjIq1S4llzou"
	boom := errors.New("disk on fire")
	entries, problems := ParseHtpasswd(io.MultiReader(strings.NewReader("bob:"+bc+"\n"), iotest.ErrReader(boom)))
	if len(entries) != 1 || len(problems) != 1 || !errors.Is(problems[0], boom) {
		t.Fatalf("entries %v problems %v", entries, problems)
	}
}

func TestCheckUserName(t *testing.T) {
	for _, ok := range []string{"alice", "bob@example.com", "jürgen", "a.b-c_d", "x"} {
		if err := CheckUserName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a:b", "a\nb", "a\x7fb", "\uFEFFa", "a\u2028b", "\xff", strings.Repeat("a", MaxUserLen+1)} {
		if err := CheckUserName(bad); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func FuzzParseHtpasswd(f *testing.F) {
	if b, err := os.ReadFile("testdata/htpasswd"); err == nil {
		f.Add(string(b))
	}
	f.Add("a:$2y$04$NGQxF2KoqOK0o7BPZ4cHP.JQyujwndYxHE.SMkiHNqjIq1S4llzou\r\n")
	f.Add("\uFEFF:\n#\n")
	f.Fuzz(func(t *testing.T, in string) {
		entries, problems := ParseHtpasswd(strings.NewReader(in))
		seen := map[string]bool{}
		for _, e := range entries {
			if CheckUserName(e.User) != nil || checkBcrypt(e.Hash) != nil || seen[e.User] || e.Line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
			seen[e.User] = true
		}
		for _, p := range problems {
			if p == nil {
				t.Fatal("nil problem")
			}
		}
	})
}
