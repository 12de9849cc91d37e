package signin

import (
	"errors"
	"net/http"

	"github.com/authgate/authgate/gateway/session"

	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/templates"
)

// Page data types are owned by the templates package.
type (
	commonData = templates.Common
	loginData  = templates.LoginPage
	verifyData = templates.VerifyPage
	enrollData = templates.EnrollPage
	logoutData = templates.LogoutPage
)

func notFound() *web.Error {
	return web.Errorf(http.StatusNotFound, "There is nothing here.", nil)
}

func unavailable(cause error) *web.Error {
	return web.Errorf(http.StatusServiceUnavailable, msgUnavailable, cause)
}

func badRequest(err error) *web.Error {
	return web.Errorf(http.StatusBadRequest, "The request could not be understood.", err)
}

func isNoSession(err error) bool { return errors.Is(err, session.ErrNoSession) }
