package templates

// Field is a hidden form field carried through a confirmation page.
type Field struct {
	Name  string
	Value string
}

// ConfirmPage is the data for "confirm": the generic confirmation step
// before a destructive action. The page posts Hidden plus confirm=1 (and,
// when asked, "password" and/or "code") with the CSRF token to Action.
type ConfirmPage struct {
	Common
	Nav Nav
	// Heading is a short title above the question (optional).
	Heading string
	// Question says what will happen ("Disable 2FA for these 3 users?").
	Question string
	// Items lists what is affected (user names, …); shown as a list.
	Items []string
	// Action is the form's target URL (same-origin path).
	Action string
	// Hidden fields are posted back unchanged (e.g. user=alice, many).
	Hidden []Field
	// ConfirmLabel is the submit button's text (default "Confirm").
	ConfirmLabel string
	// CancelURL is where "Cancel" links to.
	CancelURL string
	// Danger styles the confirm button as destructive.
	Danger bool
	// AskPassword adds a "password" field (current password).
	AskPassword bool
	// AskCode adds a "code" field (authentication code). With AskPassword
	// too, the user may give either one.
	AskCode bool
}
