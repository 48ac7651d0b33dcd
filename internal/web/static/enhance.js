// Steward privacy center: small enhancements. Every page works without this
// script; it only tidies forms and boots the Telegram Mini App.
(function () {
  "use strict";
  // Move focus to the error summary so screen readers announce it.
  var errors = document.getElementById("errors");
  if (errors) { errors.focus(); }

  // Rectification rows only matter for a rectification request.
  var changes = document.getElementById("changes");
  if (changes) {
    var radios = document.querySelectorAll("input[name=type]");
    var sync = function () {
      var sel = document.querySelector("input[name=type]:checked");
      changes.hidden = !(sel && sel.value === "rectification");
    };
    for (var i = 0; i < radios.length; i++) { radios[i].addEventListener("change", sync); }
    if (!changes.querySelector(".field-error")) { sync(); }
  }

  // Telegram Mini App: Telegram puts the signed initData in the URL
  // fragment (tgWebAppData); post it so Steward can check the signature.
  var form = document.getElementById("tg-form");
  if (form) {
    var data = "";
    var hash = window.location.hash.slice(1);
    if (hash) {
      var params = new URLSearchParams(hash);
      data = params.get("tgWebAppData") || "";
    }
    if (!data && window.Telegram && window.Telegram.WebApp) { data = window.Telegram.WebApp.initData || ""; }
    if (data) {
      document.getElementById("tg-init-data").value = data;
      form.submit();
    } else {
      var st = document.getElementById("tg-status");
      var nojs = document.querySelector("noscript");
      if (st && nojs) { st.textContent = nojs.textContent.trim(); }
    }
  }
})();
