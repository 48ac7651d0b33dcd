// Steward staff console: every page works without this script except the
// passkey ceremonies, which need the browser's WebAuthn API. It moves focus
// to an error summary and runs navigator.credentials.get/create with the
// options the server gives for the pending sign-in, then posts the result
// in the page's own form (with its CSRF token).
(function () {
  "use strict";
  var errors = document.getElementById("errors");
  if (errors) { errors.focus(); }

  var form = document.getElementById("passkey-form");
  if (!form || !window.PublicKeyCredential || !window.fetch) { return; }
  var button = document.getElementById("passkey");
  var nojs = document.getElementById("passkey-nojs");
  var failed = document.getElementById("passkey-error");
  button.hidden = false;
  if (nojs) { nojs.hidden = true; }

  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function decodeOptions(o) {
    var pk = o.publicKey || o;
    pk.challenge = b64urlToBuf(pk.challenge);
    if (pk.user && typeof pk.user.id === "string") { pk.user.id = b64urlToBuf(pk.user.id); }
    ["allowCredentials", "excludeCredentials"].forEach(function (k) {
      (pk[k] || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    });
    return pk;
  }
  function encodeCredential(c) {
    var r = c.response, out = {
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: bufToB64url(r.clientDataJSON) }
    };
    if (c.authenticatorAttachment) { out.authenticatorAttachment = c.authenticatorAttachment; }
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64url(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    }
    if (r.authenticatorData) { out.response.authenticatorData = bufToB64url(r.authenticatorData); }
    if (r.signature) { out.response.signature = bufToB64url(r.signature); }
    if (r.userHandle) { out.response.userHandle = bufToB64url(r.userHandle); }
    return out;
  }
  button.addEventListener("click", function () {
    failed.hidden = true;
    button.disabled = true;
    fetch(form.getAttribute("data-options"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (res) { if (!res.ok) { throw new Error("options " + res.status); } return res.json(); })
      .then(function (o) {
        var pk = decodeOptions(o);
        return form.getAttribute("data-ceremony") === "create"
          ? navigator.credentials.create({ publicKey: pk })
          : navigator.credentials.get({ publicKey: pk });
      })
      .then(function (cred) {
        document.getElementById("passkey-response").value = JSON.stringify(encodeCredential(cred));
        form.submit();
      })
      .catch(function () {
        button.disabled = false;
        failed.hidden = false;
        button.focus();
      });
  });
})();
