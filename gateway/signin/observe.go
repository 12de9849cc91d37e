package signin

// LoginMetrics receives the outcome of every submitted sign-in step (a
// *metrics.Metrics). Its methods must not block.
type LoginMetrics interface {
	// LoginAttempt counts one step: factor is one of the factor*
	// constants, result one of the result* constants.
	LoginAttempt(factor, result string)
	// BanStarted counts one ban of kind (store.BanKindUser or BanKindIP).
	BanStarted(kind string)
}

// Factors and results reported to LoginMetrics.
const (
	factorPassword     = "password"
	factorTOTP         = "totp"
	factorRecoveryCode = "recovery_code"
	factorEnroll       = "enroll"
	factorPasskey      = "passkey"

	resultSuccess = "success"
	resultFailure = "failure"
	resultBanned  = "banned"
	resultBusy    = "busy"
	resultError   = "error"
)

// attempt reports one sign-in step to the metrics, if any.
func (h *Handler) attempt(factor, result string) {
	if h.d.Metrics != nil {
		h.d.Metrics.LoginAttempt(factor, result)
	}
}

// pageFactor names the factor of a second-factor page.
func pageFactor(page string) string {
	switch page {
	case "enroll":
		return factorEnroll
	case "recovery":
		return factorRecoveryCode
	case "passkey":
		return factorPasskey
	}
	return factorTOTP
}

// howFactor names the factor of a completed second step (completeLogin's
// how).
func howFactor(how string) string {
	switch how {
	case "enrolled":
		return factorEnroll
	case "recovery_code":
		return factorRecoveryCode
	case "passkey":
		return factorPasskey
	}
	return factorTOTP
}
