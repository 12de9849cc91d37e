package web_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

func renderer(t *testing.T) *web.Renderer {
	t.Helper()
	pages, err := templates.ParsePages()
	if err != nil {
		t.Fatal(err)
	}
	r, err := web.NewRenderer(pages)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRenderErrorShowsOnlyThePublicMessage(t *testing.T) {
	rd := renderer(t)
	for _, tc := range []struct {
		err    error
		status int
		public string
	}{
		{web.Errorf(http.StatusBadGateway, "The application is not responding.", errors.New("dial tcp 10.1.2.3:2087: connection refused")), 502, "The application is not responding."},
		{errors.New("bolt: database not open /var/lib/authgate/authgate.db"), 500, "Something went wrong"},
		{web.Errorf(http.StatusForbidden, "Your account may not use this application.", nil), 403, "Your account may not use this application."},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/x", nil)
		middleware.RequestID()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rd.RenderError(w, r, tc.err)
		})).ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != tc.status || !strings.Contains(body, tc.public) {
			t.Errorf("%v: status %d, body lacks %q", tc.err, rec.Code, tc.public)
		}
		for _, leak := range []string{"10.1.2.3", "connection refused", "bolt", "/var/lib"} {
			if strings.Contains(body, leak) {
				t.Errorf("%v: page leaks %q", tc.err, leak)
			}
		}
		if id := rec.Header().Get("X-Request-Id"); id == "" || !strings.Contains(body, id) {
			t.Errorf("page lacks the request id %q", id)
		}
		// Every error page offers a way on.
		if !strings.Contains(body, `<a href="/">Go to the start page</a>`) {
			t.Errorf("%v: page offers no way back", tc.err)
		}
	}
}

func TestNewRendererNeedsEveryPage(t *testing.T) {
	pages, _ := templates.ParsePages()
	delete(pages, "verify")
	if _, err := web.NewRenderer(pages); err == nil {
		t.Fatal("renderer accepted a page set without verify")
	}
}
