// authgate: passkeys and security keys (WebAuthn) on the gateway's own
// pages. Loaded from /.authgate/passkey.js (the pages' CSP allows this
// one script of the gateway's own origin, nothing inline).
//
// A button with data-passkey-begin="<URL>" inside a form runs one
// ceremony: it POSTs the form's fields (with its csrf_token) to that URL,
// gets the options as JSON ({"publicKey": {...}}), asks the browser
// (navigator.credentials.create when data-passkey-mode="create", else
// .get), puts the answer's JSON into the form's "passkey" field and
// submits the form. The server decides everything; this script only
// carries bytes between the browser and it.
(function () {
  "use strict";

  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(pk) {
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return pk;
  }

  function requestOptions(pk) {
    pk.challenge = fromB64url(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return pk;
  }

  function answerJSON(cred) {
    var r = cred.response, out = {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64url(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.signature = toB64url(r.signature);
      if (r.userHandle) out.response.userHandle = toB64url(r.userHandle);
    }
    return JSON.stringify(out);
  }

  function say(form, text) {
    var p = form.querySelector("[data-passkey-status]");
    if (p) { p.textContent = text; p.hidden = !text; }
  }

  function run(button) {
    var form = button.form, create = button.getAttribute("data-passkey-mode") === "create";
    if (form.reportValidity && !form.reportValidity()) return;
    button.disabled = true;
    say(form, "");
    var body = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { if (k !== "passkey") body.append(k, v); });
    fetch(button.getAttribute("data-passkey-begin"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (res) {
      return res.json().then(function (j) {
        if (!res.ok) {
          if (j.redirect) { window.location.assign(j.redirect); }
          throw new Error(j.error || "The security key could not be used.");
        }
        return j;
      });
    }).then(function (opts) {
      return create
        ? navigator.credentials.create({ publicKey: creationOptions(opts.publicKey) })
        : navigator.credentials.get({ publicKey: requestOptions(opts.publicKey) });
    }).then(function (cred) {
      if (!cred) throw new Error("No key answered.");
      form.elements.passkey.value = answerJSON(cred);
      form.submit();
    }).catch(function (e) {
      button.disabled = false;
      var msg = e && e.name === "NotAllowedError"
        ? "The request was cancelled or timed out. You can try again."
        : e && e.name === "InvalidStateError"
          ? "This key is already registered to your account."
          : (e && e.message) || "The security key could not be used.";
      say(form, msg);
    });
  }

  function start() {
    var buttons = document.querySelectorAll("[data-passkey-begin]");
    for (var i = 0; i < buttons.length; i++) {
      var b = buttons[i];
      if (!window.PublicKeyCredential || !navigator.credentials) {
        var f = b.form;
        if (f) say(f, "This browser does not support passkeys or security keys.");
        continue;
      }
      b.hidden = false;
      b.addEventListener("click", function (ev) { ev.preventDefault(); run(ev.currentTarget); });
    }
    var blocks = document.querySelectorAll("[data-passkey-block]");
    for (var j = 0; j < blocks.length; j++) blocks[j].hidden = !window.PublicKeyCredential;
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
